"""DistributedOptimizer: average the gradients of all processes, then take the usual step.

Every step packs all gradients into one preallocated contiguous buffer, sums it across processes
with a single ``MPI_Allreduce`` (one call per step, not one per tensor), divides by the number
of processes and hands views of the buffer to the wrapped optimizer. Every process then applies
the same update to the same weights, so the weights stay identical, bit for bit.
"""

from __future__ import annotations

import numpy as np

from slidenet import optimizers as optimizers_mod
from slidenet.distributed import comm

_CLASSES: dict[type, type] = {}


class _Distributed:
    """Placed before the wrapped optimizer's class (see :func:`DistributedOptimizer`)."""

    _fused: np.ndarray | None = None
    _sync_model = None  # set by BroadcastInitialWeights: its moving statistics are averaged too

    def apply(self, weights, grads):
        """Average ``grads`` over all processes (one fused Allreduce), then update ``weights``."""
        n = comm.size()
        if n == 1:
            return super().apply(weights, grads)
        moving = _moving_statistics(self._sync_model)
        arrays = [*grads, *moving]
        dtype = np.result_type(*(a.dtype for a in arrays))
        total = sum(a.size for a in arrays)
        if self._fused is None or self._fused.size != total or self._fused.dtype != dtype:
            self._fused = np.empty(total, dtype)  # allocated once, reused every step
        views, offset = [], 0
        for a in arrays:
            view = self._fused[offset : offset + a.size].reshape(a.shape)
            view[...] = a
            views.append(view)
            offset += a.size
        comm.allreduce_(self._fused)
        np.divide(self._fused, dtype.type(n), out=self._fused)
        for array, view in zip(moving, views[len(grads) :], strict=True):
            array[...] = view
        return super().apply(weights, views[: len(grads)])


def _moving_statistics(model) -> list[np.ndarray]:
    """The live moving mean/variance arrays of batch normalisation layers (not trained)."""
    if model is None:
        return []
    return [
        w
        for layer in model.layers
        for name, w in zip(layer.weight_names, layer.weights, strict=True)
        if name.rsplit("/", 1)[-1].startswith("moving_")
    ]


def DistributedOptimizer(optimizer="adam"):
    """Wrap an optimizer so that every step uses the gradients averaged over all processes.

    As in Horovod, the result is an instance of a subclass of the optimizer's own class with the
    same name (``Adam`` stays ``Adam``), holding the same settings and state. Model files
    therefore record the plain optimizer: a checkpoint written by a distributed run loads and
    resumes in a single process, and a single-process checkpoint is wrapped again to resume
    distributed. With one process, steps are exactly those of the wrapped optimizer.

    Learning rate: each process computes the mean gradient of its own batch of ``b`` examples and
    the average over ``size()`` processes is the mean gradient of the global batch of
    ``size() * b`` examples. Use the learning rate that suits the global batch (the one you would
    use in one process with batch ``size() * b``); do not scale it again.

    Args:
        optimizer: an Optimizer instance or a name ('adam', 'sgd', 'rmsprop').

    Returns:
        the wrapped optimizer, to pass to ``model.compile``.

    >>> from slidenet import optimizers
    >>> opt = DistributedOptimizer(optimizers.SGD(learning_rate=0.1, momentum=0.9))
    >>> type(opt).__name__, opt.learning_rate, isinstance(opt, optimizers.SGD)
    ('SGD', 0.1, True)
    """
    opt = optimizers_mod.get(optimizer)
    if isinstance(opt, _Distributed):
        return opt
    base = type(opt)
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(
            base.__name__,
            (_Distributed, base),
            {"__module__": __name__, "__qualname__": f"DistributedOptimizer.{base.__name__}"},
        )
        cls.__doc__ = f"{base.__name__} with gradients averaged over processes (one Allreduce)."
        _CLASSES[base] = cls
    wrapped = cls.from_config(opt.get_config())
    wrapped.iterations = opt.iterations
    wrapped.slots = {name: list(arrays) for name, arrays in opt.slots.items()}
    return wrapped


def is_distributed(optimizer) -> bool:
    """Whether ``optimizer`` came from :func:`DistributedOptimizer`."""
    return isinstance(optimizer, _Distributed)

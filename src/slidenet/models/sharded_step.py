"""A training step on every core: the batch split in shards, one thread per shard.

NumPy runs elementwise work on one core, and BLAS's own threads help only inside large matrix
products; the rest of a step (im2col copies, Winograd transforms, pooling, bias, ReLU, the small
products of few-channel layers) runs on one core. Here a Sequential model's step is split by
examples instead, the way data-parallel training splits it over machines:

    x (N, ...) -> shards x[0:n0], x[n0:n1], ...   (one Python thread each; NumPy, BLAS and the
                                                   compiled kernels release the GIL)
    each shard: forward, loss (its mean), backward -> grads g_s
    the step's gradient: sum_s (n_s / N) g_s       (the gradient of the batch's mean loss: each
                                                   shard scales its loss gradient by n_s / N)

then one optimizer step on the shared weights. While the shards run, OpenBLAS is held at one thread
per call (:func:`slidenet.utils.blas.blas_threads`): its spare threads would otherwise spin beside
ours. Each shard runs on a shallow copy of the model (a *twin*) whose layers share the weight
arrays but keep their own caches and step buffers, so the shards never write to the same memory.

Only layers whose output for an example depends on that example alone, with no random draws
during training (convolutions, dense, pooling, flatten, activations, padding) are split; a model
with batch normalisation, dropout or other layers keeps the one-thread step, which gives
bit-for-bit the same numbers as before. Split steps give the same result up to float rounding
(sums grouped differently).

Threads: ``SLIDENET_NUM_THREADS`` if set, else the cores this process may use (at most 8); shards
hold at least :data:`MIN_SHARD` examples.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from slidenet.ops import kernels
from slidenet.utils.blas import blas_threads
from slidenet.utils.memory import reuse_freed_memory

MIN_SHARD = 8  # examples per shard at least: below, the threads' overhead outweighs the gain

# layer classes whose training-mode forward is per-example and draws nothing at random
_SPLITTABLE = frozenset(
    {
        "InputLayer",
        "Conv1D",
        "Conv2D",
        "Dense",
        "Flatten",
        "Reshape",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Softmax",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "SumPooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "UpSampling1D",
        "UpSampling2D",
    }
)

_pool: ThreadPoolExecutor | None = None
_pool_key = (0, 0)  # (pid, workers): a forked child inherits the pool object but not its threads


def threads() -> int:
    """Threads for a split step: ``SLIDENET_NUM_THREADS``, else the usable cores (at most 8)."""
    value = os.environ.get("SLIDENET_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def splittable(model) -> bool:
    """Can this model's training step be split by examples? (A Sequential of the listed layers.)"""
    from slidenet.models.sequential import Sequential

    return type(model) is Sequential and all(
        type(layer).__name__ in _SPLITTABLE for layer in model.layers
    )


def shard_bounds(n: int, parts: int) -> list[int]:
    """[0, n1, ..., n]: ``parts`` contiguous shards of sizes differing by at most one.

    >>> shard_bounds(10, 3)
    [0, 3, 6, 10]
    """
    return [n * k // parts for k in range(parts + 1)]


def plan(model, n: int) -> int:
    """How many shards a step of ``n`` examples takes (1: the ordinary one-thread step)."""
    parts = min(threads(), n // MIN_SHARD)
    if parts <= 1 or not splittable(model):
        return 1
    return parts


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), workers)
    if _pool is None or _pool_key != key:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slidenet-shard")
        _pool_key = key
    return _pool


def _twins(model, parts: int) -> list:
    """One shallow copy of the model per shard; each layer copy keeps its own step buffers
    across steps (kept on the model, keyed by shard and layer position)."""
    kept = model.__dict__.setdefault("_shard_buffers", {})
    twins = []
    for s in range(parts):
        twin = copy.copy(model)
        layers = []
        for i, layer in enumerate(model.layers):
            clone = copy.copy(layer)
            for name in layer.step_buffers:
                clone.__dict__.pop(name, None)
            clone.__dict__.update(kept.get((s, i), {}))
            layers.append(clone)
        twin.layers = layers
        twins.append(twin)
    return twins


def _keep_buffers(model, twins) -> None:
    kept = model.__dict__["_shard_buffers"]
    for s, twin in enumerate(twins):
        for i, layer in enumerate(twin.layers):
            kept[(s, i)] = {k: layer.__dict__[k] for k in layer.step_buffers if k in layer.__dict__}


def _one_compiled_thread() -> None:
    """Compiled kernels started from a shard thread use that thread alone."""
    if kernels.compiled():  # (the import waits if another thread is importing Numba)
        from slidenet.ops.compiled import use_one_thread

        use_one_thread()


def _shard_step(twin, x, y, share):
    """Forward, loss and backward of one shard; the loss gradient is scaled by the shard's share
    of the batch (n_s / N), so the batch gradient is the plain sum of the shards' gradients."""
    _one_compiled_thread()
    # overflow shows up as a non-finite loss (np.errstate is per thread: set it here)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = twin._forward(x, training=True)
        loss, grad, fused = twin._loss_and_grad(out, y)
    if np.isfinite(loss):
        twin._backward(grad * grad.dtype.type(share), fused, need_dx=False)
    return loss, out


def forward_backward(model, x, y):
    """A training step's forward and backward passes: sets every layer's ``grads`` to the batch
    gradient and returns (loss, outputs (N, ...)). Split over threads when :func:`plan` says so,
    else the one-thread passes (a non-finite loss skips the backward pass)."""
    reuse_freed_memory()
    parts = plan(model, len(x))
    if parts == 1:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = model._forward(x, training=True)
            loss, grad, fused = model._loss_and_grad(out, y)
        if np.isfinite(loss):
            model._backward(grad, fused, need_dx=False)
        return loss, out
    bounds = shard_bounds(len(x), parts)
    shares = [(bounds[s + 1] - bounds[s]) / len(x) for s in range(parts)]
    twins = _twins(model, parts)
    pieces = [
        (twins[s], x[bounds[s] : bounds[s + 1]], y[bounds[s] : bounds[s + 1]], shares[s])
        for s in range(parts)
    ]
    pool = _executor(parts - 1)
    with blas_threads(1):
        futures = [pool.submit(_shard_step, *p) for p in pieces[1:]]
        results = [_shard_step(*pieces[0])] + [f.result() for f in futures]
        _keep_buffers(model, twins)
        loss = sum(share * loss for share, (loss, _) in zip(shares, results, strict=True))
        out = np.concatenate([o for _, o in results])
        if not np.isfinite(loss):
            return loss, out
        for i, layer in enumerate(model.layers):
            grads = [twin.layers[i].grads for twin in twins]
            layer.grads = [_sum([g[k] for g in grads], pool) for k in range(len(grads[0]))]
    return loss, out


def _sum(grads, pool):
    """g_0 + g_1 + ... into g_0 (the shards' own arrays); None stays None (a frozen weight).
    Large gradients are added in parts on every thread."""
    total = grads[0]
    if total is None or len(grads) == 1:
        return total
    if total.size < (1 << 18) or not total.flags.c_contiguous:
        for g in grads[1:]:
            total += g
        return total
    flat, others = total.reshape(-1), [g.reshape(-1) for g in grads[1:]]
    cuts = shard_bounds(flat.size, pool._max_workers + 1)

    def add(part):
        lo, hi = cuts[part], cuts[part + 1]
        for g in others:
            np.add(flat[lo:hi], g[lo:hi], out=flat[lo:hi])

    futures = [pool.submit(add, part) for part in range(1, len(cuts) - 1)]
    add(0)
    for f in futures:
        f.result()
    return total


# in inference, batch normalisation uses its moving statistics and dropout does nothing: per example
_SPLITTABLE_INFERENCE = _SPLITTABLE | {
    "BatchNormalization",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
}


def predict_in_threads(model, x, batch_size, take_batch):
    """``predict``'s chunks spread over threads (each chunk on its own, as in one thread), or
    None when the model or the input is not worth it. ``take_batch(x, slice)`` reads and casts
    one chunk. Returns the outputs (N, ...)."""
    from slidenet.models.sequential import Sequential

    chunks = [slice(s, s + batch_size) for s in range(0, len(x), batch_size)]
    parts = min(threads(), len(chunks))
    if (
        parts <= 1
        or type(model) is not Sequential
        or any(type(layer).__name__ not in _SPLITTABLE_INFERENCE for layer in model.layers)
    ):
        return None
    twins = _twins(model, parts)

    def run(s):
        _one_compiled_thread()
        return [twins[s]._forward(take_batch(x, c), training=False) for c in chunks[s::parts]]

    reuse_freed_memory()
    with blas_threads(1):
        futures = [_executor(parts - 1).submit(run, s) for s in range(1, parts)]
        results = [run(0)] + [f.result() for f in futures]
    _keep_buffers(model, twins)
    first = results[0][0]
    out = np.empty((len(x), *first.shape[1:]), first.dtype)
    for s, outputs in enumerate(results):
        for c, y in zip(chunks[s::parts], outputs, strict=True):
            out[c] = y
    return out

"""Callbacks that keep the processes of a data-parallel ``fit`` in step (Keras/Horovod style)."""

from __future__ import annotations

import numpy as np

from slidenet.callbacks import Callback
from slidenet.distributed import comm
from slidenet.distributed.optimizer import is_distributed
from slidenet.utils.random import generator_from_state, generator_state


def _contiguous(array, fn):
    """Run ``fn`` on ``array`` in place, through a contiguous copy when it is not contiguous."""
    if array.flags.c_contiguous:
        fn(array)
    else:
        tmp = np.ascontiguousarray(array)
        fn(tmp)
        array[...] = tmp


def _describe(arrays):
    return [[list(a.shape), a.dtype.str] for a in arrays]


class BroadcastInitialWeights(Callback):
    """Start every process from the root's state, and keep their random streams apart.

    At the start of ``fit`` the root (rank ``root``) sends its weights (batch-norm moving
    statistics included), the optimizer state (momenta, step count, learning rate) and the random
    generators (shuffling, dropout) to every process; a process whose model differs from the
    root's stops with a ValueError naming the difference. It also tells the DistributedOptimizer
    which batch-norm moving statistics to average at every step.

    Each epoch, every process shuffles its shard and draws its dropout masks from its own
    generator, seeded from the shared one and its rank; at the end of the epoch the shared
    generators are put back. So the processes use different random numbers, yet everything a
    checkpoint needs to repeat the run is the same on every process. List this callback before
    checkpoint callbacks. With one process it changes nothing.

    Args:
        root: the rank whose state is sent (0).
    """

    def __init__(self, root=0):
        if isinstance(root, bool) or not isinstance(root, int | np.integer) or root < 0:
            raise ValueError(f"BroadcastInitialWeights: root must be a rank >= 0, got {root!r}.")
        self.root = int(root)
        self._shared = None

    def on_train_begin(self, logs=None):
        comm._enter_fit()
        model, n = self.model, comm.size()
        if self.root >= n:
            raise ValueError(
                f"BroadcastInitialWeights: root {self.root} is not a rank of this run of {n} "
                f"process(es); use root=0."
            )
        if is_distributed(model.optimizer):
            model.optimizer._sync_model = model
        elif n > 1:
            raise ValueError(
                f"BroadcastInitialWeights: the model is trained by {n} processes but its "
                f"optimizer is a plain {type(model.optimizer).__name__}, so each process would "
                "train alone. Compile with slidenet.distributed.DistributedOptimizer(optimizer)."
            )
        if n == 1:
            return
        self._broadcast_state(model)

    def _broadcast_state(self, model):
        opt = model.optimizer
        weights = model.weights
        mine = {
            "weights": _describe(weights),
            "slots": {k: _describe(v) for k, v in opt.slots.items()},
            "iterations": opt.iterations,
            "learning_rate": opt.learning_rate,
            "rng": None if model._rng is None else generator_state(model._rng),
            "layer_rngs": {
                layer.name: generator_state(layer.rng)
                for layer in model.layers
                if getattr(layer, "rng", None) is not None
            },
        }
        root = comm.broadcast_json(mine, self.root)
        problem = None
        if root["weights"] != mine["weights"]:
            problem = (
                f"its weights {mine['weights']} differ from the root's {root['weights']} "
                "([shape, dtype] per array)"
            )
        elif sorted(root["layer_rngs"]) != sorted(mine["layer_rngs"]):
            problem = f"its random layers {sorted(mine['layer_rngs'])} are not the root's"
        if not comm.all_agree(problem is None):
            who = f"rank {comm.rank()}'s model" if problem else "the models"
            raise ValueError(
                f"BroadcastInitialWeights: {who} do not match rank {self.root}'s"
                + (f": {problem}" if problem else " on another rank")
                + ". Build the same model on every process."
            )
        for w in weights:
            _contiguous(w, lambda a: comm.broadcast_(a, self.root))
        if not root["slots"]:
            opt.slots = {}
        else:
            if {k: _describe(v) for k, v in opt.slots.items()} != root["slots"]:
                opt.slots = {
                    k: [np.empty(shape, np.dtype(dt)) for shape, dt in spec]
                    for k, spec in root["slots"].items()
                }
            for arrays in opt.slots.values():
                for a in arrays:
                    _contiguous(a, lambda x: comm.broadcast_(x, self.root))
        opt.iterations = int(root["iterations"])
        opt.learning_rate = float(root["learning_rate"])
        if root["rng"] is not None:
            model._rng = generator_from_state(root["rng"])
        for layer in model.layers:
            if layer.name in root["layer_rngs"]:
                layer.rng = generator_from_state(root["layer_rngs"][layer.name])

    def on_epoch_begin(self, epoch, logs=None):
        n, model = comm.size(), self.model
        if n == 1:
            return
        layers = [layer for layer in model.layers if getattr(layer, "rng", None) is not None]
        self._shared = (model._rng, [layer.rng for layer in layers], layers)
        r = comm.rank()
        if model._rng is not None:
            model._rng = np.random.default_rng([int(model._rng.integers(2**63)), r])
        for layer in layers:
            layer.rng = np.random.default_rng([int(layer.rng.integers(2**63)), r])

    def on_epoch_end(self, epoch, logs=None):
        if self._shared is not None:
            self.model._rng, rngs, layers = self._shared
            for layer, rng in zip(layers, rngs, strict=True):
                layer.rng = rng
            self._shared = None

    def on_train_end(self, logs=None):
        self.on_epoch_end(None)
        comm._leave_fit()


class AverageMetrics(Callback):
    """Replace the epoch's logs (loss, metrics, validation scores) by their mean over processes.

    Each process computes its logs on its own shard; with equal shards their mean is the value
    for the whole data set. Put it before callbacks that read the logs (ModelCheckpoint,
    EarlyStopping): they then decide the same on every process. ``model.history`` holds the
    averages too. The progress bar shows the root's own running values during an epoch and the
    averages at its end. ``learning_rate`` is the same everywhere and is left alone.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or comm.size() == 1:
            return
        keys = sorted(k for k, v in logs.items() if k != "learning_rate" and _is_number(v))
        counts = comm.allreduce_(np.array([len(keys), -len(keys)], np.int64), "min")
        if counts[0] != -counts[1]:
            raise RuntimeError(
                f"AverageMetrics: rank {comm.rank()} has the logs {keys} but another rank has "
                f"{'fewer' if counts[0] < len(keys) else 'more'}; give every process the same "
                "metrics and validation data."
            )
        values = comm.allreduce_(np.array([logs[k] for k in keys], np.float64))
        history = getattr(self.model, "history", None)
        for key, value in zip(keys, values / comm.size(), strict=True):
            local = logs[key]
            logs[key] = float(value)
            series = history.history.get(key) if history is not None else None
            if series and series[-1] == local:  # History ran first and kept the local value
                series[-1] = float(value)


def _is_number(value):
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


class RootOnly(Callback):
    """Run ``callback`` on the root process only (progress output, checkpoints, logs).

    ``RootOnly(ModelCheckpoint("cnn.slidenet"))`` writes the file once, from rank 0, instead of
    once per process.
    """

    def __init__(self, callback, root=0):
        self.callback, self.root = callback, int(root)

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def _call(self, hook, *args):
        if comm.rank() == self.root:
            getattr(self.callback, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

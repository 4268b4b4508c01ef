"""Training scenarios run by test_distributed_mpi.py, under ``mpiexec -n 2`` and alone.

``python mpi_worker_script.py DIR TASK [TASK ...]`` runs the tasks in order; the files a task
writes carry the number of processes (``_n1``, ``_n2``), so one folder holds the single-process
reference and the distributed run side by side. Tasks:

* ``train64_e1``, ``train64_e2``, ``train32_e2``: a tiny CNN (float64 or float32), SGD with
  momentum, global batch 8, ``shuffle=False``, 1 or 2 epochs; rank 0 saves the model.
* ``resume64_from1``, ``resume64_from2``: load ``train64_e1_n1``/``_n2`` and train to epoch 2.
* ``lockstep``: batch norm, dropout, Adam, shuffling, and different initial weights on every
  rank; after every step all ranks compare a hash of their weights and optimizer state.
* ``shuffled``: the same model trained 2 epochs straight, and 1 epoch, saved, loaded in every
  process and trained 1 more epoch (the runs must agree bit for bit).
* ``fail``: rank 1 raises during epoch 1; ``exit``: rank 1 calls sys.exit(3) during epoch 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

N_EXAMPLES, GLOBAL_BATCH, SHAPE, CLASSES = 48, 8, (6, 6, 1), 3

#: A Python file of model builders for the command-line tests (--model nets.py:tiny).
NETS = """\
import slidenet as keras


def tiny(input_shape=(28, 28, 1), classes=2):
    return keras.Sequential([
        keras.layers.Input(input_shape),
        keras.layers.Conv2D(2, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(classes, activation="softmax"),
    ])
"""


def make_data(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N_EXAMPLES, *SHAPE)).astype(dtype)
    y = rng.integers(0, CLASSES, N_EXAMPLES)
    return x, y


def tiny_model(dtype, extras=False):
    import slidenet as keras

    L = keras.layers
    layers = [L.Input(SHAPE), L.Conv2D(3, 3, activation="relu", dtype=dtype)]
    layers.append(L.MaxPooling2D(2, dtype=dtype))
    if extras:
        layers.append(L.BatchNormalization(momentum=0.9, dtype=dtype))
    layers.append(L.Flatten(dtype=dtype))
    if extras:
        layers.append(L.Dropout(0.3, dtype=dtype))
    layers.append(L.Dense(CLASSES, activation="softmax", dtype=dtype))
    return keras.Sequential(layers)


def state_digest(model) -> np.ndarray:
    """sha256 of every weight, optimizer array and the step count, as 32 bytes."""
    h = hashlib.sha256()
    for a in [*model.get_weights(), *model.optimizer.variables()]:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(str(model.optimizer.iterations).encode())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def gather(vector: np.ndarray) -> np.ndarray:
    """(size, len) array of every rank's vector."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = np.empty((comm.Get_size(), vector.size), vector.dtype)
    comm.Allgather(vector, out)
    return out


def train(folder, name, dtype, epochs, load=None, extras=False, callbacks=(), shuffle=False):
    import slidenet as keras
    from slidenet import distributed as dist

    keras.utils.set_random_seed(0)
    x, y = dist.shard(*make_data(dtype))
    if load is None:
        model = tiny_model(dtype, extras)
        opt = keras.optimizers.Adam(0.01) if extras else keras.optimizers.SGD(0.1, momentum=0.9)
        model.compile(
            dist.DistributedOptimizer(opt), "sparse_categorical_crossentropy", ["accuracy"]
        )
    else:
        model = keras.load_model(folder / load)
        model.optimizer = dist.DistributedOptimizer(model.optimizer)
    model.fit(
        x,
        y,
        batch_size=GLOBAL_BATCH // dist.size(),
        epochs=epochs,
        initial_epoch=model.epoch,
        shuffle=shuffle,
        verbose=0,
        callbacks=[dist.BroadcastInitialWeights(0), dist.AverageMetrics(), *callbacks],
    )
    if dist.rank() == 0:
        model.save(folder / f"{name}_n{dist.size()}.slidenet")
    return model


class LockstepCheck:
    """After every step: do all ranks hold the same weights and optimizer state?"""

    def __init__(self):
        from slidenet.callbacks import Callback

        outer = self
        self.steps = self.mismatches = 0
        self.epoch_logs = []

        class Check(Callback):
            def on_train_batch_end(self, batch, logs=None):
                digests = gather(state_digest(self.model))
                outer.steps += 1
                outer.mismatches += int(not (digests == digests[0]).all())

            def on_epoch_end(self, epoch, logs=None):
                from slidenet.utils.random import generator_state

                rngs = json.dumps(
                    [generator_state(self.model._rng)]
                    + [generator_state(la.rng) for la in self.model.layers if hasattr(la, "rng")]
                )
                text = json.dumps(sorted(logs.items())) + rngs
                digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
                outer.epoch_logs.append(bool((gather(digest.copy()) == digest).all()))

        self.callback = Check()


def lockstep(folder):
    import slidenet as keras
    from slidenet import distributed as dist

    keras.utils.set_random_seed(100 + dist.rank())  # different initial weights on every rank
    x, y = dist.shard(*make_data("float32"), seed=0)
    model = tiny_model("float32", extras=True)
    before = gather(state_digest_weights(model))
    model.compile(
        dist.DistributedOptimizer("adam"), "sparse_categorical_crossentropy", ["accuracy"]
    )
    check = LockstepCheck()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[dist.BroadcastInitialWeights(0), dist.AverageMetrics(), check.callback],
    )
    moving = [
        w
        for la in model.layers
        for n, w in zip(la.weight_names, la.weights, strict=True)
        if "moving" in n
    ]
    if dist.rank() == 0:
        report = {
            "size": dist.size(),
            "initial_weights_differed": bool((before != before[0]).any()),
            "steps_checked": check.steps,
            "mismatches": check.mismatches,
            "epoch_logs_and_rngs_equal": check.epoch_logs,
            "moving_mean_trained": bool(np.abs(moving[0]).max() > 0),
            "loss": model.history.history["loss"],
        }
        (folder / "lockstep.json").write_text(json.dumps(report))


def shuffled(folder):
    """Dropout, batch norm, Adam, shuffling: 2 epochs straight, and 1 epoch + save + load + 1."""
    import slidenet as keras
    from slidenet import distributed as dist

    x, y = dist.shard(*make_data("float32"), seed=0)
    for name, stops in (("shuffled_straight", [2]), ("shuffled_resumed", [1, 2])):
        keras.utils.set_random_seed(0)
        model = tiny_model("float32", extras=True)
        model.compile(dist.DistributedOptimizer("adam"), "sparse_categorical_crossentropy")
        for epochs in stops:
            if model.epoch:  # resume from the file rank 0 wrote, in every process
                dist.barrier()
                model = keras.load_model(folder / f"{name}_n{dist.size()}.slidenet")
                model.optimizer = dist.DistributedOptimizer(model.optimizer)
            callbacks = [dist.BroadcastInitialWeights(0), dist.AverageMetrics()]
            model.fit(x, y, batch_size=4, epochs=epochs, initial_epoch=model.epoch, verbose=0,
                      callbacks=callbacks)  # fmt: skip
            if dist.rank() == 0:
                model.save(folder / f"{name}_n{dist.size()}.slidenet")
            dist.barrier()


def state_digest_weights(model):
    h = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights()))
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def failing(folder, how):
    from slidenet.callbacks import Callback
    from slidenet.distributed import rank

    class Fail(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if rank() == 1 and batch == 2:
                if how == "exit":
                    sys.exit(3)
                raise RuntimeError("deliberate failure on rank 1 at batch 3")

    train(folder, how, "float32", 2, callbacks=[Fail()])
    print("after fit: not reached", flush=True)


def main(argv):
    from slidenet import distributed as dist

    dist.init()
    folder, tasks = Path(argv[0]), argv[1:]
    for task in tasks:
        if task.startswith("train"):
            dtype = "float64" if task.startswith("train64") else "float32"
            train(folder, task, dtype, int(task[-1]))
        elif task.startswith("resume64_from"):
            train(folder, f"{task}", "float64", 2, load=f"train64_e1_n{task[-1]}.slidenet")
        elif task == "lockstep":
            lockstep(folder)
        elif task == "shuffled":
            shuffled(folder)
        elif task in ("fail", "exit"):
            failing(folder, task)
        else:
            raise SystemExit(f"unknown task {task!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Data-parallel training over MPI processes and machines (the ``mpi`` extra: mpi4py + mpich).

Every process holds the whole model and trains on its own shard of the data; after each batch
the gradients are averaged over all processes with one MPI Allreduce, so every process takes the
same step and the weights stay identical. Horovod's shape with Keras' names::

    import slidenet as keras
    from slidenet import distributed as dist

    dist.init()
    (x, y), _ = keras.datasets.mnist_sample.load_data()
    x, y = dist.shard(x / 255.0, y, seed=0)              # this process's share
    model = keras.applications.mnist_cnn()
    model.compile(dist.DistributedOptimizer(keras.optimizers.Adam(1e-3)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=50, epochs=2, verbose=1 if dist.rank() == 0 else 0,
              callbacks=[dist.BroadcastInitialWeights(0), dist.AverageMetrics(),
                         dist.RootOnly(keras.callbacks.ModelCheckpoint("cnn.slidenet"))])

Run it with ``mpiexec -n 4 python train.py`` (``--hostfile hosts`` for several machines). The
command line does the same with ``mpiexec -n 4 slidenet train ... --distributed``.

Conventions:

* **Batch and learning rate.** ``fit``'s ``batch_size`` is per process; the global batch is
  ``size() * batch_size``. Gradients are averaged (not summed), so use the learning rate that
  suits the global batch in one process. (``slidenet train --distributed`` takes the global
  ``--batch-size`` and gives each process its share.)
* **Data.** :func:`shard` deals out every ``size()``-th example (after a permutation by
  ``seed``); every shard has ``N // size()`` examples so that all processes run the same number
  of steps. With ``shuffle=False``, ``size()`` processes with batch ``b`` take exactly the steps
  of one process with batch ``size() * b``.
* **Batch normalisation.** Each process normalises with the statistics of its own batch (as
  Horovod and tf.distribute do by default; synchronised batch statistics would cost one more
  Allreduce per layer and step). The moving mean and variance are averaged over processes in the
  same Allreduce as the gradients, so they too are identical everywhere after every step.
* **Output.** Only rank 0 should print and write files: ``verbose=0`` elsewhere and
  :class:`RootOnly` around checkpoint callbacks. Files are written atomically.
* **Failures.** With more than one process, an uncaught exception in any process prints its
  traceback and calls ``MPI_Abort``, which stops all processes at once instead of leaving them
  waiting in an Allreduce.

``import slidenet`` never imports mpi4py; :func:`init` does, and without mpi4py (and no mpiexec)
everything here runs as a single process.
"""

from slidenet.datasets.sharding import shard as _shard
from slidenet.distributed.callbacks import AverageMetrics, BroadcastInitialWeights, RootOnly
from slidenet.distributed.comm import (
    abort,
    allreduce,
    barrier,
    broadcast_json,
    init,
    is_initialized,
    launcher_size,
    rank,
    size,
)
from slidenet.distributed.optimizer import DistributedOptimizer, is_distributed

__all__ = [
    "AverageMetrics",
    "BroadcastInitialWeights",
    "DistributedOptimizer",
    "RootOnly",
    "abort",
    "allreduce",
    "barrier",
    "broadcast_json",
    "init",
    "is_distributed",
    "is_initialized",
    "launcher_size",
    "rank",
    "size",
    "shard",
]


def shard(x, y=None, seed=None):
    """This process's shard of (x, y): :func:`slidenet.datasets.shard` with ``rank()`` and
    ``size()``."""
    return _shard(x, y, rank(), size(), seed)

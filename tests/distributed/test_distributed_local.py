"""slidenet.distributed inside one process: sharding, the single-process fallback, and the fused
Allreduce seen through a stand-in communicator (no MPI is started in the test process)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from mpi_worker_script import NETS

import slidenet as keras
from slidenet import distributed as dist
from slidenet.cli import main
from slidenet.distributed import comm


@pytest.fixture
def alone(monkeypatch):
    """This process on its own (what init() gives without mpi4py and without mpiexec)."""
    monkeypatch.setitem(comm._state, "comm", comm._SelfComm())
    monkeypatch.setitem(comm._state, "active", 0)


class TwinComm:
    """Rank 0 of 2 whose partner holds exactly the same numbers: a sum is twice the value.

    Records the size of every Allreduce so that tests can count them."""

    def __init__(self, rank=0):
        self.rank, self.calls = rank, []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return 2

    def Allreduce(self, sendbuf, recvbuf, op=None):
        self.calls.append(recvbuf.size)
        if op == "sum":
            recvbuf *= 2

    def Bcast(self, buf, root=0):
        pass

    def Barrier(self):
        pass

    def Abort(self, errorcode=1):
        raise AssertionError("Abort called")


@pytest.fixture
def twin(monkeypatch):
    fake = TwinComm()
    monkeypatch.setitem(comm._state, "comm", fake)
    monkeypatch.setitem(
        comm._state, "mpi", SimpleNamespace(IN_PLACE=None, SUM="sum", MIN="min", MAX="max")
    )
    monkeypatch.setitem(comm._state, "active", 0)
    return fake


def test_import_slidenet_never_imports_mpi4py():
    code = (
        "import sys, slidenet, slidenet.distributed, slidenet.cli.train; "
        "print('mpi4py' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----- sharding ---------------------------------------------------------------------------------
def test_shards_are_strided_disjoint_equal_and_cover_all_but_the_remainder():
    x, y = np.arange(11) * 10, np.arange(11)
    shards = [keras.datasets.shard(x, y, r, 3) for r in range(3)]
    assert [list(s[1]) for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # 9, 10 left out
    assert all(np.array_equal(sx, sy * 10) for sx, sy in shards)  # x and y stay paired
    assert all(sx.flags.c_contiguous for sx, _ in shards)


def test_seeded_shards_are_a_deterministic_permutation():
    x = np.arange(20)
    a = [keras.datasets.shard(x, rank=r, size=2, seed=7) for r in range(2)]
    b = [keras.datasets.shard(x, rank=r, size=2, seed=7) for r in range(2)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert sorted(np.concatenate(a)) == list(range(20))
    assert not np.array_equal(a[0], np.arange(0, 20, 2))
    assert not np.array_equal(a[0], keras.datasets.shard(x, rank=0, size=2, seed=8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": 2, "size": 2}, r"rank 2 is not below size 2; ranks are numbered 0..1"),
        ({"rank": 0, "size": 0}, r"size must be an integer >= 1, got 0"),
        ({"rank": -1, "size": 2}, r"rank must be an integer >= 0, got -1"),
        ({"rank": 0, "size": 5}, r"4 examples cannot be dealt out to 5 processes"),
        ({"rank": 0, "size": 2, "seed": -1}, r"seed must be None or an integer >= 0"),
        ({"y": np.arange(3)}, r"x has 4 examples but y has shape \(3,\)"),
    ],
)
def test_shard_errors_say_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras.datasets.shard(np.arange(4), **kwargs)


# ----- one process --------------------------------------------------------------------------------
def test_alone_everything_is_the_identity(alone):
    assert (dist.rank(), dist.size(), dist.is_initialized()) == (0, 1, True)
    assert np.array_equal(dist.allreduce(np.array([1.5, 2.0])), [1.5, 2.0])
    assert dist.broadcast_json({"a": [1, 2]}) == {"a": [1, 2]}
    x, y = dist.shard(np.arange(5), np.arange(5))
    assert list(x) == list(range(5))
    dist.barrier()


def test_init_without_mpi4py_runs_alone_or_explains(monkeypatch):
    monkeypatch.setitem(comm._state, "comm", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    for var in comm.LAUNCHER_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    dist.init()
    assert dist.size() == 1 and isinstance(comm._state["comm"], comm._SelfComm)
    monkeypatch.setitem(comm._state, "comm", None)
    monkeypatch.setenv("PMI_SIZE", "3")
    with pytest.raises(ImportError, match=r"one of 3 started by mpiexec.*slidenet\[mpi\]"):
        dist.init()


def small_model(batch_norm=False):
    keras.utils.set_random_seed(3)
    layers = [keras.layers.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, activation="relu")]
    layers += [keras.layers.BatchNormalization()] if batch_norm else []
    layers += [keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    return keras.Sequential(layers)


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 6, 6, 1)).astype("float32"), rng.integers(0, 3, 24)


def train(optimizer, callbacks=(), batch_norm=False, shuffle=True):
    model = small_model(batch_norm)
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(*data(), batch_size=6, epochs=2, verbose=0, shuffle=shuffle, callbacks=callbacks)
    return model


def same_state(a, b):
    arrays = zip(
        [*a.get_weights(), *a.optimizer.variables()],
        [*b.get_weights(), *b.optimizer.variables()],
        strict=True,
    )
    return all(np.array_equal(p, q) for p, q in arrays) and a.history.history == b.history.history


def test_alone_a_distributed_fit_is_the_plain_fit_bit_for_bit(alone):
    plain = train(keras.optimizers.Adam(0.01), batch_norm=True)
    callbacks = [dist.BroadcastInitialWeights(), dist.AverageMetrics()]
    wrapped = train(dist.DistributedOptimizer(keras.optimizers.Adam(0.01)), callbacks, True)
    assert same_state(plain, wrapped)


def test_distributed_optimizer_is_the_optimizer_class_with_its_state(tmp_path):
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    model = train(sgd)
    wrapped = dist.DistributedOptimizer(sgd)
    assert type(wrapped).__name__ == "SGD" and isinstance(wrapped, keras.optimizers.SGD)
    assert dist.is_distributed(wrapped) and not dist.is_distributed(sgd)
    assert wrapped.get_config() == sgd.get_config()
    assert wrapped.iterations == sgd.iterations == 8
    assert all(a is b for a, b in zip(wrapped.variables(), sgd.variables(), strict=True))
    assert dist.DistributedOptimizer(wrapped) is wrapped
    assert type(dist.DistributedOptimizer("rmsprop")).__name__ == "RMSprop"
    model.optimizer = wrapped
    model.save(tmp_path / "m.slidenet")  # the file names the plain optimizer
    loaded = keras.load_model(tmp_path / "m.slidenet")
    assert type(loaded.optimizer) is keras.optimizers.SGD
    with pytest.raises(ValueError, match="Unknown optimizer 'adamz'"):
        dist.DistributedOptimizer("adamz")


def test_one_fused_allreduce_per_step_averages_gradients_and_moving_statistics(twin):
    plain = train(keras.optimizers.SGD(0.1, momentum=0.5), batch_norm=True, shuffle=False)
    callbacks = [dist.BroadcastInitialWeights(), dist.AverageMetrics()]
    opt = dist.DistributedOptimizer(keras.optimizers.SGD(0.1, momentum=0.5))
    twin_model = train(opt, callbacks, batch_norm=True, shuffle=False)
    # the partner had the same gradients, so (g + g) / 2 == g: the plain run, bit for bit
    assert same_state(plain, twin_model)
    trained = 2 * 3 * 3 + 2 + 2 + 2 + 4 * 4 * 2 * 3 + 3  # conv, bn gamma/beta, dense
    moving = 2 + 2
    steps = 2 * 24 // 6
    assert twin.calls.count(trained + moving) == steps  # one Allreduce per step, fused
    assert len(twin.calls) == steps + 1 + 2 * 2  # + a check at the start, 2 per epoch (metrics)
    assert opt._fused.size == trained + moving  # one buffer, reused


def test_broadcast_needs_the_distributed_optimizer_and_a_real_root(twin):
    with pytest.raises(ValueError, match=r"plain Adam, so each process would train alone.*"):
        train(keras.optimizers.Adam(), [dist.BroadcastInitialWeights()])
    with pytest.raises(ValueError, match=r"root 2 is not a rank of this run of 2 process"):
        train(dist.DistributedOptimizer("adam"), [dist.BroadcastInitialWeights(root=2)])
    with pytest.raises(ValueError, match=r"root must be a rank >= 0, got -1"):
        dist.BroadcastInitialWeights(root=-1)


@pytest.mark.parametrize("rank", [0, 1])
def test_root_only_callbacks_write_on_rank_0_alone(twin, tmp_path, rank):
    twin.rank = rank
    path = tmp_path / "ck.slidenet"
    saver = dist.RootOnly(keras.callbacks.ModelCheckpoint(path))
    train(dist.DistributedOptimizer("sgd"), [saver])
    assert path.exists() == (rank == 0)


def test_cli_distributed_in_one_process_is_the_plain_run(alone, tmp_path, capsys):
    nets = tmp_path / "nets.py"
    nets.write_text(NETS)
    outs = {}
    for flag in ([], ["--distributed"]):
        out = tmp_path / f"m{len(flag)}.slidenet"
        code = main(["train", "--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "1",
                     "--verbose", "0", "--out", str(out), *flag])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        outs[len(flag)] = keras.load_model(out)
    assert (
        "distributed: 1 process x batch 32 = global batch 32; each trains on 1,000 of 1,000"
        in capsys.readouterr().out
    )
    assert same_state(outs[0], outs[1])

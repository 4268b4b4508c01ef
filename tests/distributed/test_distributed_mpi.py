"""Data-parallel guarantees, checked with real MPI processes (``mpiexec -n 2``).

The scenarios live in mpi_worker_script.py; each is run under ``mpiexec -n 2`` and, as the
reference, in one plain process. Every launch has a timeout, so a hang fails instead of blocking.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpi_worker_script import NETS

import slidenet

HERE = Path(__file__).parent
WORKER = HERE / "mpi_worker_script.py"
TIMEOUT_S = 120  # a launch takes about 2 s; more means something hangs


def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel of the test extra), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail(
            "mpiexec not found: install the test extra (pip install -e '.[test]'), which "
            "brings mpich and mpi4py"
        )
    return found


def env() -> dict:
    """One BLAS/OpenMP thread per process (two processes share two cores)."""
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**os.environ, **threads}


def launch(argv, processes, check=True, timeout=TIMEOUT_S):
    """Run ``python argv`` in ``processes`` MPI processes (1: plain python, no mpiexec)."""
    cmd = [sys.executable, *map(str, argv)]
    if processes > 1:
        cmd = [mpiexec(), "-n", str(processes), *cmd]
    try:
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env(),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} hung for {timeout} s:\n{e.stdout}\n{e.stderr}")
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The model files and report of every training scenario, in one folder."""
    folder = tmp_path_factory.mktemp("mpi_runs")
    launch([WORKER, folder, "train64_e1", "train64_e2", "train32_e2"], 1)
    launch(
        [
            WORKER,
            folder,
            "train64_e1",
            "train64_e2",
            "train32_e2",
            "resume64_from1",
            "lockstep",
            "shuffled",
        ],
        2,
    )
    launch([WORKER, folder, "resume64_from2"], 1)
    return folder


def load(folder, name):
    return slidenet.load_model(folder / f"{name}.slidenet")


def max_difference(a, b):
    """Largest absolute difference over weights and optimizer state of two models."""
    pairs = [
        *zip(a.get_weights(), b.get_weights(), strict=True),
        *zip(a.optimizer.variables(), b.optimizer.variables(), strict=True),
    ]
    assert len(pairs) > 0
    return max(float(np.abs(x - y).max()) for x, y in pairs)


def test_every_rank_holds_identical_weights_after_every_step(runs):
    report = json.loads((runs / "lockstep.json").read_text())
    assert report["size"] == 2
    assert report["initial_weights_differed"]  # the broadcast had something to do
    assert report["steps_checked"] == 12  # 24 examples per rank, batch 4, 2 epochs
    assert report["mismatches"] == 0  # weights, batch-norm statistics, Adam's m and v, step count
    assert report["epoch_logs_and_rngs_equal"] == [True, True]  # averaged logs, shared generators
    assert report["moving_mean_trained"]
    assert report["loss"][1] < report["loss"][0]


def test_two_ranks_with_half_batches_match_one_process_float64(runs):
    one, two = load(runs, "train64_e2_n1"), load(runs, "train64_e2_n2")
    assert one.layers[0].kernel.dtype == np.float64
    assert max_difference(one, two) < 1e-10
    assert two.optimizer.iterations == one.optimizer.iterations == 12  # 48 / 8 * 2 epochs
    np.testing.assert_allclose(two.history.history["loss"], one.history.history["loss"], atol=1e-10)
    # the comparison can fail: one epoch less is far from it
    assert max_difference(one, load(runs, "train64_e1_n1")) > 1e-3


def test_two_ranks_with_half_batches_match_one_process_float32(runs):
    """float32: the stated tolerance is 1e-5 relative + 1e-6 absolute (measured: 2e-7 absolute)."""
    one, two = load(runs, "train32_e2_n1"), load(runs, "train32_e2_n2")
    assert one.layers[0].kernel.dtype == np.float32
    for a, b in zip(two.get_weights(), one.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max_difference(one, two) > 0  # not the same computation, only the same result


def test_a_distributed_checkpoint_resumes_in_one_process(runs):
    """Epoch 1 on 2 ranks, epoch 2 in 1 process == 2 epochs in 1 process."""
    resumed, straight = load(runs, "resume64_from2_n1"), load(runs, "train64_e2_n1")
    assert load(runs, "train64_e1_n2").epoch == 1
    assert resumed.epoch == 2 and resumed.optimizer.iterations == 12
    assert type(resumed.optimizer).__name__ == "SGD"
    assert max_difference(resumed, straight) < 1e-10
    assert len(resumed.history.history["loss"]) == 2


def test_a_single_process_checkpoint_resumes_distributed(runs):
    """Epoch 1 in 1 process, epoch 2 on 2 ranks == 2 epochs in 1 process."""
    resumed, straight = load(runs, "resume64_from1_n2"), load(runs, "train64_e2_n1")
    assert resumed.epoch == 2 and resumed.optimizer.iterations == 12
    assert max_difference(resumed, straight) < 1e-10


def test_a_distributed_resume_repeats_a_shuffled_run_with_dropout_bit_for_bit(runs):
    """Each process shuffles and drops out with its own generator, derived every epoch from the
    shared one, so the checkpoint of rank 0 holds all the random state of the run."""
    straight, resumed = load(runs, "shuffled_straight_n2"), load(runs, "shuffled_resumed_n2")
    assert resumed.epoch == straight.epoch == 2
    assert max_difference(straight, resumed) == 0
    assert resumed.history.history == straight.history.history


@pytest.mark.parametrize("how", ["fail", "exit"])
def test_a_failing_rank_stops_every_rank(tmp_path, how):
    """Rank 1 raises (or calls sys.exit) in epoch 1 while rank 0 waits in the Allreduce: both
    stop, with the rank and the reason on stderr, instead of hanging."""
    result = launch([WORKER, tmp_path, how], 2, check=False, timeout=60)
    assert result.returncode != 0
    assert "rank 1 of 2 failed" in result.stderr
    if how == "fail":
        assert "RuntimeError: deliberate failure on rank 1 at batch 3" in result.stderr
    else:
        assert "exiting in the middle of fit" in result.stderr
    assert "not reached" not in result.stdout
    assert not list(tmp_path.glob("*.slidenet"))


# ----- the command line ---------------------------------------------------------------------------


def cli(tmp_path, processes, *argv, check=True):
    return launch(["-m", "slidenet.cli", "train", *argv], processes, check=check)


def test_cli_distributed_train_resumes_alone_and_back(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    model = tmp_path / "xo.slidenet"
    first = cli(
        tmp_path,
        2,
        "--model",
        f"{tmp_path / 'nets.py'}:tiny",
        "--dataset",
        "xo",
        "--epochs",
        "1",
        "--out",
        model,
        "--verbose",
        "2",
        "--distributed",
    )
    out = first.stdout
    assert out.count("tiny (") == 1  # rank 0 alone prints
    assert (
        "distributed: 2 processes x batch 16 = global batch 32; each trains on 500 of 1,000" in out
    )
    assert "Epoch 1/1" in out and "test: loss" in out
    assert slidenet.load_model(model).epoch == 1
    second = cli(tmp_path, 1, "--resume", model, "--epochs", "2", "--verbose", "0")
    assert "epochs 2..2" in second.stdout
    third = cli(tmp_path, 2, "--resume", model, "--epochs", "3", "--verbose", "0", "--distributed")
    assert "epochs 3..3" in third.stdout and "global batch 32" in third.stdout
    final = slidenet.load_model(model)
    assert final.epoch == 3 and len(final.history.history["loss"]) == 3
    assert type(final.optimizer).__name__ == "Adam"


def test_cli_refuses_a_wrong_launch(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    common = ["--model", f"{tmp_path / 'nets.py'}:tiny", "--dataset", "xo", "--epochs", "1"]
    odd = cli(tmp_path, 2, *common, "--batch-size", "31", "--distributed", check=False)
    assert odd.returncode == 2
    assert (
        "--batch-size 31 is the global batch and must be a multiple of the 2 processes; use "
        "30 or 32" in odd.stderr
    )
    alone = cli(tmp_path, 2, *common, check=False)
    assert alone.returncode == 2
    assert "add --distributed to train data-parallel" in alone.stderr
    assert not list(tmp_path.glob("*.slidenet"))

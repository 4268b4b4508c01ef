"""``slidenet train --distributed``: the pieces the command line needs (see slidenet.cli.train).

Every process runs the same command. Rank 0 prints and writes the checkpoints; the others are
silent. A failure in any process stops all of them with one line naming the rank.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback

from slidenet.distributed import comm
from slidenet.distributed.callbacks import AverageMetrics, BroadcastInitialWeights
from slidenet.distributed.optimizer import DistributedOptimizer

#: After Ctrl-C, how long a non-root process waits for rank 0 to finish a checkpoint and stop
#: the run before it stops the run itself (rank 0 may be waiting in an Allreduce).
INTERRUPT_GRACE_S = 5.0


def run_command(prog, run, args) -> int:
    """``run(args)`` in every process; rank 0's output only; any failure stops every process."""
    from slidenet.cli._common import UsageError, one_line

    comm.init()
    n, r = comm.size(), comm.rank()
    if n == 1:
        return run(args)
    try:
        with _silenced(r != 0):
            code = run(args)
    except BaseException as err:  # noqa: B036 - every failure must stop every process
        code = 2 if isinstance(err, UsageError) else 1
        code = 130 if isinstance(err, KeyboardInterrupt) else code
        if getattr(args, "debug", False) or getattr(args, "debug_all", False):
            traceback.print_exc(file=sys.__stderr__)
        what = "interrupted" if code == 130 else f"error: {one_line(err)}"
        print(
            f"{prog}: {what} (rank {r} of {n}; stopping all {n} processes)",
            file=sys.__stderr__,
            flush=True,
        )
        comm.abort(what, code, announce=False)
    if code != 0:  # e.g. 130 after Ctrl-C: the other processes may be waiting in an Allreduce
        if r != 0:
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(INTERRUPT_GRACE_S)  # rank 0 finishes its checkpoint and stops the run
        comm.abort(f"exit code {code}", code, announce=False)
    return code


@contextlib.contextmanager
def _silenced(quiet):
    if not quiet:
        yield
        return
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        yield


def distribute(model, fit_args, saver):
    """Make ``fit_args`` (x, y, batch_size, validation_split, verbose) data-parallel.

    ``batch_size`` is the global batch: each of the ``n`` processes takes ``batch_size / n``. The
    validation examples are the last ``validation_split`` of the training set, as in one process;
    both parts are then dealt out by :func:`slidenet.datasets.shard` (every n-th example: with one
    process the data stay as they are). The optimizer is wrapped in a DistributedOptimizer and
    only rank 0 writes checkpoints.

    Returns:
        (fit keyword arguments, callbacks to run before ``saver``, one line describing the run).
    """
    from slidenet.cli._common import UsageError
    from slidenet.datasets.sharding import shard

    n, r = comm.size(), comm.rank()
    batch = fit_args["batch_size"]
    if batch % n:
        lower, upper = max(n, batch - batch % n), batch - batch % n + n
        raise UsageError(
            f"--batch-size {batch} is the global batch and must be a multiple of the {n} "
            f"processes; use {lower} or {upper}"
        )
    x, y, split = fit_args["x"], fit_args["y"], fit_args["validation_split"]
    validation = None
    if split:
        n_val = int(len(x) * split)
        if n_val < n:
            raise UsageError(
                f"--validation-split {split} of {len(x)} examples leaves {n_val} for validation; "
                f"{n} processes need at least one each"
            )
        validation = shard(x[-n_val:], y[-n_val:], r, n)
        x, y = x[:-n_val], y[:-n_val]
    total = len(x)
    x, y = shard(x, y, r, n)
    model.optimizer = DistributedOptimizer(model.optimizer)
    saver.write = r == 0
    args = {
        **fit_args,
        "x": x,
        "y": y,
        "batch_size": batch // n,
        "validation_split": 0.0,
        "validation_data": validation,
        "verbose": fit_args["verbose"] if r == 0 else 0,
    }
    line = (
        f"distributed: {n} process{'es' if n > 1 else ''} x batch {batch // n} = global batch "
        f"{batch}; each trains on {len(x):,} of {total:,} examples"
    )
    return args, [BroadcastInitialWeights(0), AverageMetrics()], line

"""The communicator: which process am I, how many are there, and the collective operations.

MPI (through mpi4py) when it is installed, otherwise one process on its own. mpi4py is imported
by :func:`init`, never when slidenet is imported. Arrays are sent with mpi4py's buffer interface
(``Allreduce``, ``Bcast``): raw memory, no pickle; small descriptions travel as JSON bytes.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time

import numpy as np

#: Environment variables by which launchers (MPICH/Intel MPI/Slurm PMI, Open MPI, PMIx, MVAPICH)
#: tell a process how many processes they started.
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")

_state = {"comm": None, "mpi": None, "active": 0, "hooked": False}


class _SelfComm:
    """One process on its own: the subset of mpi4py's ``Comm`` that slidenet uses."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Allreduce(self, sendbuf, recvbuf, op=None):
        if sendbuf is not None and sendbuf is not recvbuf:  # IN_PLACE is passed as None
            np.copyto(recvbuf, sendbuf)

    def Bcast(self, buf, root=0):
        pass

    def Barrier(self):
        pass

    def Abort(self, errorcode=1):
        sys.stderr.flush()
        os._exit(errorcode)


def launcher_size() -> int:
    """How many processes the launcher (mpiexec, srun) started, from its environment; 1 if none.

    >>> launcher_size() >= 1
    True
    """
    for var in LAUNCHER_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1


def init(comm=None) -> None:
    """Start slidenet's distributed mode (call it once, first thing in every process).

    Args:
        comm: None for every process of the run (``MPI.COMM_WORLD``) when mpi4py is installed, or
            this process alone when it is not; or an mpi4py communicator to train on a subset.

    Raises:
        ImportError: mpiexec started several processes but mpi4py is not installed.

    When there is more than one process, an uncaught exception in any of them prints its traceback
    with the rank and then calls ``MPI_Abort``, which stops every process at once (no process is
    left waiting in a collective operation); so does a process that exits in the middle of
    ``fit``.
    """
    if comm is None:
        if _state["comm"] is not None:
            return
        try:
            from mpi4py import MPI
        except ImportError:
            n = launcher_size()
            if n > 1:
                raise ImportError(
                    f"slidenet.distributed: this process is one of {n} started by mpiexec, but "
                    "mpi4py is not installed. Install it with: pip install 'slidenet[mpi]' "
                    "(mpi4py and mpich), or use your cluster's MPI and pip install mpi4py."
                ) from None
            comm = _SelfComm()
        else:
            _state["mpi"] = MPI
            comm = MPI.COMM_WORLD
    elif _state["mpi"] is None and not isinstance(comm, _SelfComm):
        from mpi4py import MPI

        _state["mpi"] = MPI
    _state["comm"] = comm
    if comm.Get_size() > 1 and not _state["hooked"]:
        _state["hooked"] = True
        previous = sys.excepthook

        def excepthook(exc_type, exc, tb):
            previous(exc_type, exc, tb)
            code = 130 if issubclass(exc_type, KeyboardInterrupt) else 1
            abort(f"{exc_type.__name__}: {exc}", code)

        sys.excepthook = excepthook
        atexit.register(_exit_check)  # runs before mpi4py's MPI_Finalize


def _exit_check():
    if _state["active"] > 0:
        abort("the process is exiting in the middle of fit", 1)


def _comm():
    if _state["comm"] is None:
        init()
    return _state["comm"]


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _state["comm"] is not None


def rank() -> int:
    """This process's number, 0 .. size() - 1 (0 is the root: it prints and writes files)."""
    return _comm().Get_rank()


def size() -> int:
    """The number of processes training together."""
    return _comm().Get_size()


def abort(reason: str, code: int = 1, announce: bool = True):
    """Stop every process of the run now (``MPI_Abort``), after one line on stderr (unless
    ``announce`` is false)."""
    comm = _comm()
    n = comm.Get_size()
    if announce:
        print(
            f"slidenet.distributed: rank {comm.Get_rank()} of {n} failed ({reason}); stopping "
            f"all {n} processes.",
            file=sys.__stderr__,
            flush=True,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    _state["active"] = 0  # the exit check must not abort a second time
    # mpiexec forwards each process's output through a pipe; MPI_Abort tears the job down at
    # once, so give it a moment to pass on the traceback and the line above first
    time.sleep(0.5)
    comm.Abort(code)
    os._exit(code)  # in case the MPI library returns from MPI_Abort


def allreduce_(buffer: np.ndarray, op: str = "sum") -> np.ndarray:
    """Combine a contiguous array across processes, in place (``op``: 'sum', 'min' or 'max')."""
    comm = _comm()
    if comm.Get_size() > 1:
        mpi = _state["mpi"]
        mpi_op = {"sum": mpi.SUM, "min": mpi.MIN, "max": mpi.MAX}[op]
        comm.Allreduce(mpi.IN_PLACE, buffer, op=mpi_op)
    return buffer


def allreduce(array, average: bool = True) -> np.ndarray:
    """The sum (or with ``average=True`` the mean) of ``array`` over all processes, as a new
    array of the same shape."""
    out = np.array(array, dtype=np.result_type(np.asarray(array).dtype, np.float32), order="C")
    allreduce_(out)
    if average and size() > 1:
        out /= size()
    return out


def broadcast_(buffer: np.ndarray, root: int = 0) -> np.ndarray:
    """Overwrite a contiguous array on every process with the root's, in place."""
    comm = _comm()
    if comm.Get_size() > 1:
        if not buffer.flags.c_contiguous:
            raise ValueError("broadcast_: the array must be C-contiguous; copy it first.")
        comm.Bcast(buffer, root=root)
    return buffer


def broadcast_json(obj, root: int = 0):
    """The root's ``obj`` (anything JSON can hold) on every process."""
    comm = _comm()
    if comm.Get_size() == 1:
        return obj
    data = json.dumps(obj).encode() if comm.Get_rank() == root else b""
    length = np.array([len(data)], dtype=np.int64)
    comm.Bcast(length, root=root)
    buf = np.frombuffer(data, dtype=np.uint8).copy() if data else np.empty(length[0], np.uint8)
    comm.Bcast(buf, root=root)
    return json.loads(buf.tobytes().decode())


def all_agree(ok: bool) -> bool:
    """True on every process when ``ok`` is true on every process (one small Allreduce)."""
    flag = np.array([1 if ok else 0], dtype=np.int32)
    return bool(allreduce_(flag, "min")[0])


def barrier() -> None:
    """Wait until every process has reached this point."""
    _comm().Barrier()


def _enter_fit():
    _state["active"] += 1


def _leave_fit():
    _state["active"] = max(0, _state["active"] - 1)

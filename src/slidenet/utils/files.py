"""Crash-safe file writing, shared by model files, images and checkpoints."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def atomic_write(path, write_fn) -> None:
    """Call ``write_fn(file_object)`` on a temp file next to ``path``, then rename it into place.

    The temp file (``.NAME.XXXXXXXX.tmp`` in the same folder) is flushed and fsynced before the
    rename, and the folder is fsynced after it, so after a crash or power cut ``path`` is either
    the complete old file or the complete new one. A failed write (disk full, a file-size limit,
    a read-only folder) removes the temp file, leaves ``path`` as it was and raises the
    ``OSError`` subclass of the cause, with a message that names ``path`` and the reason.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(
                f"cannot save to '{path}': '{folder}' is a file, not a folder."
            )
        raise FileNotFoundError(f"cannot save to '{path}': folder '{folder}' does not exist.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise _failed(e, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _failed(e, path) from e
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders; the rename is done
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # some file systems refuse fsync on a folder; the data itself is synced
        pass
    finally:
        os.close(dir_fd)


def _failed(error: OSError, path: Path) -> OSError:
    """The same kind of OSError, with a message naming the target and saying it is unchanged."""
    reason = error.strerror or str(error) or type(error).__name__
    state = "the existing file is unchanged" if path.exists() else "nothing was written"
    message = f"cannot save to '{path}': {reason}; {state}."
    if error.errno == errno.EFBIG:
        message += " A file-size limit (ulimit -f) or the file system's maximum was reached."
    elif error.errno == errno.ENOSPC:
        message += " Free some disk space and save again."
    try:
        new = type(error)(error.errno, message) if error.errno else type(error)(message)
    except Exception:  # an OSError subclass with another constructor: keep the original
        return error
    return new

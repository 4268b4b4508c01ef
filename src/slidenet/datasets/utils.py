"""Reading IDX files, the data folder, and checksum-verified downloads.

IDX is the format of the original MNIST and Fashion-MNIST files: a 4-byte magic number (two zero
bytes, a data-type code, the number of dimensions), one big-endian uint32 per dimension, then the
data in C order, big-endian. :func:`read_idx` checks every part of that and names the file and the
numbers when something is wrong.

The errors raised by this package:

* :class:`IDXFormatError` (a ``ValueError``): a file is not a well-formed IDX file.
* :class:`DatasetFormatError` (a ``ValueError``): files are readable but do not make up the data set
  (wrong shapes or dtypes, images and labels of different counts, missing .npz keys).
* :class:`ChecksumError` (a ``ValueError``): a download did not have the expected SHA-256.
* :class:`DatasetNotFoundError` (a ``FileNotFoundError``): the data set is nowhere to be found and
  could not be downloaded; the message says which files to put where.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

__all__ = [
    "ChecksumError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "cache_dir",
    "download",
    "read_idx",
    "sha256_file",
    "write_idx",
]

#: IDX data-type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file (bad magic, dtype code, or payload length)."""


class DatasetFormatError(ValueError):
    """Data files were read but do not form the expected data set (shapes, dtypes, counts, keys)."""


class ChecksumError(ValueError):
    """A downloaded file did not have the expected SHA-256 digest; nothing was kept."""


class DatasetNotFoundError(FileNotFoundError):
    """A data set was found nowhere and could not be downloaded."""


def _dtype_name(dtype: np.dtype) -> str:
    return dtype.newbyteorder("=").name


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a native-endian array.

    Gzip is recognised by its magic bytes ``1f 8b``, whatever the file is called.

    Args:
        path: The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        An array with the dimensions and dtype declared in the header, e.g. ``(60000, 28, 28)``
        uint8 for MNIST training images, ``(60000,)`` uint8 for its labels. The array is writable
        and in native byte order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IDXFormatError: the file is damaged gzip, has a bad magic number, an unknown data-type
            code, or a payload that is shorter or longer than the header declares.

    Example:
        >>> import tempfile, numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     f = write_idx(f"{tmp}/labels-idx1-ubyte.gz", np.array([5, 0, 4], dtype=np.uint8))
        ...     read_idx(f)
        array([5, 0, 4], dtype=uint8)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:
            raise IDXFormatError(f"read_idx: {path!r} is a damaged gzip file ({err}).") from None
    return _parse_idx(data, path)


def _parse_idx(data: bytes, path: str) -> np.ndarray:
    if len(data) < 4:
        raise IDXFormatError(
            f"read_idx: {path!r} is truncated: an IDX header needs at least 4 bytes, "
            f"found {len(data)}."
        )
    if data[0] != 0 or data[1] != 0:
        hint = " (it looks like a zip or .npz archive)" if data[:2] == b"PK" else ""
        raise IDXFormatError(
            f"read_idx: {path!r} is not an IDX file{hint}: the first two bytes must be 0x00 0x00, "
            f"found 0x{data[0]:02x} 0x{data[1]:02x}."
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({_dtype_name(d)})" for c, d in IDX_DTYPES.items())
        raise IDXFormatError(
            f"read_idx: {path!r} has unknown data-type code 0x{code:02x}; IDX defines {known}."
        )
    if ndim == 0:
        raise IDXFormatError(
            f"read_idx: {path!r} declares 0 dimensions; an IDX file has at least one."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(
            f"read_idx: {path!r} is truncated: its header declares {ndim} dimensions "
            f"({header} header bytes), found {len(data)} bytes in all."
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    if math.prod(d for d in dims if d) * dtype.itemsize > 2**62:  # NumPy cannot even shape it
        raise IDXFormatError(
            f"read_idx: {path!r} declares dimensions {'x'.join(map(str, dims))}, too large for "
            "any array; the header is damaged."
        )
    expected = math.prod(dims) * dtype.itemsize
    found = len(data) - header
    declared = (
        f"header declares {'x'.join(map(str, dims))} {_dtype_name(dtype)} = {expected} bytes of "
        f"data, found {found}"
    )
    if found < expected:
        raise IDXFormatError(f"read_idx: {path!r} is truncated: {declared}.")
    if found > expected:
        raise IDXFormatError(
            f"read_idx: {path!r} has {found - expected} trailing bytes: {declared}."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The gzip header carries no time stamp, so the same array always gives the same bytes.

    Args:
        path: Destination file; its folder must exist.
        array: Array of dtype uint8, int8, int16, int32, float32 or float64, with at least one
            dimension, e.g. images ``(N, 28, 28)`` uint8 or labels ``(N,)`` uint8.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: the dtype has no IDX code, or the array is 0-dimensional.
    """
    array = np.asarray(array)
    codes = {d.newbyteorder("="): c for c, d in IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        names = ", ".join(_dtype_name(d) for d in IDX_DTYPES.values())
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX code; use one of {names}.")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got {array.ndim}.")
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[codes[dtype]]).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path


def cache_dir() -> Path:
    """The user's data folder: ``$SLIDENET_DATA`` when set, else ``~/.cache/slidenet``.

    Returns:
        The folder (it may not exist yet); data sets live in subfolders such as ``mnist/``.
    """
    env = os.environ.get("SLIDENET_DATA", "").strip()
    return Path(env).expanduser() if env else Path(os.path.expanduser("~/.cache/slidenet"))


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hexadecimal SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    desc: str | None = None,
    *,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its SHA-256.

    The data is streamed (with a tqdm progress bar) into a temporary file in ``dest``'s folder,
    hashed on the way, and moved into place with :func:`os.replace` only when the digest matches.
    Whatever happens (checksum mismatch, network error, Ctrl-C) the temporary file is removed and
    ``dest`` is either untouched or the complete, verified file.

    Args:
        url: Where to fetch from (``http``, ``https`` or ``file``).
        dest: The final file; missing parent folders are created.
        sha256: Expected hexadecimal SHA-256 digest of the file.
        desc: Label of the progress bar (default: the file name).
        timeout: Socket timeout in seconds.
        progress: Show the progress bar.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ChecksumError: the downloaded bytes have another digest (nothing is kept).
        OSError: the download failed (``urllib.error.URLError`` is an ``OSError``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc or dest.name,
                disable=not progress,
            ) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != sha256.lower():
            raise ChecksumError(
                f"download: SHA-256 mismatch for {url!r}: expected {sha256.lower()}, got "
                f"{digest.hexdigest()} ({size} bytes). The file was not kept; the server sent a "
                f"different or damaged file."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest

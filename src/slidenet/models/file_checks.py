"""Reading a model file as untrusted bytes: the checks made before anything is allocated.

Every zip member is checked first (count, names, flags, declared sizes: zip bombs), then each .npy
header by itself (dtype, declared shape against the bytes present and ``MAX_ARRAY_BYTES``), and
only then is the array read with ``np.load(..., allow_pickle=False)``. See
:mod:`slidenet.models.saving` for the file layout.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
import zlib

import numpy as np

#: Limits for reading a file: members in the zip, bytes of one array, bytes of all members
#: (uncompressed) and bytes of a JSON member.
MAX_MEMBERS = 10_000
MAX_ARRAY_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_JSON_BYTES = 64 * 1024**2


class ModelFileError(ValueError):
    """A model file that cannot be read: truncated, corrupt, unsafe, or not a slidenet model."""


def _gib(n: int) -> str:
    """A byte count for messages: '4 GiB', '64 MiB', '1,234 bytes'."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:,} bytes"


def _name_problem(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if not name:
        return "an empty name"
    if "\x00" in name:
        return "a NUL character in its name"
    if "\\" in name:
        return "a backslash in its name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a '..' path component"
    return None


def _check_members(zf: zipfile.ZipFile, path) -> None:
    """Refuse unsafe or oversized members before anything is read (see the module docstring)."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(
            f"load_model: '{path}' has {len(infos):,} zip members; a model file has at most "
            f"{MAX_MEMBERS:,}. Refused."
        )
    seen, total = set(), 0
    for info in infos:
        shown = repr(info.orig_filename)[:120]
        problem = _name_problem(info.orig_filename) or _name_problem(info.filename)
        if problem is None and info.filename in seen:
            problem = "the same name as another member"
        if problem is None and info.flag_bits & 0x61:  # bits 0 and 6: encrypted; 5: patch data
            problem = "encryption" if info.flag_bits & 0x41 else "patch data (flag bit 5)"
        if problem is None and info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problem = f"compression method {info.compress_type} (only stored or deflated are read)"
        if problem is not None:
            raise ModelFileError(
                f"load_model: '{path}': zip member {shown} has {problem}. Refused."
            )
        seen.add(info.filename)
        limit = MAX_JSON_BYTES if info.filename.endswith(".json") else MAX_ARRAY_BYTES + 65536
        if info.file_size > limit:
            raise ModelFileError(
                f"load_model: '{path}': zip member {shown} unpacks to {_gib(info.file_size)}, over "
                f"the limit of {_gib(limit)}. Refused."
            )
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise ModelFileError(
                f"load_model: '{path}': the zip members unpack to more than "
                f"{_gib(MAX_TOTAL_BYTES)} in all (a zip bomb?). Refused."
            )


def _read_member(zf, name, path) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise ModelFileError(
            f"load_model: '{path}' is missing {name}; the file is incomplete."
        ) from None
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
    ) as e:
        raise ModelFileError(f"load_model: '{path}': {name} is corrupt ({e}).") from None


def check_npy_header(data: bytes, name, path) -> None:
    """Refuse a .npy member whose header declares objects, non-numbers, or too many bytes.

    Only the header is parsed (``numpy.lib.format``), so nothing is allocated for the data.
    """
    fp = io.BytesIO(data)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not read here")
    except Exception as e:  # numpy's header parser also raises tokenize.TokenError, SyntaxError
        raise ModelFileError(
            f"load_model: '{path}': {name} is not a plain .npy array ({e})."
        ) from None
    if dtype.hasobject:
        raise ModelFileError(
            f"load_model: '{path}': {name} is not a plain array: it holds Python objects "
            f"(dtype {dtype}), which only unpickling could read. Refused: model files never "
            "run code."
        )
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(
            f"load_model: '{path}': {name} is not a plain array of numbers (dtype {dtype})."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise ModelFileError(
            f"load_model: '{path}': {name} declares shape {tuple(shape)} of {dtype}, "
            f"{_gib(nbytes)}, over the limit of {_gib(MAX_ARRAY_BYTES)} per array. Refused."
        )
    held = len(data) - fp.tell()
    if held != nbytes:
        raise ModelFileError(
            f"load_model: '{path}': {name} declares shape {tuple(shape)} of {dtype} "
            f"({nbytes:,} bytes) but holds {held:,} bytes of data; the file is corrupt."
        )


def _read_array(zf, name, path) -> np.ndarray:
    data = _read_member(zf, name, path)
    check_npy_header(data, name, path)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)  # never unpickles
    except (ValueError, OSError, EOFError) as e:
        raise ModelFileError(f"load_model: '{path}': {name} is not a plain array ({e}).") from None

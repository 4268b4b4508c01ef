"""The lookup shared by :mod:`.mnist` and :mod:`.fashion_mnist` (same files, same shapes).

Order: the ``path`` argument (and nothing else when it is given) -> the user cache
(``$SLIDENET_DATA/<subdir>`` or ``~/.cache/slidenet/<subdir>``) -> system copies -> a download into
the cache from the mirrors, each file verified by SHA-256.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .utils import (
    DatasetFormatError,
    DatasetNotFoundError,
    cache_dir,
    download,
    read_idx,
)

#: The four IDX files (without ``.gz``) in Keras' order: train images, train labels, test ...
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Source:
    """Where one MNIST-like data set comes from (built from a module's globals at call time)."""

    module: str  # "mnist", used as "mnist.load_data" in messages
    title: str  # "MNIST"
    subdir: str  # folder under the cache and under $SLIDENET_MIRROR
    mirrors: tuple[str, ...]  # base URLs that hold the four .gz files
    sha256: dict[str, str]  # "train-images-idx3-ubyte.gz" -> digest
    system_copies: tuple[Path, ...]  # folders of IDX files or Keras-format .npz files

    @property
    def who(self) -> str:
        return f"{self.module}.load_data"


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the raw file first)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: Path) -> list[str]:
    """The IDX files that ``folder`` lacks (all four when it is not a folder)."""
    return [name for name in IDX_FILES if find_file(folder, name) is None]


def is_complete(location: Path) -> bool:
    """True for an existing .npz file or a folder that holds all four IDX files."""
    if location.is_file():
        return True
    return location.is_dir() and not missing_files(location)


def check_split(x, y, x_from: str, y_from: str, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Check images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 in 0..9; return them."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise DatasetFormatError(
            f"{who}: {x_from} holds an array of shape {x.shape} and dtype {x.dtype}; expected "
            f"images of shape (N, 28, 28) and dtype uint8."
        )
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DatasetFormatError(
            f"{who}: {y_from} holds an array of shape {y.shape} and dtype {y.dtype}; expected "
            f"labels of shape (N,) and dtype uint8."
        )
    if len(x) != len(y):
        raise DatasetFormatError(
            f"{who}: images and labels disagree: {x_from} holds {len(x)} images, {y_from} holds "
            f"{len(y)} labels."
        )
    if y.size and y.max() > 9:
        raise DatasetFormatError(
            f"{who}: {y_from} holds label {int(y.max())}; labels must lie in 0..9."
        )
    return x, y


def load_folder(folder: Path, who: str) -> Arrays:
    """Read the four IDX files of ``folder`` (each raw or gzipped) and check them."""
    lacking = missing_files(folder)
    if lacking:
        raise DatasetNotFoundError(
            f"{who}: {str(folder)!r} lacks {', '.join(f'{n}[.gz]' for n in lacking)}; a data "
            f"folder holds the four files {', '.join(IDX_FILES)} (each may be gzipped)."
        )
    files = [find_file(folder, name) for name in IDX_FILES]
    arrays = [read_idx(f) for f in files]
    names = [repr(str(f)) for f in files]
    train = check_split(arrays[0], arrays[1], names[0], names[1], who)
    test = check_split(arrays[2], arrays[3], names[2], names[3], who)
    return train, test


def load_npz(file: Path, who: str) -> Arrays:
    """Read a Keras-format .npz (keys x_train, y_train, x_test, y_test) without pickle."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            lacking = [k for k in NPZ_KEYS if k not in keys]
            if lacking:
                raise DatasetFormatError(
                    f"{who}: {str(file)!r} lacks the keys {', '.join(lacking)} (it holds "
                    f"{', '.join(keys) or 'nothing'}); a Keras-format .npz holds "
                    f"{', '.join(NPZ_KEYS)}."
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except DatasetFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetFormatError(
            f"{who}: {str(file)!r} is not a readable .npz archive of arrays ({err})."
        ) from None
    name = repr(str(file))
    train = check_split(
        arrays["x_train"], arrays["y_train"], f"{name}['x_train']", f"{name}['y_train']", who
    )
    test = check_split(
        arrays["x_test"], arrays["y_test"], f"{name}['x_test']", f"{name}['y_test']", who
    )
    return train, test


def load_location(location: Path, who: str) -> Arrays:
    """A folder of IDX files or a .npz file."""
    if location.is_dir():
        return load_folder(location, who)
    if location.is_file():
        return load_npz(location, who)
    raise DatasetNotFoundError(
        f"{who}: {str(location)!r} does not exist; pass a Keras-format .npz file or a folder that "
        f"holds {', '.join(IDX_FILES)} (each may be gzipped)."
    )


def mirrors(source: Source) -> list[str]:
    """``$SLIDENET_MIRROR/<subdir>/`` when that variable is set, else the module's list."""
    env = os.environ.get("SLIDENET_MIRROR", "").strip()
    if env:
        return [f"{env.rstrip('/')}/{source.subdir}/"]
    return list(source.mirrors)


def fetch(source: Source, folder: Path) -> None:
    """Download the files that ``folder`` lacks, trying each mirror in turn.

    Raises:
        OSError: no mirror delivered a file; the message lists every attempt and its reason.
    """
    for name in missing_files(folder):
        filename = f"{name}.gz"
        failures = []
        for base in mirrors(source):
            url = f"{base.rstrip('/')}/{filename}"
            try:
                download(url, folder / filename, source.sha256[filename], desc=filename)
                break
            except (OSError, ValueError, http.client.HTTPException) as err:
                if isinstance(err, urllib.error.HTTPError):
                    err.close()
                failures.append(f"{url}: {err}")
        else:
            raise OSError("; ".join(failures) or "no mirror is configured")


def load_data(source: Source, path: str | os.PathLike | None) -> Arrays:
    """Find, check and return ``((x_train, y_train), (x_test, y_test))`` (see the module)."""
    if path is not None:
        return load_location(Path(path).expanduser(), source.who)
    cache = cache_dir() / source.subdir
    for location in (cache, *source.system_copies):
        if is_complete(location):
            return load_location(location, source.who)
    try:
        fetch(source, cache)
    except OSError as err:
        copies = "".join(f"\n  {p} (system copy)" for p in source.system_copies)
        raise DatasetNotFoundError(
            f"{source.who}: the {source.title} data set is not on this machine and the download "
            f"failed.\nLooked in:\n  {cache} (user cache; set SLIDENET_DATA to move it){copies}\n"
            f"To install it by hand, put these files (gzipped or not) into {cache}:\n  "
            + "\n  ".join(f"{n}.gz" for n in IDX_FILES)
            + f"\nor pass load_data(path=...) a Keras-format .npz file or a folder that holds them."
            f"\nThe download failed: {err}"
        ) from err
    return load_folder(cache, source.who)

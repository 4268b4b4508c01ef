"""Coverage-guided fuzzing of the IDX reader, ``slidenet.utils.read_idx``, with atheris.

    .venv/bin/python fuzz/fuzz_idx.py -max_total_time=60 WORK_DIR fuzz/corpus_idx
    fuzz/run.sh 60          # both fuzzers, as CI runs them

Each input is written to a file and read (gzip is recognised by its magic bytes, so the fuzzer
reaches both the raw and the compressed path). The only exception allowed out of ``read_idx`` is
``IDXFormatError`` (a ValueError that names the file); anything else, NumPy warnings included, is
a crash. An array that is read must be writable, native-endian and of the declared size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["slidenet"]):
    import numpy as np

    from slidenet.datasets.utils import IDXFormatError
    from slidenet.utils import read_idx

TMP = Path(tempfile.mkdtemp(prefix="slidenet-fuzz-idx-"))
TARGET = TMP / "input-idx"


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    TARGET.write_bytes(data)
    try:
        array = read_idx(TARGET)
    except IDXFormatError:
        return
    if not (array.flags.writeable and array.dtype.isnative and array.ndim >= 1):
        raise AssertionError(f"read_idx returned {array.dtype} {array.shape} {array.flags}")


def main() -> None:
    warnings.simplefilter("error")
    np.seterr(all="raise", under="ignore")  # underflow to 0 is ordinary float arithmetic
    atheris.Setup(sys.argv, TestOneInput)
    try:
        atheris.Fuzz()
    finally:
        for f in TMP.iterdir():
            os.unlink(f)
        TMP.rmdir()


if __name__ == "__main__":
    main()

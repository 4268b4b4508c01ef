"""Coverage-guided fuzzing of the model-file loader, ``slidenet.load_model``, with atheris.

    .venv/bin/python fuzz/fuzz_model_file.py -max_total_time=60 WORK_DIR fuzz/corpus_model
    fuzz/run.sh 60          # both fuzzers, as CI runs them

Each input is written to a file and loaded. Two kinds of input, told apart by the first byte:

* a JSON text (``{...``): it becomes the ``slidenet.json`` description inside a zip that also holds
  the weight and optimizer arrays of the seed model with the same number of weights; this reaches
  the code that rebuilds layers, compile settings and optimizer state;
* anything else: the bytes are the model file (zip structure, members, ``.npy`` headers).

The loader's memory bound per array is lowered to 16 MiB here. The only exception allowed out of
``load_model`` is ``ModelFileError`` (a ValueError that names
the file); anything else, NumPy warnings included, is a crash that atheris reports with the input
that caused it. Models that load must also predict on one example of their input shape.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["slidenet"]):
    import numpy as np

    import slidenet
    from slidenet.models import file_checks
    from slidenet.models.saving import ModelFileError

# A few bytes of JSON may declare Dense(10**8): legal up to the loader's 2 GiB bound, but slow to
# allocate thousands of times. The harness lowers the bound (the bound itself is tested in
# tests/hardening/test_safe_model_files.py) so that every input runs in milliseconds.
file_checks.MAX_ARRAY_BYTES = 16 * 1024**2

CORPUS = Path(__file__).resolve().parent / "corpus_model"
TMP = Path(tempfile.mkdtemp(prefix="slidenet-fuzz-model-"))
TARGET = TMP / "input.slidenet"


def _seed_members() -> dict[int, list[tuple[str, bytes]]]:
    """n_weights -> the array members of the seed model with that many weights."""
    seeds = {}
    for path in sorted(CORPUS.glob("model-*")):
        with zipfile.ZipFile(path) as zf:
            n = json.loads(zf.read("slidenet.json")).get("n_weights", 0)
            seeds[n] = [
                (i.filename, zf.read(i)) for i in zf.infolist() if i.filename.endswith(".npy")
            ]
    return seeds


SEEDS = _seed_members()
DEFAULT = max(SEEDS)


def wrap_header(text: bytes) -> bytes:
    """A zip with ``text`` as slidenet.json and a seed model's arrays."""
    n = DEFAULT
    try:
        header = json.loads(text)
        count = header.get("n_weights") if isinstance(header, dict) else None
        if isinstance(count, int) and count in SEEDS:  # a dict or list is unhashable
            n = count
    except (ValueError, RecursionError):
        pass
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("slidenet.json", text)
        for name, data in SEEDS[n]:
            zf.writestr(name, data)
    return out.getvalue()


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' name
    TARGET.write_bytes(wrap_header(data) if data[:1] == b"{" else data)
    try:
        model = slidenet.load_model(TARGET)
    except ModelFileError:
        return
    shape = model.input_shape[1:]
    if int(np.prod(shape)) <= 100_000:
        try:
            model.predict(np.zeros((1, *shape), np.float32), verbose=0)
        except FloatingPointError:  # a loaded model with huge weights may overflow: reported
            pass


def main() -> None:
    warnings.simplefilter("error")  # a NumPy RuntimeWarning is a finding too
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

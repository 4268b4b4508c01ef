"""Fuzz the two readers of untrusted bytes: ``slidenet.load_model`` and ``read_idx``.

Starting from valid files, the bytes are flipped, truncated, extended or replaced; and, one level
up, the JSON description inside a model file is rewritten with random values. Each read either
returns (a model / an array) or raises a documented ValueError (``ModelFileError``,
``IDXFormatError``) naming ``load_model`` / ``read_idx``.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_support import FUZZ, call_clean
from hypothesis import given
from hypothesis import strategies as st

import slidenet as sn
from slidenet import layers as L
from slidenet.datasets.utils import read_idx as datasets_read_idx
from slidenet.datasets.utils import write_idx
from slidenet.models import file_checks
from slidenet.utils import read_idx


def _valid_model_bytes() -> bytes:
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [
            L.Input((5, 5, 1)),
            L.Conv2D(2, 3, activation="relu"),
            L.MaxPooling2D(),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dropout(0.5, seed=0),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(np.ones((4, 5, 5, 1)), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m.slidenet")
        return (Path(tmp) / "m.slidenet").read_bytes()


MODEL_BYTES = _valid_model_bytes()
IDX_ARRAYS = [
    np.arange(6, dtype=np.uint8).reshape(2, 3),
    np.array([1.5, -2.0], dtype=np.float32),
    np.arange(8, dtype=np.int16).reshape(2, 2, 2),
]


@st.composite
def mutated(draw, data: bytes):
    """``data`` with a few random edits: flipped bytes, a cut, an insertion, or random bytes."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "cut", "insert", "random"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "random":
            data = bytearray(draw(st.binary(max_size=64)))
    return bytes(data)


def _load_bytes(data: bytes, suffix: str, reader, who, wrapped=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        return call_clean(reader, who, path, _wrapped=wrapped)


@FUZZ
@given(mutated(MODEL_BYTES))
def test_load_model_on_corrupted_bytes(data):
    ok, model = _load_bytes(data, ".slidenet", sn.load_model, "load_model")
    if ok:
        assert model.built


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 10**12),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["Dense", "Conv2D", "softmax", "same", "adam", "sgd", "mse"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every path (tuple of keys / indices) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _replace(value, path, new):
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


with zipfile.ZipFile(io.BytesIO(MODEL_BYTES)) as _zf:
    HEADER = json.loads(_zf.read("slidenet.json"))
HEADER_PATHS = sorted(_paths(HEADER), key=repr)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(HEADER_PATHS), json_values), min_size=1, max_size=3))
def test_load_model_on_rewritten_descriptions(edits):
    header = json.loads(json.dumps(HEADER))
    for path, value in edits:
        try:
            header = _replace(header, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier edit removed that place
            continue
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(MODEL_BYTES)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "slidenet.json":
                data = json.dumps(header).encode()
            dst.writestr(info.filename, data)
    with pytest.MonkeyPatch.context() as mp:  # JSON may ask for Dense(10**8): keep it small
        mp.setattr(file_checks, "MAX_ARRAY_BYTES", 1024**2)
        ok, model = _load_bytes(
            out.getvalue(), ".slidenet", sn.load_model, "load_model", "invalid model description"
        )
    if ok:
        assert model.built
        model.predict(np.zeros((1, *model.input_shape[1:])), verbose=0)


@st.composite
def idx_bytes(draw):
    array = draw(st.sampled_from(IDX_ARRAYS))
    with tempfile.TemporaryDirectory() as tmp:
        gz = draw(st.booleans())
        data = write_idx(Path(tmp) / ("a.gz" if gz else "a"), array).read_bytes()
    if gz and draw(st.booleans()):  # edit the IDX bytes inside the gzip stream
        return gzip.compress(draw(mutated(gzip.decompress(data))), mtime=0)
    return draw(mutated(data))


@FUZZ
@given(idx_bytes(), st.sampled_from([read_idx, datasets_read_idx]))
def test_read_idx_on_corrupted_bytes(data, reader):
    ok, array = _load_bytes(data, ".idx", reader, "read_idx")
    if ok:
        assert isinstance(array, np.ndarray) and array.ndim >= 1 and array.flags.writeable

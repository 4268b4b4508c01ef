"""Write the seed corpora of the atheris fuzzers: a few small, valid files.

    .venv/bin/python fuzz/make_corpus.py

fuzz/corpus_model/: three model files (a Dense net, a compiled conv net with batch norm and dropout
after one epoch of Adam, and an uncompiled Conv1D net) and the JSON description of each (inputs
that start with ``{`` are wrapped into a zip by fuzz_model_file.py). fuzz/corpus_idx/: IDX files of
each data type, raw and gzip-compressed. The files are named without the ``.slidenet`` suffix,
which .gitignore hides. Running the script again gives the same bytes.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import slidenet as sn
from slidenet.datasets.utils import write_idx

HERE = Path(__file__).resolve().parent


def models():
    L = sn.layers
    sn.utils.set_random_seed(0)
    dense = sn.Sequential([L.Input((3,)), L.Dense(2, activation="softmax")])
    conv = sn.Sequential(
        [
            L.Input((6, 6, 1)),
            L.Conv2D(2, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dropout(0.5, seed=1),
            L.Dense(3, activation="softmax"),
        ]
    )
    conv.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    x = np.random.default_rng(0).uniform(size=(4, 6, 6, 1))
    conv.fit(x, np.array([0, 1, 2, 0]), epochs=1, batch_size=2, verbose=0)
    signal = sn.Sequential(
        [L.Input((8, 1)), L.Conv1D(2, 3), L.GlobalMaxPooling1D(), L.Dense(1, activation="sigmoid")]
    )
    return {"dense": dense, "conv": conv, "signal": signal}


def write_model_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models().items():
            path = Path(tmp) / "m.slidenet"
            model.save(path)
            data = path.read_bytes()
            (folder / f"model-{name}").write_bytes(data)
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                header = json.loads(zf.read("slidenet.json"))
            (folder / f"header-{name}.json").write_text(json.dumps(header, separators=(",", ":")))


def write_idx_corpus(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "images-u8": np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4),
        "labels-u8": np.array([5, 0, 4], dtype=np.uint8),
        "i8": np.array([-1, 2, -3], dtype=np.int8),
        "i16": np.arange(6, dtype=np.int16).reshape(2, 3),
        "i32": np.array([[1 << 20]], dtype=np.int32),
        "f32": np.array([1.5, -2.25], dtype=np.float32),
        "f64": np.array([[0.1], [1e300]], dtype=np.float64),
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}-idx", array)
        write_idx(folder / f"{name}-idx.gz", array)


def main() -> int:
    write_model_corpus(HERE / "corpus_model")
    write_idx_corpus(HERE / "corpus_idx")
    for folder in ("corpus_model", "corpus_idx"):
        files = sorted((HERE / folder).iterdir())
        size = sum(f.stat().st_size for f in files)
        print(f"fuzz/{folder}: {len(files)} files, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

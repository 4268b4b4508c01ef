"""``image_dataset_from_directory``: batches of images read from class folders, lazily (Keras 3).

A folder ``main/`` with one sub-folder of images per class (``main/cat/1.png``, ``main/dog/a.jpg``,
searched recursively) gives batches ``(x, y)``: x float32 (N, H, W, C) with values 0..255 and
y the labels 0, 1, ... in the sorted order of the sub-folder names (``class_names``). Only the
file list is read up front: each batch's files are opened and decoded with Pillow when the batch
is drawn, so a folder larger than memory can be trained on (``model.fit(dataset)``).

As in Keras, ``validation_split`` with a ``seed`` shuffles the file list with
``np.random.RandomState(seed)`` and keeps the last ``int(validation_split * n)`` files for
validation, so two calls with the same seed (subsets "training" and "validation") are disjoint
and together hold every file, and the files match Keras' for the same folder and seed.
"""

from __future__ import annotations

import math
import os

import numpy as np

from slidenet._validation import unknown_name
from slidenet.utils.random import spawn_generator

__all__ = ["ImageDataset", "image_dataset_from_directory"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_PIL_FILTERS = {  # Keras' interpolation names that Pillow has
    "nearest": "NEAREST",
    "bilinear": "BILINEAR",
    "bicubic": "BICUBIC",
    "area": "BOX",
    "lanczos3": "LANCZOS",
}


def _pil_image():
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            "image_dataset_from_directory needs Pillow to read images. Install it with: "
            "pip install slidenet[images]  (or: pip install Pillow)"
        ) from err
    return Image


def _read_image(path, image_size, num_channels, interpolation, crop_to_aspect_ratio):
    """One file as float32 (H, W, C), values as stored (0..255 for 8-bit images)."""
    Image = _pil_image()
    height, width = image_size
    with Image.open(path) as img:
        if num_channels == 1:
            if img.mode not in ("L", "I;16", "I"):  # Keras keeps 16- and 32-bit grayscale
                img = img.convert("L")
        else:
            mode = "RGB" if num_channels == 3 else "RGBA"
            if img.mode != mode:
                img = img.convert(mode)
        pixels = np.asarray(img, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w = pixels.shape[:2]
    box = (0, 0, w, h)
    if crop_to_aspect_ratio:  # the largest centred window with the target aspect ratio
        crop_h = min(h, int(w * height / width))
        crop_w = min(w, int(h * width / height))
        top, left = int((h - crop_h) / 2), int((w - crop_w) / 2)
        box = (left, top, left + crop_w, top + crop_h)
    if (h, w) == (height, width) and box == (0, 0, w, h):
        return pixels
    resample = getattr(Image.Resampling, _PIL_FILTERS[interpolation])
    channels = [  # float ("F") images: resized values are not rounded to integers
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[:, :, c])).resize(
                (width, height), resample, box=box
            )
        )
        for c in range(pixels.shape[2])
    ]
    return np.stack(channels, axis=-1).astype(np.float32, copy=False)


class ImageDataset:
    """Batches of images from files, read one batch at a time: what
    :func:`image_dataset_from_directory` returns.

    Iterating yields ``(x, y)`` (or ``x`` alone when there are no labels): x float32
    (N, H, W, C), y int32 (N,) for label_mode "int", float32 (N, K) one-hot for "categorical",
    float32 (N, 1) for "binary". ``len(dataset)`` is the number of batches. Every iteration is a
    new pass; with shuffle each pass takes a new order from a generator seeded with ``seed``, so
    the sequence of epochs repeats for the same seed.

    Attributes:
        class_names: the class of each label (sorted sub-folder names), or None without labels.
        file_paths: the files, in the order of the (unshuffled) pass.
    """

    def __init__(
        self,
        file_paths,
        labels,
        class_names,
        *,
        label_mode,
        batch_size,
        image_size,
        num_channels,
        interpolation,
        crop_to_aspect_ratio,
        shuffle,
        seed,
    ):
        self.file_paths = list(file_paths)
        self.class_names = class_names
        self.label_mode = label_mode
        self.batch_size = batch_size
        self.image_size = tuple(image_size)
        self.num_channels = num_channels
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.shuffle = shuffle
        self._labels = None if label_mode is None else np.asarray(labels, dtype=np.int64)
        self._rng = spawn_generator(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.file_paths) / (self.batch_size or 1))

    def __repr__(self) -> str:
        h, w = self.image_size
        return (
            f"ImageDataset({len(self.file_paths)} files, {len(self)} batches of "
            f"{self.batch_size} images {h}x{w}x{self.num_channels}, label_mode={self.label_mode!r})"
        )

    def __iter__(self):
        n = len(self.file_paths)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        size = self.batch_size or 1
        for start in range(0, n, size):
            x, y = self._load(order[start : start + size])
            if self.batch_size is None:  # unbatched: one example at a time
                x, y = x[0], None if y is None else y[0]
            yield x if y is None else (x, y)

    def _load(self, indices):
        """Decode the files of one batch (only these are opened) and encode their labels."""
        x = np.stack(
            [
                _read_image(
                    self.file_paths[i],
                    self.image_size,
                    self.num_channels,
                    self.interpolation,
                    self.crop_to_aspect_ratio,
                )
                for i in indices
            ]
        )
        if self.label_mode is None:
            return x, None
        labels = self._labels[indices]
        if self.label_mode == "int":
            return x, labels.astype(np.int32)
        if self.label_mode == "binary":
            return x, labels.astype(np.float32)[:, None]
        k = max(len(self.class_names), int(self._labels.max()) + 1)
        return x, np.eye(k, dtype=np.float32)[labels]


def _index_directory(directory, labels, class_names, follow_links):
    """(file paths, labels, class names) in Keras' order: classes in order, then each class
    folder walked with sorted folder and file names."""
    if labels == "inferred":
        subdirs = [
            d
            for d in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        ]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError(
                    f"image_dataset_from_directory: class_names {list(class_names)} do not "
                    f"match the sub-folders of {str(directory)!r}: {subdirs} (or a subset)."
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
    paths, found = [], []
    for index, subdir in enumerate(subdirs):
        top = os.path.join(directory, subdir)
        walk = sorted(os.walk(top, followlinks=follow_links), key=lambda entry: entry[0])
        for root, _, files in walk:
            for name in sorted(files):
                if name.lower().endswith(ALLOWLIST_FORMATS):
                    paths.append(os.path.join(root, name))
                    found.append(index)
    if labels == "inferred":
        return paths, found, subdirs
    if labels is None:
        return paths, None, None
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels):
        raise ValueError("image_dataset_from_directory: labels must be a list of int labels.")
    if len(labels) != len(paths):
        raise ValueError(
            f"image_dataset_from_directory: {len(labels)} labels for {len(paths)} image files "
            f"in {str(directory)!r}; give one label per file, in sorted path order."
        )
    return paths, list(labels), [str(v) for v in sorted(set(labels))]


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    verbose=True,
):
    """Batches of images from a folder with one sub-folder per class, decoded lazily.

    Args:
        directory: the folder. With ``labels="inferred"`` each sub-folder holds one class.
        labels: "inferred" (from the sub-folders), None (images only) or a list of int labels,
            one per file in sorted path order.
        label_mode: "int", "categorical", "binary" (exactly two classes) or None (no labels).
        class_names: the classes to use, in label order (a subset of the sub-folders);
            default: every sub-folder, sorted.
        color_mode: "grayscale", "rgb" or "rgba": 1, 3 or 4 channels.
        batch_size: images per batch; None yields single images.
        image_size: (height, width) every image is resized to (an int for a square).
        shuffle: shuffle the files (a new order every pass); False: sorted path order.
        seed: seed of the shuffling; required with ``validation_split`` and shuffle.
        validation_split: fraction of the files kept for validation (with ``subset``).
        subset: "training", "validation" or "both" (returns [training, validation]).
        interpolation: resizing filter: "bilinear", "nearest", "bicubic", "area", "lanczos3".
        follow_links: also walk folders reached through symbolic links.
        crop_to_aspect_ratio: crop the largest centred window with the target aspect ratio
            before resizing, instead of stretching.
        verbose: print how many files and classes were found.

    Returns:
        An :class:`ImageDataset` (or a list of two for ``subset="both"``) of (x, y) batches:
        x float32 (N, H, W, C) with values 0..255; y as ``label_mode`` says.
    """
    who = "image_dataset_from_directory"
    if labels not in ("inferred", None) and not isinstance(labels, list | tuple):
        raise ValueError(
            f"{who}: labels must be 'inferred', None or a list of int labels, got {labels!r}."
        )
    if class_names is not None and labels != "inferred":
        raise ValueError(f"{who}: class_names applies only with labels='inferred'.")
    if label_mode not in ("int", "categorical", "binary", None):
        raise unknown_name("label_mode", label_mode, ("int", "categorical", "binary"))
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if color_mode not in _CHANNELS:
        raise unknown_name("color_mode", color_mode, _CHANNELS)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not (
        isinstance(image_size, list | tuple)
        and len(image_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)
    ):
        raise ValueError(f"{who}: image_size must be (height, width) > 0, got {image_size!r}.")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"{who}: batch_size must be a positive integer or None.")
    interpolation = str(interpolation).lower()
    if interpolation not in _PIL_FILTERS:
        raise unknown_name("interpolation", interpolation, _PIL_FILTERS)
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"{who}: validation_split must be in (0, 1), got {validation_split}.")
    if bool(validation_split) != (subset is not None):
        raise ValueError(
            f"{who}: validation_split and subset go together: give both (e.g. "
            "validation_split=0.2, subset='training', seed=1337) or neither."
        )
    if subset not in ("training", "validation", "both", None):
        raise unknown_name("subset", subset, ("training", "validation", "both"))
    if validation_split and shuffle and seed is None:
        raise ValueError(
            f"{who}: with validation_split and shuffle=True give a seed, the same for the "
            "training and validation calls, so that the two subsets do not overlap."
        )
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{who}: directory {str(directory)!r} does not exist.")
    if seed is None:
        seed = int(spawn_generator().integers(10**6))
    paths, found, class_names = _index_directory(directory, labels, class_names, follow_links)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(
            f"{who}: label_mode='binary' needs exactly 2 classes, found {len(class_names)}: "
            f"{class_names}."
        )
    if verbose:
        classes = f" belonging to {len(class_names)} classes" if class_names is not None else ""
        print(f"Found {len(paths)} files{classes}.")
    if shuffle:  # as Keras: shuffle the list once with the seed, so a split is the same each time
        order = np.random.RandomState(seed).permutation(len(paths))  # noqa: NPY002 (Keras' rule)
        paths = [paths[i] for i in order]
        found = None if found is None else [found[i] for i in order]
    if not paths:
        raise ValueError(
            f"{who}: no images found in {str(directory)!r} (file types: "
            f"{', '.join(ALLOWLIST_FORMATS)})."
        )
    n_val = int(validation_split * len(paths)) if validation_split else 0
    if validation_split and n_val in (0, len(paths)):
        raise ValueError(
            f"{who}: validation_split={validation_split} of {len(paths)} files leaves {n_val} "
            "for validation; use a larger split or more files."
        )

    def make(part, mixed):
        take = slice(None, len(paths) - n_val) if part == "training" else slice(-n_val, None)
        if not n_val:
            take = slice(None)
        elif verbose:
            print(f"Using {len(paths[take])} files for {part}.")
        return ImageDataset(
            paths[take],
            None if found is None else found[take],
            class_names,
            label_mode=label_mode,
            batch_size=batch_size,
            image_size=image_size,
            num_channels=_CHANNELS[color_mode],
            interpolation=interpolation,
            crop_to_aspect_ratio=crop_to_aspect_ratio,
            shuffle=mixed,
            seed=seed + (part == "validation"),
        )

    if subset == "both":  # as Keras: the validation half is never shuffled
        return [make("training", shuffle), make("validation", False)]
    return make(subset or "training", shuffle)

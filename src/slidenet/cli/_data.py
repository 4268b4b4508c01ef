"""Data sets named on the command line, and images converted to a model's input.

``--dataset`` accepts:

* ``mnist-sample``: the 5,000 bundled MNIST digits (always offline);
* ``mnist``, ``fashion-mnist``: the full sets (cache, system copies or download; see
  :mod:`slidenet.datasets.mnist`);
* ``xo``: the generated X-versus-O images (1,000 training, 200 test);
* ``FILE.npz``: a Keras-format archive with the arrays ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` (images (N, H, W) or (N, H, W, C), integer labels (N,)) and optionally
  ``class_names`` (strings); read with ``allow_pickle=False``;
* ``FOLDER``: one sub-folder of images per class, named after the class. When ``FOLDER/train`` and
  ``FOLDER/test`` exist, they are the two splits (each with class sub-folders); otherwise every
  fifth image of each class, in file-name order, is held out for testing (deterministic).
  Images are converted to grayscale or RGB and resized to the model's input with a note.

Everything comes out as float32 images (N, H, W, C) scaled to [0, 1] and int64 labels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slidenet.cli._common import CLIError, note
from slidenet.utils.image_input import resize_image

NAMES = ("mnist-sample", "mnist", "fashion-mnist", "xo")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
#: In a FOLDER without train/ and test/, images number 4, 9, 14, ... of each class are test images.
HOLD_OUT_EVERY = 5

HELP = (
    "data set: mnist-sample (bundled), mnist, fashion-mnist, xo, a Keras-format FILE.npz, or a "
    "FOLDER with one sub-folder of images per class"
)


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None = None

    @property
    def n_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        top = max(int(self.y_train.max(initial=0)), int(self.y_test.max(initial=0)))
        return top + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> str:
        h, w, c = self.input_shape
        return (
            f"{self.name}: {len(self.x_train):,} training and {len(self.x_test):,} test images of "
            f"{h}x{w}x{c}, {self.n_classes} classes"
        )


def load(spec: str, target=None, size=None) -> Dataset:
    """The data set named ``spec``; ``target`` (H, W, C) is the model's input (folders only),
    ``size`` (H, W) the ``--image-size`` for a folder when there is no model yet."""
    if spec == "mnist-sample":
        from slidenet.datasets import mnist_sample

        return _from_arrays(spec, mnist_sample.load_data())
    if spec == "mnist":
        from slidenet.datasets import mnist

        return _from_arrays(spec, mnist.load_data())
    if spec == "fashion-mnist":
        from slidenet.datasets import fashion_mnist

        return _from_arrays(spec, fashion_mnist.load_data(), list(fashion_mnist.CLASS_NAMES))
    if spec == "xo":
        from slidenet.datasets import xo

        return _from_arrays(spec, xo.load_data(), list(xo.CLASS_NAMES))
    path = Path(spec).expanduser()
    if path.is_dir():
        return _from_folder(spec, path, target, size)
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise CLIError(f"dataset file {spec!r} is not a .npz archive")
        return _from_npz(spec, path)
    raise CLIError(
        f"unknown dataset {spec!r}: not one of {', '.join(NAMES)} and no such file or folder"
    )


# ----- arrays -----------------------------------------------------------------------------------
def scale_images(x: np.ndarray, what: str) -> np.ndarray:
    """Images as float32 (N, H, W, C) in [0, 1]: integers 0..255 are divided by 255."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise CLIError(f"{what} has shape {x.shape}; expected images (N, H, W) or (N, H, W, C)")
    if x.dtype.kind in "iub":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise CLIError(f"{what} holds integers outside 0..255; store 8-bit images")
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind != "f":
        raise CLIError(f"{what} has dtype {x.dtype}; expected numbers")
    if not np.isfinite(x).all():
        raise CLIError(f"{what} contains NaN or Inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise CLIError(f"{what} holds values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    x = x.astype(np.float32)
    if hi > 1:
        note(f"{what} holds floats up to {hi:g}; dividing by 255")
        x /= np.float32(255.0)
    return x


def check_labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise CLIError(f"{what} has shape {y.shape} and dtype {y.dtype}; expected integers (N,)")
    if len(y) != n:
        raise CLIError(f"{what} holds {len(y)} labels for {n} images")
    if y.size and y.min() < 0:
        raise CLIError(f"{what} holds negative labels; classes are numbered 0, 1, ...")
    return y.astype(np.int64)


def _from_arrays(name, arrays, names=None) -> Dataset:
    (x_train, y_train), (x_test, y_test) = arrays
    x_train = scale_images(x_train, f"{name} x_train")
    x_test = scale_images(x_test, f"{name} x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise CLIError(
            f"{name}: training images are {x_train.shape[1:]} but test images {x_test.shape[1:]}"
        )
    y_train = check_labels(y_train, len(x_train), f"{name} y_train")
    y_test = check_labels(y_test, len(x_test), f"{name} y_test")
    data = Dataset(name, x_train, y_train, x_test, y_test, names)
    top = max(int(y_train.max()), int(y_test.max()))
    if names is not None and top >= len(names):
        raise CLIError(f"{name}: label {top} but only {len(names)} class names")
    return data


def _from_npz(spec: str, path: Path) -> Dataset:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise CLIError(
                    f"{spec!r} lacks {', '.join(missing)}; a dataset .npz holds "
                    f"{', '.join(keys)} (and optionally class_names)"
                )
            arrays = {k: npz[k] for k in keys}
            names = npz["class_names"] if "class_names" in npz.files else None
    except CLIError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise CLIError(f"cannot read {spec!r} as a .npz archive of arrays ({err})") from None
    if names is not None:
        names = [str(n) for n in np.asarray(names).reshape(-1)]
    split = ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
    return _from_arrays(spec, split, names)


# ----- images -----------------------------------------------------------------------------------
def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float image (H, W) or (H, W, C) with Pillow (Lanczos), per channel."""
    return resize_image(image, height, width)


def read_image(path, channels: int) -> np.ndarray:
    """An image file as float32 (H, W, channels) in [0, 1]: grayscale for 1, RGB for 3."""
    from PIL import UnidentifiedImageError

    from slidenet.filters import load_image

    if channels not in (1, 3):
        raise CLIError(f"models with {channels} input channels do not take image files")
    try:
        image = load_image(path, mode="L" if channels == 1 else "RGB")
    except UnidentifiedImageError:
        raise CLIError(f"{str(path)!r} is not an image file Pillow can read") from None
    return image[..., None] if image.ndim == 2 else image


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {
        d.name: _image_files(d)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    classes = {name: files for name, files in classes.items() if files}
    if len(classes) < 2:
        raise CLIError(
            f"folder {str(root)!r} needs at least two sub-folders of images, one per class "
            f"(found {len(classes)}); image types: {', '.join(IMAGE_SUFFIXES)}"
        )
    return classes


def _from_folder(spec: str, root: Path, target, size) -> Dataset:
    from PIL import Image

    if (root / "train").is_dir() and (root / "test").is_dir():
        train, test = _class_folders(root / "train"), _class_folders(root / "test")
        names = sorted(train)
        extra = sorted(set(test) - set(train))
        if extra:
            raise CLIError(f"{spec}: test classes {', '.join(extra)} are not in train/")
    else:
        classes = _class_folders(root)
        names = sorted(classes)
        last = HOLD_OUT_EVERY - 1
        train = {
            n: [f for i, f in enumerate(fs) if i % HOLD_OUT_EVERY != last]
            for n, fs in classes.items()
        }
        test = {
            n: [f for i, f in enumerate(fs) if i % HOLD_OUT_EVERY == last]
            for n, fs in classes.items()
        }
        note(
            f"{spec} has no train/ and test/ sub-folders; holding out every {HOLD_OUT_EVERY}th "
            "image of each class (in file-name order) for testing"
        )
    files = [f for fs in (*train.values(), *test.values()) for f in fs]
    if target is not None:
        height, width, channels = target
        why = "the model's input"
    else:
        modes, sizes = [], Counter()
        for f in files:
            try:
                with Image.open(f) as img:
                    modes.append(img.mode)
                    sizes[(img.height, img.width)] += 1
            except (OSError, ValueError) as err:
                raise CLIError(f"cannot read image {str(f)!r} ({err})") from None
        gray = all(m in ("1", "L", "LA", "La", "I", "F") or m.startswith("I;") for m in modes)
        channels = 1 if gray else 3
        if size is not None:
            (height, width), why = size, "--image-size"
        else:
            (height, width) = sizes.most_common(1)[0][0]
            why = "the most common size" if len(sizes) > 1 else ""

    def read_split(split):
        xs, ys, resized = [], [], 0
        for label, name in enumerate(names):
            for f in split.get(name, []):
                image = read_image(f, channels)
                if image.shape[:2] != (height, width):
                    image = resize(image, height, width)
                    resized += 1
                xs.append(image.reshape(height, width, channels))
                ys.append(label)
        x = np.stack(xs) if xs else np.zeros((0, height, width, channels), np.float32)
        return x, np.asarray(ys, dtype=np.int64), resized

    x_train, y_train, r1 = read_split(train)
    x_test, y_test, r2 = read_split(test)
    if len(x_train) == 0 or len(x_test) == 0:
        raise CLIError(f"{spec}: the {'training' if len(x_train) == 0 else 'test'} split is empty")
    if r1 + r2:
        note(f"resized {r1 + r2} of {len(files)} images to {height}x{width} ({why})")
    return Dataset(spec, x_train, y_train, x_test, y_test, names)

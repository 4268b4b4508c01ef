"""What the page sends in: uploaded images (checked before they are decoded) and data-set images.

Uploads are refused, each with a one-line message, when they are larger than
:data:`MAX_UPLOAD_BYTES` (413), not an image Pillow can read (400), or a decompression bomb: a
small file that claims more than :data:`MAX_PIXELS` pixels (413), found from the header before
any pixel is decoded. An accepted image is read by :func:`slidenet.filters.load_image`, the
reader ``slidenet predict`` uses.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "DataSource",
    "InputError",
    "decode_image",
    "png_bytes",
    "resolve_dataset",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 4096 * 4096

#: Data sets that ``dataset=`` names (the CLI also takes .npz files and folders).
NAMES = ("mnist-sample", "mnist", "fashion-mnist", "xo")


class InputError(ValueError):
    """A request the server refuses: ``status`` is the HTTP code, the message is one line."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, channels: int) -> np.ndarray:
    """Image file bytes -> float32 (h, w, channels) in [0, 1] (grayscale for 1, RGB for 3).

    Raises:
        InputError: too large (413), a decompression bomb (413), not an image (400).
    """
    from PIL import Image, UnidentifiedImageError

    from slidenet.filters import load_image

    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(_too_large(len(data)), 413)
    if not data:
        raise InputError("the request has no image: send PNG (or JPEG, ...) bytes as the body")
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            "refused: the image claims too many pixels (decompression bomb)", 413
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputError(
            "the upload is not an image Pillow can read; send PNG, JPEG, GIF, BMP or WebP bytes"
        ) from None
    if width * height > MAX_PIXELS:
        raise InputError(
            f"refused: the image is {width}x{height} = {width * height:,} pixels, more than "
            f"{MAX_PIXELS:,} (a decompression bomb?); scale it down first",
            413,
        )
    try:
        image = load_image(io.BytesIO(data), mode="L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise InputError(f"the image could not be decoded ({_short(err)})") from None
    return image[..., None] if image.ndim == 2 else image


def _too_large(size: int) -> str:
    return f"the upload is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (text[:120] + "...") if len(text) > 120 else (text or type(err).__name__)


def png_bytes(image: np.ndarray) -> bytes:
    """A float image (H, W, 1) or (H, W, 3) in [0, 1] as PNG bytes (in memory)."""
    from PIL import Image

    pixels = np.clip(np.round(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class DataSource:
    """A data set's test split: ``x`` float32 (N, H, W, C) in [0, 1], ``y`` int (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    class_names: list[str] | None = None

    def image(self, index) -> tuple[np.ndarray, int]:
        """(image, label) number ``index``; InputError (400) when out of range."""
        n = len(self.x)
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise InputError(f"dataset_index must be an integer, got {index!r}")
        if not 0 <= index < n:
            raise InputError(
                f"dataset_index {index} is out of range: the test split of {self.name} has "
                f"{n:,} images (0..{n - 1})"
            )
        return self.x[index], int(self.y[index])

    def examples(self, per_class: int = 1, limit: int = 20) -> list[dict]:
        """The first ``per_class`` test images of each class (at most ``limit`` classes)."""
        out = []
        for label in np.unique(self.y)[:limit]:
            for i in np.flatnonzero(self.y == label)[:per_class]:
                out.append({"index": int(i), "label": int(label)})
        return out


def _scaled(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"dataset images must be (N, H, W) or (N, H, W, C), got {x.shape}")
    if x.dtype.kind in "iub":
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32)
    return x / np.float32(255.0) if x.size and float(x.max()) > 1.0 else x


def resolve_dataset(dataset) -> DataSource | None:
    """A :class:`DataSource` for ``dataset``: None; a name (mnist-sample, mnist, fashion-mnist,
    xo); (x_test, y_test) or (x_test, y_test, class_names); or an object with ``x_test``,
    ``y_test`` (and optionally ``class_names``, ``name``), such as the CLI's data sets."""
    if dataset is None or isinstance(dataset, DataSource):
        return dataset
    if isinstance(dataset, str):
        from slidenet import datasets

        modules = {
            "mnist-sample": datasets.mnist_sample,
            "mnist": datasets.mnist,
            "fashion-mnist": datasets.fashion_mnist,
            "xo": datasets.xo,
        }
        if dataset not in modules:
            raise ValueError(
                f"unknown dataset {dataset!r}: create_app takes one of {', '.join(NAMES)} or "
                "arrays (x_test, y_test[, class_names])"
            )
        module = modules[dataset]
        _, (x, y) = module.load_data()
        names = getattr(module, "CLASS_NAMES", None)
        return DataSource(dataset, _scaled(x), np.asarray(y).astype(np.int64), _names(names))
    if hasattr(dataset, "x_test"):
        name = str(getattr(dataset, "name", "dataset"))
        names = getattr(dataset, "class_names", None)
        return DataSource(name, _scaled(dataset.x_test), np.asarray(dataset.y_test), _names(names))
    if isinstance(dataset, tuple | list) and len(dataset) in (2, 3):
        x, y = _scaled(dataset[0]), np.asarray(dataset[1]).reshape(-1).astype(np.int64)
        if len(x) != len(y):
            raise ValueError(f"dataset has {len(x)} images but {len(y)} labels")
        return DataSource("dataset", x, y, _names(dataset[2] if len(dataset) == 3 else None))
    raise TypeError(
        "dataset must be a name, (x_test, y_test[, class_names]) or an object with x_test and "
        f"y_test, got {type(dataset).__name__}"
    )


def _names(names) -> list[str] | None:
    return None if names is None else [str(n) for n in names]

"""Read and write images as float arrays in [0, 1] (Pillow, the ``images`` extra).

Conversions: reading 8-bit data gives ``x / 255`` as float32 (16-bit grayscale gives ``x / 65535``);
writing a float array stores ``round(clip(x, 0, 1) * 255)`` as uint8 (``np.round``: halves go to
the even neighbour), and a uint8 array is stored as it is. So a uint8 image survives
``save_image`` -> ``load_image`` -> ``* 255`` exactly in a lossless format (PNG, BMP, TIFF), and a
float image comes back within 0.5 / 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slidenet._validation import unknown_name
from slidenet.utils.files import atomic_write

__all__ = ["load_image", "save_image"]

_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_HIGH_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def _pil_image(who: str):
    """Import ``PIL.Image`` lazily, with an install hint when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            f"{who} needs Pillow to read and write image files. Install it with: "
            "pip install slidenet[images]  (or: pip install Pillow)"
        ) from err
    return Image


def load_image(path, mode: str | None = None) -> np.ndarray:
    """Read an image file as a float32 array with values in [0, 1].

    Grayscale files (Pillow modes 1, L, LA, I;16, I, F) give (H, W); everything else (RGB, RGBA,
    palette, CMYK, ...) gives (H, W, 3). An alpha channel is dropped, not composited.

    Args:
        path: file to read; any format Pillow reads.
        mode: None keeps the file's kind as above; "L" forces grayscale (H, W) (Pillow's ITU-R 601
            luma for colour files); "RGB" forces (H, W, 3) (a grayscale file is repeated 3 times).
            Case does not matter.

    Returns:
        float32 array, (H, W) or (H, W, 3), in [0, 1]: 8-bit values divided by 255, 16-bit values
        by 65535; float (mode F) files are clipped to [0, 1].

    Raises:
        ImportError: Pillow is not installed.
        ValueError: an unknown ``mode``.
        FileNotFoundError, PIL.UnidentifiedImageError: no such file, or not an image.
    """
    if mode is not None:
        if not isinstance(mode, str) or mode.upper() not in ("L", "RGB"):
            raise ValueError(f"load_image: {unknown_name('mode', mode, ('L', 'RGB'))}")
        mode = mode.upper()
    Image = _pil_image("load_image")
    with Image.open(path) as img:
        img.load()
        target = mode or ("L" if img.mode in _GRAY_MODES else "RGB")
        if img.mode in _HIGH_BIT_MODES or img.mode == "F":
            gray = np.asarray(img, dtype=np.float64)
            if img.mode != "F":
                gray = gray / 65535.0
            gray = np.clip(gray, 0.0, 1.0).astype(np.float32)
            return gray if target == "L" else np.repeat(gray[:, :, None], 3, axis=2)
        arr = np.asarray(img.convert(target), dtype=np.float32)
    return arr / np.float32(255.0)


def save_image(path, array) -> None:
    """Write an array as an image file; the format comes from the suffix (.png, .jpg, .bmp, ...).

    The file is written to a temporary file in the same directory and then moved into place with
    ``os.replace``, so a failed save never leaves a partial file (and keeps any older file intact).

    Args:
        path: destination; its suffix picks the format.
        array: (H, W), (H, W, 1) or (H, W, 3); either float with values meant in [0, 1] (clipped,
            then stored as ``round(x * 255)``), or uint8 stored as is. (H, W, 1) is saved as
            grayscale.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: unknown suffix, wrong shape, NaN or Inf, or an integer dtype other than uint8.
        TypeError: a non-numeric array.
        FileNotFoundError: the directory does not exist.
    """
    Image = _pil_image("save_image")
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"save_image: cannot tell the image format from the suffix {path.suffix!r} of {path}. "
            "Use a suffix such as .png (lossless), .jpg, .bmp or .tiff."
        )
    pixels = _to_uint8(array)
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            f"save_image: directory {str(directory)!r} does not exist; create it first "
            "(os.makedirs(..., exist_ok=True))."
        )
    atomic_write(path, lambda f: Image.fromarray(pixels).save(f, format=fmt))


def _to_uint8(array) -> np.ndarray:
    """(H, W) / (H, W, 1) / (H, W, 3) float in [0, 1] or uint8 -> uint8 (H, W) or (H, W, 3)."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or a.size == 0:
        raise ValueError(
            f"save_image: array must have shape (H, W), (H, W, 1) or (H, W, 3), got shape "
            f"{np.shape(array)}. Drop an alpha channel with array[..., :3]."
        )
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "iub":
        raise ValueError(
            f"save_image: integer arrays must be uint8 (0..255), got dtype {a.dtype}. Use "
            "array.astype(np.uint8) for 0..255 values, or pass floats in [0, 1]."
        )
    if a.dtype.kind != "f":
        raise TypeError(
            f"save_image: array has dtype {a.dtype}; expected float in [0, 1] or uint8."
        )
    if not np.isfinite(a).all():
        raise ValueError("save_image: array contains NaN or Inf; replace them with np.nan_to_num.")
    return np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)

"""One image as a model's input, the way ``slidenet predict`` and ``slidenet explore`` prepare it.

An image (H, W) or (H, W, C) with values in [0, 1] is converted to the model's channels (gray
for 1, RGB for 3), resized to the model's height x width with Pillow's Lanczos filter when it
differs, and optionally inverted (``1 - x``: dark ink on light paper -> MNIST's light strokes on
black). Nothing is done silently: each step that changes the image, or that should have been
asked for (an MNIST-style model given a mostly light image), comes back as a note.

>>> import numpy as np
>>> x, notes = to_model_input(np.zeros((28, 28)), (28, 28, 1))
>>> x.shape, x.dtype, notes
((28, 28, 1), dtype('float32'), [])
"""

from __future__ import annotations

import numpy as np

__all__ = ["output_probabilities", "resize_image", "to_model_input"]

#: ITU-R 601 luma, as Pillow's convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float image (H, W) or (H, W, C) with Pillow (Lanczos), per channel.

    Returns:
        float32 (height, width) or (height, width, C), clipped to [0, 1]; the image itself when
        it has that size already.
    """
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    channels = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(channels[..., c], dtype=np.float32)).resize(
                    (width, height), Image.Resampling.LANCZOS
                )
            )
            for c in range(channels.shape[2])
        ],
        axis=-1,
    )
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out[..., 0] if image.ndim == 2 else out


def _channels(image: np.ndarray, channels: int, name: str) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W, channels): gray repeated to RGB, RGB to luma."""
    if image.ndim == 2:
        image = image[..., None]
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1:
        return np.repeat(image, channels, axis=2)
    if have in (3, 4) and channels == 1:
        return (image[..., :3] @ _LUMA)[..., None]
    raise ValueError(
        f"{name} has {have} channels but the model takes {channels}; give a grayscale or RGB image"
    )


def to_model_input(image, input_shape, invert: bool = False, name: str = "the image"):
    """``image`` as one input of a model that takes ``input_shape`` (H, W, C).

    Args:
        image: (h, w) or (h, w, c) array with values in [0, 1] (c = 1, 3 or 4; alpha is dropped).
        input_shape: the model's (H, W, C), C 1 or 3.
        invert: use ``1 - x`` (dark ink on light paper -> light strokes on dark, as MNIST).
        name: how the notes name the image (e.g. its path).

    Returns:
        (x, notes): x float32 (H, W, C) in [0, 1]; notes a list of one-line remarks (resized; a
        mostly light image given to a one-channel model without ``invert``).
    """
    height, width, channels = (int(s) for s in input_shape)
    x = _channels(np.asarray(image, dtype=np.float32), channels, name)
    notes = []
    if x.shape[:2] != (height, width):
        notes.append(
            f"{name} is {x.shape[0]}x{x.shape[1]}; resized to {height}x{width}, the model's "
            "input size"
        )
        x = resize_image(x, height, width)
    if invert:
        return (1.0 - x).astype(np.float32), notes
    if channels == 1 and x.mean() > 0.5:
        notes.append(
            f"{name} is mostly light (mean {x.mean():.2f}); models trained on light strokes on a "
            "dark background (MNIST) need --invert"
        )
    return x.astype(np.float32, copy=False), notes


def output_probabilities(outputs):
    """A classifier's outputs (N, K) as class probabilities (N, K'), and notes.

    One sigmoid unit p becomes (1 - p, p); outputs that are not probabilities (no softmax) get a
    softmax, with a note.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape[1] == 1:  # one sigmoid unit: P(class 1)
        return np.concatenate([1.0 - outputs, outputs], axis=1), []
    if outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs, []
    note = "the model's outputs are not probabilities (no softmax); applying softmax"
    z = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True), [note]

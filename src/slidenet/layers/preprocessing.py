"""Preprocessing layers with Keras 3's names: Rescaling, Normalization, Resizing, CenterCrop.

They do the same in training and at inference. Each has the exact backward of its forward, so it
may sit anywhere in a model (usually first: integer images are cast to float by the model, as for
every layer). Images are NHWC; sizes are (height, width) of the output.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from slidenet._validation import fmt_shape, positive_int
from slidenet.layers.base import Layer, batch_array
from slidenet.ops.image_ops import (
    INTERPOLATIONS,
    aspect_crop_box,
    check_choice,
    crop_backward,
    crop_forward,
    resize_backward,
    resize_forward,
)

#: Keras' backend.epsilon(): the smallest standard deviation Normalization divides by.
EPSILON = 1e-7


def expect_images(layer: Layer, input_shape) -> None:
    """A ValueError naming ``layer`` unless one example is an image (H, W, C)."""
    layer._expect_rank(
        input_shape,
        3,
        "(H, W, C)",
        "Image layers take channels-last images; add the channel axis to grayscale ones "
        "(x[..., None]).",
    )


class CropResize:
    """Crop a window, then resize it, and the backward of both (shared by the crop layers)."""

    def __init__(self):
        self.crop = self.resize = None

    def forward(self, x, box, size=None, interpolation="bilinear"):
        top, left, height, width = box
        self.crop = self.resize = None
        if (top, left, height, width) != (0, 0, *x.shape[1:3]):
            x, self.crop = crop_forward(x, top, left, height, width)
        if size is not None and tuple(size) != x.shape[1:3]:
            x, self.resize = resize_forward(x, *size, interpolation)
        return x

    def backward(self, dy):
        if self.resize is not None:
            dy = resize_backward(dy, self.resize)
        return dy if self.crop is None else crop_backward(dy, self.crop)


def _numbers(layer, value, what) -> float | np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{layer.label}: {what} must be a number or an array of numbers, got {value!r}."
        ) from None
    if not np.isfinite(a).all():
        raise ValueError(f"{layer.label}: {what} must be finite, got {value!r}.")
    return float(a) if a.ndim == 0 else a


def _jsonable(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


class Rescaling(Layer):
    """y = x * scale + offset; ``Rescaling(1 / 255)`` maps [0, 255] pixels to [0, 1] and
    ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1]. dx = dy * scale.

    ``scale`` and ``offset``: numbers, or arrays that broadcast against one example (e.g. one
    value per channel). Any input shape.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _numbers(self, scale, "scale")
        self.offset = _numbers(self, offset, "offset")

    def compute_output_shape(self, input_shape):
        full = (1, *input_shape)
        for what, value in (("scale", self.scale), ("offset", self.offset)):
            try:
                fits = np.broadcast_shapes(full, np.shape(value)) == full
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(
                    f"{self.label}: {what} of shape {fmt_shape(np.shape(value))} does not "
                    f"broadcast against examples shaped {fmt_shape(input_shape)}."
                )
        return tuple(input_shape)

    def forward(self, x, training=False):
        return x * np.asarray(self.scale, x.dtype) + np.asarray(self.offset, x.dtype)

    def backward(self, dy):
        self.grads = []
        return dy * np.asarray(self.scale, dy.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "scale": _jsonable(self.scale),
            "offset": _jsonable(self.offset),
        }


class Normalization(Layer):
    """y = (x - mean) / sqrt(variance), per index of ``axis`` (``invert=True``: the inverse,
    y = x * sqrt(variance) + mean). The standard deviation is at least 1e-7, as in Keras.

    ``mean`` and ``variance`` come from the arguments or from ``adapt(data)``; they are the
    layer's weights (so model files keep them) but not trained (``untrained_weights``): their
    gradients are None and they count as non-trainable parameters, as in Keras.
    ``axis`` counts the batch axis as 0: -1 (default) keeps one mean per channel, None one mean
    for everything, (1, 2) one per pixel position of an (H, W, C) image.
    """

    weight_names = ("mean", "variance")
    untrained_weights = ("mean", "variance")

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            self.axis = None
        else:
            items = (axis,) if isinstance(axis, int | np.integer) else axis
            try:
                items = tuple(items)
            except TypeError:
                items = None
            if not items or any(
                isinstance(a, bool) or not isinstance(a, int | np.integer) for a in items
            ):
                raise ValueError(
                    f"{self.label}: axis must be an int, a tuple of ints or None, got {axis!r}."
                )
            self.axis = tuple(int(a) for a in items)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"{self.label}: give both mean and variance, or neither (and call adapt(data))."
            )
        self.input_mean = None if mean is None else _numbers(self, mean, "mean")
        self.input_variance = None if variance is None else _numbers(self, variance, "variance")
        for name, given in (("mean", self.input_mean), ("variance", self.input_variance)):
            if given is not None and np.size(given) == 0:
                raise ValueError(f"{self.label}: {name} is empty; give one value per feature.")
        if variance is not None and np.min(self.input_variance) < 0:
            raise ValueError(f"{self.label}: variance must be >= 0, got {variance!r}.")
        self.invert = bool(invert)

    def _kept_axes(self, input_shape) -> tuple[int, ...]:
        rank = len(input_shape) + 1
        if self.axis is None:
            return ()
        kept = []
        for a in self.axis:
            p = a + rank if a < 0 else a
            if not 1 <= p < rank:
                raise ValueError(
                    f"{self.label}: axis {a} is not an axis of examples shaped "
                    f"{fmt_shape(input_shape)}; axis counts the batch as axis 0, so it must be "
                    f"in 1..{rank - 1} or -{rank - 1}..-1."
                )
            if p in kept:
                raise ValueError(f"{self.label}: axis {self.axis} names axis {p} twice.")
            kept.append(p)
        return tuple(sorted(kept))

    def build(self, input_shape):
        super().build(input_shape)
        self._kept = self._kept_axes(self._in)
        shape = tuple(self._in[a - 1] for a in self._kept)
        self._bshape = tuple(n if a + 1 in self._kept else 1 for a, n in enumerate(self._in))
        if self.input_mean is None:
            self.mean, self.variance = np.zeros(shape, self.dtype), np.ones(shape, self.dtype)
            return
        self.mean = self._fitted("mean", self.input_mean, shape)
        self.variance = self._fitted("variance", self.input_variance, shape)

    def _fitted(self, what, value, shape):
        a = np.asarray(value, np.float64)
        if a.size == int(np.prod(shape)):
            return a.reshape(shape).astype(self.dtype)
        try:
            return np.broadcast_to(a, shape).astype(self.dtype)
        except ValueError:
            raise ValueError(
                f"{self.label}: {what} of shape {fmt_shape(a.shape)} does not fit axis "
                f"{self.axis} of examples shaped {fmt_shape(self._in)}: expected a number or "
                f"shape {fmt_shape(shape)}."
            ) from None

    def adapt(self, data, steps=None):
        """Set mean and variance (population variance) from ``data``: an array (N, ...), or an
        iterable of such batches (or of (x, y) pairs), of which ``steps`` batches are read when
        given. Builds the layer for the shape of the examples."""
        batches = [data] if isinstance(data, np.ndarray | list | tuple) else data
        if not isinstance(batches, Iterable):
            raise TypeError(f"{self.label}: adapt needs an array of examples, got {data!r}.")
        count, mean, m2 = 0, 0.0, 0.0
        for step, batch in enumerate(batches):
            if steps is not None and step >= steps:
                break
            if isinstance(batch, tuple) and batch and not isinstance(data, tuple):
                batch = batch[0]
            b = batch_array(batch, self.label).astype(np.float64)
            if not np.isfinite(b).all():
                raise ValueError(f"{self.label}: adapt data holds NaN or infinite values.")
            if not self.built:
                self.build(b.shape[1:])
            elif b.shape[1:] != self._in:
                raise ValueError(
                    f"{self.label} was built for input {fmt_shape(self.input_shape)} but adapt "
                    f"got a batch of shape {fmt_shape(b.shape)}."
                )
            reduce = tuple(a for a in range(b.ndim) if a not in self._kept)
            n = int(np.prod([b.shape[a] for a in reduce]))
            if n == 0:
                continue
            b_mean, b_var = b.mean(axis=reduce), b.var(axis=reduce)
            delta, total = b_mean - mean, count + n
            mean = mean + delta * (n / total)
            m2 = m2 + b_var * n + delta**2 * (count * n / total)
            count = total
        if count == 0:
            raise ValueError(f"{self.label}: adapt got no examples.")
        self.mean = np.asarray(mean, self.dtype)
        self.variance = np.asarray(m2 / count, self.dtype)

    def _std(self, dtype):
        std = np.maximum(np.sqrt(np.maximum(self.variance, 0)), EPSILON)
        return std.astype(dtype).reshape(self._bshape)

    def forward(self, x, training=False):
        self._scale = self._std(x.dtype)
        mean = self.mean.astype(x.dtype).reshape(self._bshape)
        return x * self._scale + mean if self.invert else (x - mean) / self._scale

    def backward(self, dy):
        self.grads = [None, None]
        return dy * self._scale if self.invert else dy / self._scale

    def get_config(self):
        return {
            **super().get_config(),
            "axis": None if self.axis is None else list(self.axis),
            "mean": _jsonable(self.input_mean),
            "variance": _jsonable(self.input_variance),
            "invert": self.invert,
        }


class Resizing(Layer):
    """Resize images (N, H, W, C) -> (N, height, width, C) by "bilinear" or "nearest"
    interpolation (half-pixel centres, no antialiasing, as Keras 3). With
    ``crop_to_aspect_ratio=True`` the largest centred window with the aspect ratio
    height : width is cut out first, so the image is not distorted."""

    def __init__(
        self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.height = positive_int(height, f"{self.label}: height")
        self.width = positive_int(width, f"{self.label}: width")
        self.interpolation = check_choice(
            interpolation, INTERPOLATIONS, "interpolation", self.label
        )
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self._ops = CropResize()

    def compute_output_shape(self, input_shape):
        expect_images(self, input_shape)
        return (self.height, self.width, input_shape[2])

    def forward(self, x, training=False):
        H, W = x.shape[1:3]
        box = (0, 0, H, W)
        if self.crop_to_aspect_ratio:
            box = aspect_crop_box(H, W, self.height, self.width)
        self._ops = CropResize()
        return self._ops.forward(x, box, (self.height, self.width), self.interpolation)

    def backward(self, dy):
        self.grads = []
        return self._ops.backward(dy)

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
        }


class CenterCrop(Layer):
    """The central height x width window of each image. An image smaller than that (in either
    direction) is first cut to the largest centred window with the aspect ratio height : width
    and resized (bilinear), as Keras does."""

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = positive_int(height, f"{self.label}: height")
        self.width = positive_int(width, f"{self.label}: width")
        self._ops = CropResize()

    def compute_output_shape(self, input_shape):
        expect_images(self, input_shape)
        return (self.height, self.width, input_shape[2])

    def forward(self, x, training=False):
        H, W = x.shape[1:3]
        h, w = self.height, self.width
        if H >= h and W >= w:
            box = ((H - h) // 2, (W - w) // 2, h, w)
        else:
            box = aspect_crop_box(H, W, h, w)
        self._ops = CropResize()
        return self._ops.forward(x, box, (h, w))

    def backward(self, dy):
        self.grads = []
        return self._ops.backward(dy)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}

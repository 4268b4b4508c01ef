"""Random image augmentation layers with Keras 3's names and arguments.

RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomCrop, RandomContrast and
RandomBrightness change images only when called with ``training=True`` (``fit`` does); at
inference they are the identity, except RandomCrop, which then takes the centred window (Keras).

Each layer draws from its own generator ``layer.rng`` (``seed=`` fixes it; without a seed it is
drawn from slidenet's global generator, so ``utils.set_random_seed`` fixes it too). Model files
keep the generator's state, so a training run resumed from a file draws what the uninterrupted run
would have drawn. The backward pass is the exact gradient of the forward pass with the draws of
that call: flips flip back, warps scatter-add through the bilinear weights, crops pad with zeros.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import positive_int
from slidenet.layers.base import Layer
from slidenet.layers.preprocessing import CropResize, expect_images
from slidenet.ops.image_ops import (
    FILL_MODES,
    INTERPOLATIONS,
    affine_transform_backward,
    affine_transform_forward,
    aspect_crop_box,
    check_choice,
    rotation_transforms,
    translation_transforms,
    zoom_transforms,
)
from slidenet.utils.random import spawn_generator

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float | np.integer | np.floating)


class RandomLayer(Layer):
    """Base of the augmentation layers: a seed, its generator ``rng``, image-shaped inputs."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        bad = seed is not None and (not _is_number(seed) or not np.isfinite(seed))
        if bad or (seed is not None and (int(seed) != seed or seed < 0)):
            raise ValueError(f"{self.label}: seed must be None or an int >= 0, got {seed!r}.")
        self.seed = None if seed is None else int(seed)
        self.rng = spawn_generator(self.seed)

    def _range(self, factor, what, low=-1.0, high=1.0):
        """A number f -> (-|f|, |f|); a pair -> (lower, upper) sorted; all within [low, high]."""
        pair = isinstance(factor, list | tuple) and len(factor) == 2
        values = tuple(factor) if pair else (factor,)
        if not (pair or _is_number(factor)) or not all(
            _is_number(v) and low <= v <= high for v in values
        ):
            raise ValueError(
                f"{self.label}: {what} must be a number in [{low:g}, {high:g}] or a pair "
                f"(lower, upper) of such numbers, got {factor!r}."
            )
        if pair:
            return tuple(sorted(float(v) for v in values))
        return -abs(float(factor)), abs(float(factor))

    def compute_output_shape(self, input_shape):
        expect_images(self, input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _plain(factor):
    return list(factor) if isinstance(factor, list | tuple) else factor


class RandomFlip(RandomLayer):
    """Flip each image left-right and/or upside down, each with probability 1/2, in training.

    ``mode``: "horizontal" (left-right), "vertical" or "horizontal_and_vertical" (both
    independently).
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = check_choice(mode, FLIP_MODES, "mode", self.label)

    def forward(self, x, training=False):
        self._flips = None
        if not training:
            return x
        n = x.shape[0]
        horizontal = self.rng.random(n) < 0.5 if "horizontal" in self.mode else np.zeros(n, bool)
        vertical = self.rng.random(n) < 0.5 if "vertical" in self.mode else np.zeros(n, bool)
        self._flips = horizontal, vertical
        return self._flip(x)

    def _flip(self, x):
        horizontal, vertical = self._flips
        y = x.copy()
        y[horizontal] = y[horizontal, :, ::-1]
        y[vertical] = y[vertical, ::-1]
        return y

    def backward(self, dy):
        self.grads = []
        return dy if self._flips is None else self._flip(dy)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomAffine(RandomLayer):
    """Base of the warping layers: draws one transform per image, samples with ops.image_ops."""

    def __init__(
        self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = check_choice(fill_mode, FILL_MODES, "fill_mode", self.label)
        self.interpolation = check_choice(
            interpolation, INTERPOLATIONS, "interpolation", self.label
        )
        if not _is_number(fill_value) or not np.isfinite(fill_value):
            raise ValueError(f"{self.label}: fill_value must be a number, got {fill_value!r}.")
        self.fill_value = float(fill_value)

    def transforms(self, n, height, width) -> np.ndarray:
        """(n, 8) random transforms (ops.image_ops convention), drawn from ``self.rng``."""
        raise NotImplementedError

    def forward(self, x, training=False):
        self._warp = None
        if not training:
            return x
        t = self.transforms(x.shape[0], *x.shape[1:3])
        y, self._warp = affine_transform_forward(
            x, t, self.interpolation, self.fill_mode, self.fill_value
        )
        return y

    def backward(self, dy):
        self.grads = []
        return dy if self._warp is None else affine_transform_backward(dy, self._warp)

    def get_config(self):
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomRotation(RandomAffine):
    """Rotate each image about its centre by a random angle, in training.

    ``factor``: a fraction of a full turn: f rotates by an angle drawn from [-f, f] * 360
    degrees, a pair (lower, upper) from [lower, upper] * 360 (positive: counter-clockwise);
    within [-1, 1]. ``fill_mode`` ("reflect", "wrap", "constant", "nearest") fills what comes
    from outside the image; ``interpolation``: "bilinear" or "nearest".
    """

    def __init__(
        self,
        factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _plain(factor)
        self._lower, self._upper = self._range(factor, "factor")

    def transforms(self, n, height, width):
        turns = self.rng.uniform(self._lower, self._upper, n)
        return rotation_transforms(turns * 2 * np.pi, height, width)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomTranslation(RandomAffine):
    """Shift each image by a random fraction of its height and width, in training.

    ``height_factor``: f shifts by a fraction drawn from [-f, f] of the height (positive: down),
    a pair (lower, upper) from [lower, upper]; ``width_factor`` likewise (positive: right);
    within [-1, 1]. Fill modes and interpolation as in RandomRotation.
    """

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = _plain(height_factor), _plain(width_factor)
        self._h = self._range(height_factor, "height_factor")
        self._w = self._range(width_factor, "width_factor")

    def transforms(self, n, height, width):
        dy = self.rng.uniform(*self._h, n) * height
        dx = self.rng.uniform(*self._w, n) * width
        return translation_transforms(dx, dy)

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


class RandomZoom(RandomAffine):
    """Zoom each image about its centre by a random amount, in training.

    ``height_factor``: f zooms the height by 1 + a value drawn from [-f, f] (positive: zoom out,
    the image gets smaller; negative: zoom in), a pair (lower, upper) from [lower, upper];
    within [-1, 1]. ``width_factor`` likewise; None (default) zooms the width by the same
    amount as the height, keeping the aspect ratio.
    """

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = _plain(height_factor), _plain(width_factor)
        self._h = self._range(height_factor, "height_factor")
        self._w = None if width_factor is None else self._range(width_factor, "width_factor")

    def transforms(self, n, height, width):
        zy = 1.0 + self.rng.uniform(*self._h, n)
        zx = zy if self._w is None else 1.0 + self.rng.uniform(*self._w, n)
        return zoom_transforms(zx, zy, height, width)

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


class RandomCrop(RandomLayer):
    """Crop a random height x width window, at one position for the whole batch, in training.

    At inference (and in training when the image is smaller than the window) it cuts the largest
    centred window with the aspect ratio height : width and resizes it (bilinear) to height x
    width, as Keras does.
    """

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height = positive_int(height, f"{self.label}: height")
        self.width = positive_int(width, f"{self.label}: width")
        self._ops = CropResize()

    def compute_output_shape(self, input_shape):
        expect_images(self, input_shape)
        return (self.height, self.width, input_shape[2])

    def forward(self, x, training=False):
        H, W = x.shape[1:3]
        h, w = self.height, self.width
        if training and H >= h and W >= w:
            top, left = self.rng.integers(0, H - h + 1), self.rng.integers(0, W - w + 1)
            box = (int(top), int(left), h, w)
        else:
            box = aspect_crop_box(H, W, h, w)
        self._ops = CropResize()
        return self._ops.forward(x, box, (h, w))

    def backward(self, dy):
        self.grads = []
        return self._ops.backward(dy)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class _RandomValues(RandomLayer):
    """Base of the layers that change pixel values and clip them to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _plain(factor)
        pair = isinstance(value_range, list | tuple) and len(value_range) == 2
        if not pair or not all(_is_number(v) and np.isfinite(v) for v in value_range):
            raise ValueError(
                f"{self.label}: value_range must be a pair (low, high) of numbers, such as "
                f"(0, 255) or (0, 1), got {value_range!r}."
            )
        low, high = sorted(float(v) for v in value_range)
        if low == high:
            raise ValueError(f"{self.label}: value_range {value_range!r} is empty.")
        self.value_range = (low, high)

    def _clip(self, z):
        low, high = self.value_range
        self._inside = (z >= low) & (z <= high)
        return np.clip(z, low, high)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": [*self.value_range]}


class RandomContrast(_RandomValues):
    """In training, per image and channel: y = (x - mean) * c + mean, mean over the pixels, with
    c drawn per image from [1 - lower, 1 + upper], then clipped to ``value_range``.

    ``factor``: f in [0, 1] (lower = upper = f) or a pair (lower, upper) in [0, 1].
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed, **kwargs)
        if _is_number(factor) and 0 <= factor <= 1:
            self._lower = self._upper = float(factor)
        else:
            self._lower, self._upper = self._range(factor, "factor", 0.0, 1.0)

    def forward(self, x, training=False):
        self._c = None
        if not training:
            return x
        self._c = self.rng.uniform(1 - self._lower, 1 + self._upper, (len(x), 1, 1, 1))
        self._c = self._c.astype(x.dtype)
        mean = x.mean(axis=(1, 2), keepdims=True)
        return self._clip((x - mean) * self._c + mean)

    def backward(self, dy):
        self.grads = []
        if self._c is None:
            return dy
        g = dy * self._inside
        return g * self._c + g.mean(axis=(1, 2), keepdims=True) * (1 - self._c)


class RandomBrightness(_RandomValues):
    """In training, add to each image a delta drawn from [lower, upper] * (high - low) of
    ``value_range`` = (low, high), then clip to ``value_range``.

    ``factor``: f in [-1, 1] (delta from [-|f|, |f|] of the range) or a pair (lower, upper).
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed, **kwargs)
        self._lower, self._upper = self._range(factor, "factor")

    def forward(self, x, training=False):
        self._delta = None
        if not training:
            return x
        span = self.value_range[1] - self.value_range[0]
        delta = self.rng.uniform(self._lower, self._upper, (len(x), 1, 1, 1)) * span
        self._delta = delta.astype(x.dtype)
        return self._clip(x + self._delta)

    def backward(self, dy):
        self.grads = []
        return dy if self._delta is None else dy * self._inside

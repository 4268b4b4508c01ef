"""Keras' reshaping layers for signals, images and volumes: UpSampling1D/2D/3D, ZeroPadding1D/2D/3D
and Cropping1D/2D/3D (see slidenet.ops.resample). No weights; the backward passes are exact (each
is the transpose of a linear map).

Inputs are channels-last: (L, D) for the 1D layers, (H, W, D) for 2D, (Z, H, W, D) for 3D.
"""

from __future__ import annotations

from slidenet._validation import fmt_shape, int_tuple
from slidenet.layers.base import Layer
from slidenet.ops import resample

_LAYOUTS = {1: "(L, D)", 2: "(H, W, D)", 3: "(Z, H, W, D)"}
_AXES = {
    1: ("steps",),
    2: ("rows", "columns"),
    3: ("slices", "rows", "columns"),
}


class _Reshaping(Layer):
    """Checks that each example has ``rank`` spatial axes and a channel axis."""

    rank = 2

    def _check_rank(self, input_shape):
        self._expect_rank(
            input_shape,
            self.rank + 1,
            _LAYOUTS[self.rank],
            "Add the channel axis (x[..., None]) to single-channel data.",
        )

    def backward(self, dy):
        self.grads = []
        return self._backward(dy)


# ------------------------------------------------------------------------------------- upsampling


class _UpSampling(_Reshaping):
    interpolation = "nearest"

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int_tuple(size, self.rank, f"{self.label}: size")

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        spatial = (n * s for n, s in zip(input_shape[:-1], self.size, strict=True))
        return (*spatial, input_shape[-1])

    def forward(self, x, training=False):
        y, self._cache = resample.upsample_forward(x, self.size, self.interpolation)
        return y

    def _backward(self, dy):
        return resample.upsample_backward(dy, self._cache)

    def get_config(self):
        size = self.size[0] if self.rank == 1 else list(self.size)
        return {**super().get_config(), "size": size}


class UpSampling1D(_UpSampling):
    """Repeat each step ``size`` times: (N, L, D) -> (N, L*size, D)."""

    rank = 1


class UpSampling2D(_UpSampling):
    """Upsample images by integer factors: (N, H, W, D) -> (N, H*sh, W*sw, D).

    Args:
        size: int or (sh, sw).
        interpolation: 'nearest' (repeat rows and columns) or 'bilinear' (half-pixel centres, as
            Keras 3's resize and PyTorch's ``interpolate(..., align_corners=False)``).
    """

    def __init__(self, size=2, interpolation="nearest", **kwargs):
        super().__init__(size, **kwargs)
        if interpolation not in resample.INTERPOLATIONS:
            raise ValueError(
                f"{self.label}: interpolation must be 'nearest' or 'bilinear', got "
                f"{interpolation!r}."
            )
        self.interpolation = interpolation

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Repeat each cell of a volume: (N, Z, H, W, D) -> (N, Z*sz, H*sh, W*sw, D)."""

    rank = 3


# ----------------------------------------------------------------------- zero padding and cropping


class _Border(_Reshaping):
    """Shared body of ZeroPadding and Cropping: one (before, after) pair per spatial axis."""

    arg = "padding"

    def __init__(self, spec, **kwargs):
        super().__init__(**kwargs)
        self.pairs = resample.border_pairs(spec, self.rank, f"{self.label}: {self.arg}")

    def get_config(self):
        pairs = list(self.pairs[0]) if self.rank == 1 else [list(p) for p in self.pairs]
        return {**super().get_config(), self.arg: pairs}


class _ZeroPadding(_Border):
    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        spatial = (n + a + b for n, (a, b) in zip(input_shape[:-1], self.pairs, strict=True))
        return (*spatial, input_shape[-1])

    def forward(self, x, training=False):
        return resample.zero_pad_forward(x, self.pairs)[0]

    def _backward(self, dy):
        return resample.zero_pad_backward(dy, self.pairs)


class ZeroPadding1D(_ZeroPadding):
    """Zeros at the start and end of a signal: padding P or (before, after). (N, L, D) ->
    (N, L + before + after, D)."""

    rank = 1

    def __init__(self, padding=1, **kwargs):
        super().__init__(padding, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Rows and columns of zeros around each image. padding: P, (Ph, Pw) (symmetric) or
    ((top, bottom), (left, right))."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(padding, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around each volume. padding: P, (Pz, Ph, Pw) or one (before, after) pair per axis."""

    rank = 3

    def __init__(self, padding=1, **kwargs):
        super().__init__(padding, **kwargs)


class _Cropping(_Border):
    arg = "cropping"

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        out = []
        for name, n, (a, b) in zip(_AXES[self.rank], input_shape, self.pairs, strict=False):
            if a + b >= n:
                raise ValueError(
                    f"{self.label}: cropping {a} + {b} = {a + b} {name} leaves nothing of the {n} "
                    f"{name} of input {fmt_shape(input_shape)} (cropping={self.pairs}). Crop at "
                    f"most {n - 1} {name} in total."
                )
            out.append(n - a - b)
        return (*out, input_shape[-1])

    def forward(self, x, training=False):
        y, self._cache = resample.crop_border_forward(x, self.pairs)
        return y

    def _backward(self, dy):
        return resample.crop_border_backward(dy, self._cache)


class Cropping1D(_Cropping):
    """Drop steps at the start and end of a signal: cropping C or (before, after). (N, L, D) ->
    (N, L - before - after, D)."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping2D(_Cropping):
    """Drop rows and columns at the image borders. cropping: C, (Ch, Cw) (symmetric) or
    ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping3D(_Cropping):
    """Drop cells at the borders of a volume: C, (Cz, Ch, Cw) or one (before, after) pair per
    axis."""

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), **kwargs):
        super().__init__(cropping, **kwargs)

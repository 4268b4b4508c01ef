"""Layers for volumes and videos (N, Z, H, W, D): Conv3D and 3D pooling (see slidenet.ops.conv3d,
slidenet.ops.pool3d).

Z is the volume's own depth axis (slices of a scan, frames of a video); D stays the channel count,
as in every slidenet layer. These are the 2D layers with a third spatial axis, so they share the 2D
layers' code (arguments, weights, activation, backward, config).
"""

from __future__ import annotations

from slidenet.layers.convolutional import Conv2D
from slidenet.layers.pooling import _GlobalPooling, _Pooling2D
from slidenet.ops import pool3d as pool3d_ops
from slidenet.ops.conv3d import conv3d_backward, conv3d_forward, conv3d_geometry

_LAYOUT = "(Z, H, W, D)"
_HINT = "Volumes need a channel axis: use input_shape=(Z, H, W, 1)."


class Conv3D(Conv2D):
    """3D convolution layer: K filters of Fz x Fh x Fw spanning the full input depth D.

    Input (N, Z, H, W, D) -> output (N, Zo, Ho, Wo, K), Zo = (Z - Fz + pz_before + pz_after)/sz + 1
    (Ho, Wo likewise). Weights: kernel (Fz, Fh, Fw, D, K) and bias (K,), as in Keras:
    (Fz*Fh*Fw*D + 1)*K parameters.

    Args:
        filters: K. kernel_size: F or (Fz, Fh, Fw). strides: S or (sz, sh, sw).
        padding: 'valid', 'same' (TensorFlow's rule on each axis), P, (Pz, Ph, Pw) or one
            (before, after) pair per axis.
        dilation_rate: int or triple. groups: 1 (Keras' argument; grouped 3D convolution is not
            implemented). activation: name or None. use_bias: add the bias.
        kernel_initializer, bias_initializer: names as in Keras.
    """

    rank = 3
    _forward_op = staticmethod(conv3d_forward)
    _backward_op = staticmethod(conv3d_backward)

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            algorithm="im2col",
            **kwargs,
        )
        if self.groups != 1:
            raise ValueError(
                f"{self.label}: groups={self.groups} is not supported for 3D convolution; use "
                "groups=1."
            )

    def _geometry(self, input_shape):
        return conv3d_geometry(
            (1, *input_shape),
            (*self.kernel_size, input_shape[-1], self.filters),
            self.strides,
            self.padding,
            self.dilation_rate,
            who=self.label,
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(input_shape, 4, _LAYOUT, _HINT)
        _, _, _, out = self._geometry(input_shape)
        return (*out, self.filters)

    def choose_algorithm(self, input_shape) -> str:
        """Always 'im2col' (Winograd is for 2D kernels)."""
        return "im2col"

    def get_config(self):
        config = super().get_config()
        config.pop("algorithm")
        return config


class _Pooling3D(_Pooling2D):
    """Shared body of the 3D pooling layers: (N, Z, H, W, D) -> (N, Zo, Ho, Wo, D), no weights.

    Args:
        pool_size: int or (pz, ph, pw). strides: int, triple or None (= pool_size).
        padding: 'valid' (drop partial windows) or 'same' (pool them; ceil(n / s) outputs).
    """

    rank = 3

    def _geometry(self, input_shape):
        return pool3d_ops.pool3d_geometry(
            (1, *input_shape), self.pool_size, self.strides, self.padding, who=self.label
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(input_shape, 4, _LAYOUT, _HINT)
        return (*self._geometry(input_shape)[3], input_shape[-1])

    def forward(self, x, training=False):
        y, self._cache = pool3d_ops.pool3d_forward(
            x, self.pool_size, self.strides, self.padding, self.kind
        )
        return y

    def backward(self, dy):
        self.grads = []
        return pool3d_ops.pool3d_backward(dy, self._cache)


class MaxPooling3D(_Pooling3D):
    """Max of each pz x ph x pw window of every channel."""

    kind = "max"


class AveragePooling3D(_Pooling3D):
    """Mean of each window ('same' partial windows: mean of their real cells, as Keras)."""

    kind = "avg"


class _GlobalPooling3D(_GlobalPooling):
    rank = 3

    def compute_output_shape(self, input_shape):
        self._expect_rank(input_shape, 4, _LAYOUT, _HINT)
        return (input_shape[-1],)


class GlobalMaxPooling3D(_GlobalPooling3D):
    """Max over all positions of a volume: (N, Z, H, W, D) -> (N, D)."""

    kind = "max"


class GlobalAveragePooling3D(_GlobalPooling3D):
    """Mean over all positions of a volume: (N, Z, H, W, D) -> (N, D)."""

    kind = "avg"

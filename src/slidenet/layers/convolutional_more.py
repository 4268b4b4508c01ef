"""More convolution layers, Keras 3 names: Conv2DTranspose, Conv1DTranspose, DepthwiseConv2D and
SeparableConv2D (the math in :mod:`slidenet.ops.conv_transpose` and :mod:`slidenet.ops.depthwise`).

They are not subclasses of Conv2D: tools that treat a Conv2D specially (summary arithmetic, ONNX
export, explain) would misread their kernels.
"""

from __future__ import annotations

from slidenet import initializers
from slidenet._validation import int_tuple, positive_int
from slidenet.layers.base import ActivationMixin, Layer
from slidenet.ops import conv_transpose as ct_ops
from slidenet.ops import depthwise as dw_ops
from slidenet.ops.conv import conv2d_geometry
from slidenet.ops.shapes import resolve_padding

_INITIALIZER_ARGS = (
    "kernel_initializer",
    "bias_initializer",
    "depthwise_initializer",
    "pointwise_initializer",
)


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def _to_list(value):
    return [_to_list(v) for v in value] if isinstance(value, list | tuple) else value


class _SlidingConv(ActivationMixin, Layer):
    """Arguments shared by the layers here: kernel_size, strides, padding, dilation_rate,
    activation, use_bias; each class adds its weights and calls its op."""

    rank = 2
    _padding_strings = ("valid", "same")

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = self.label
        self.kernel_size = int_tuple(kernel_size, self.rank, f"{who}: kernel_size")
        self.strides = int_tuple(strides, self.rank, f"{who}: strides")
        self.dilation_rate = int_tuple(dilation_rate, self.rank, f"{who}: dilation_rate")
        if padding is None:
            raise ValueError(f"{who}: padding must be 'valid', 'same', an int or pairs, got None.")
        if isinstance(padding, str):
            padding = padding.lower()
        elif not isinstance(padding, int):
            padding = _to_tuple(padding)
        ones = (1,) * self.rank
        spec = self._padding_spec(padding)
        if not isinstance(spec, str) or spec not in self._padding_strings:
            resolve_padding(spec, ones, ones, ones, ones, f"{who}: padding")
        self.padding = padding
        self._set_activation(activation)
        self.use_bias = bool(use_bias)

    def _padding_spec(self, padding=None):
        """The padding as the ops read it: a 1D layer's pair (before, after) is one axis's."""
        padding = self.padding if padding is None else padding
        return (padding,) if self.rank == 1 and isinstance(padding, tuple) else padding

    def _check_input(self, input_shape):
        if self.rank == 2:
            self._expect_rank(
                input_shape,
                3,
                "(H, W, D)",
                "Images need a channel axis: use input_shape=(H, W, 1).",
            )
        else:
            self._expect_rank(
                input_shape, 2, "(L, D)", "Signals need a channel axis: use input_shape=(L, 1)."
            )

    def backward(self, dy, from_logits=False, need_dx=True):
        """dy like the output -> dx like the input (None with need_dx=False); fills ``grads``."""
        dz = self._deactivate(dy, from_logits)
        dx, *grads = self._backward_op(dz, self._cache, need_dx)
        self.grads = [g for g in grads if g is not None]
        return dx

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str | int) else _to_list(self.padding)
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": padding,
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "use_bias": self.use_bias,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in _INITIALIZER_ARGS:
            if key in config:
                config[key] = initializers.deserialize(config[key])
        return cls(**config)


class Conv2DTranspose(_SlidingConv):
    """Transposed 2D convolution ("deconvolution"): the input gradient of a Conv2D, as a layer.

    Where a strided convolution shrinks (N, Ho, Wo, K) out of (N, H, W, D), this layer grows a map:
    each input pixel spreads its D values through the kernel onto an Fh x Fw output window, windows
    S apart (:mod:`slidenet.ops.conv_transpose`). Output size per axis, as in Keras 3:
    'valid' (n - 1)*S + max(F, S) (or (n - 1)*S + F + output_padding); 'same' n*S (or
    (n - 1)*S + F % 2 + output_padding); an int P (PyTorch's padding, beyond Keras)
    (n - 1)*S + F - 2P + output_padding. F is the dilated extent (F - 1)*dilation + 1.

    Weights: kernel (Fh, Fw, K, D) (Keras' layout: the kernel of the convolution this transposes)
    and bias (K,): Fh*Fw*K*D + K parameters.

    Args:
        filters: K, the output depth. kernel_size: F or (Fh, Fw). strides: S or (sh, sw).
        padding: 'valid', 'same', P, (Ph, Pw) or ((top, bottom), (left, right)) (cropped).
        output_padding: None or an int / pair, smaller than the strides, added at the bottom/right.
        dilation_rate, activation, use_bias, kernel_initializer, bias_initializer: as Conv2D.
    """

    _forward_op = staticmethod(ct_ops.conv_transpose2d_forward)
    _backward_op = staticmethod(ct_ops.conv_transpose2d_backward)

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        output_padding=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(kernel_size, strides, padding, dilation_rate, activation, use_bias,
                         **kwargs)  # fmt: skip
        self.filters = positive_int(filters, f"{self.label}: filters")
        ops = ct_ops.check_output_padding(output_padding, self.strides, self.label)
        self.output_padding = None if output_padding is None else ops
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.weight_names = ("kernel", "bias") if self.use_bias else ("kernel",)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        geo = ct_ops.conv_transpose_geometry(
            tuple(input_shape[:-1]),
            self.kernel_size,
            self.strides,
            self._padding_spec(),
            self.output_padding,
            self.dilation_rate,
            who=self.label,
        )
        return (*geo.out, self.filters)

    def build(self, input_shape):
        super().build(input_shape)
        shape = (*self.kernel_size, self.filters, input_shape[-1])
        self.kernel = self.kernel_initializer(shape, self.dtype)
        if self.use_bias:
            self.bias = self.bias_initializer((self.filters,), self.dtype)

    def forward(self, x, training=False):
        """x (N, H, W, D) -> act(conv_transpose(x)) (N, Ho, Wo, K)."""
        z, self._cache = self._forward_op(
            x,
            self.kernel,
            self.bias if self.use_bias else None,
            stride=self.strides,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation_rate,
        )
        return self._activate(z)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class Conv1DTranspose(Conv2DTranspose):
    """Transposed 1D convolution: input (N, L, D) -> (N, Lo, K), kernel (F, K, D), bias (K,).

    Output length as Conv2DTranspose per axis; padding 'valid', 'same', an int P or a pair
    (before, after).
    """

    rank = 1
    _forward_op = staticmethod(ct_ops.conv_transpose1d_forward)
    _backward_op = staticmethod(ct_ops.conv_transpose1d_backward)

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        output_padding=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(
            filters, kernel_size, strides, padding, output_padding, dilation_rate, activation,
            use_bias, kernel_initializer, bias_initializer, **kwargs,
        )  # fmt: skip


class DepthwiseConv2D(_SlidingConv):
    """Depthwise 2D convolution: each input channel has its own depth_multiplier (M) filters.

    Input (N, H, W, D) -> (N, Ho, Wo, D*M), output channel d*M + m from channel d; Ho, Wo as Conv2D.
    Weights: depthwise_kernel (Fh, Fw, D, M) and bias (D*M,): (Fh*Fw + 1)*D*M parameters.

    Args:
        kernel_size, strides, padding, dilation_rate, activation, use_bias: as Conv2D.
        depth_multiplier: M. depthwise_initializer, bias_initializer: names as in Keras.
    """

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="valid",
        depth_multiplier=1,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(kernel_size, strides, padding, dilation_rate, activation, use_bias,
                         **kwargs)  # fmt: skip
        self.depth_multiplier = positive_int(depth_multiplier, f"{self.label}: depth_multiplier")
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.weight_names = ("depthwise_kernel", "bias") if self.use_bias else ("depthwise_kernel",)

    def _depthwise_out(self, input_shape):
        self._check_input(input_shape)
        _, _, _, out = conv2d_geometry(
            (1, *input_shape),
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            who=self.label,
        )
        return out

    def compute_output_shape(self, input_shape):
        return (*self._depthwise_out(input_shape), input_shape[-1] * self.depth_multiplier)

    def build(self, input_shape):
        super().build(input_shape)
        shape = (*self.kernel_size, input_shape[-1], self.depth_multiplier)
        self.depthwise_kernel = self.depthwise_initializer(shape, self.dtype)
        if self.use_bias:
            units = input_shape[-1] * self.depth_multiplier
            self.bias = self.bias_initializer((units,), self.dtype)

    def _op_kwargs(self):
        return {"stride": self.strides, "padding": self.padding, "dilation": self.dilation_rate}

    def forward(self, x, training=False):
        """x (N, H, W, D) -> act(depthwise_conv(x)) (N, Ho, Wo, D*M)."""
        b = self.bias if self.use_bias else None
        z, self._cache = dw_ops.depthwise_conv2d_forward(
            x, self.depthwise_kernel, b, **self._op_kwargs()
        )
        return self._activate(z)

    _backward_op = staticmethod(dw_ops.depthwise_conv2d_backward)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class SeparableConv2D(DepthwiseConv2D):
    """Depthwise separable 2D convolution: a DepthwiseConv2D (no bias), then a 1x1 convolution.

    Input (N, H, W, D) -> (N, Ho, Wo, K); strides, padding and dilation apply to the depthwise step.
    Weights (Keras' order): depthwise_kernel (Fh, Fw, D, M), pointwise_kernel (1, 1, D*M, K) and
    bias (K,): Fh*Fw*D*M + D*M*K + K parameters, against (Fh*Fw*D + 1)*K for a Conv2D.

    Args:
        filters: K. kernel_size, strides, padding, dilation_rate, depth_multiplier, activation,
        use_bias: as DepthwiseConv2D. depthwise_initializer, pointwise_initializer,
        bias_initializer: names as in Keras.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(
            kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
            depthwise_initializer, bias_initializer, **kwargs,
        )  # fmt: skip
        self.filters = positive_int(filters, f"{self.label}: filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        names = ("depthwise_kernel", "pointwise_kernel")
        self.weight_names = (*names, "bias") if self.use_bias else names

    def compute_output_shape(self, input_shape):
        return (*self._depthwise_out(input_shape), self.filters)

    def build(self, input_shape):
        Layer.build(self, input_shape)
        dm = input_shape[-1] * self.depth_multiplier
        shape = (*self.kernel_size, input_shape[-1], self.depth_multiplier)
        self.depthwise_kernel = self.depthwise_initializer(shape, self.dtype)
        self.pointwise_kernel = self.pointwise_initializer((1, 1, dm, self.filters), self.dtype)
        if self.use_bias:
            self.bias = self.bias_initializer((self.filters,), self.dtype)

    def forward(self, x, training=False):
        """x (N, H, W, D) -> act(pointwise(depthwise(x)) + b) (N, Ho, Wo, K)."""
        z, self._cache = dw_ops.separable_conv2d_forward(
            x,
            self.depthwise_kernel,
            self.pointwise_kernel,
            self.bias if self.use_bias else None,
            **self._op_kwargs(),
        )
        return self._activate(z)

    _backward_op = staticmethod(dw_ops.separable_conv2d_backward)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
        }

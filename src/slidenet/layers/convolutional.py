"""Conv2D and Conv1D: a bank of K filters slid over the input volume (see slidenet.ops.conv)."""

from __future__ import annotations

import logging

import numpy as np

from slidenet import initializers
from slidenet._validation import fmt_shape, int_tuple, positive_int
from slidenet.layers.base import ActivationMixin, Layer
from slidenet.ops import conv as conv_ops
from slidenet.ops import depthwise as dw_ops
from slidenet.ops.shapes import effective_size, resolve_padding
from slidenet.ops.winograd import winograd_applies

logger = logging.getLogger("slidenet")

# Winograd's tile transforms are memory-bound: below this depth (input or filters) they cost more
# than the multiplications they save (benchmarks/README.md has the measurements).
WINOGRAD_MIN_DEPTH = 16


class Conv2D(ActivationMixin, Layer):
    """2D convolution layer: K filters of Fh x Fw spanning the full input depth D.

    Input (N, H, W, D) -> output (N, Ho, Wo, K) with Ho = (H - Fh + pt + pb)/sh + 1.
    Weights: kernel (Fh, Fw, D, K) and bias (K,): (Fh*Fw*D + 1)*K parameters.

    Args:
        filters: K. kernel_size: F or (Fh, Fw). strides: S or (sh, sw).
        padding: 'valid', 'same' (TensorFlow's rule), P, (Ph, Pw) or ((top, bottom), (left, right)).
        dilation_rate: int or pair. groups: G, splitting the input channels and the filters into
            G groups, filter group g seeing only input group g (kernel (Fh, Fw, D/G, K); Conv2D
            only). activation: name or None. use_bias: add the bias.
        kernel_initializer, bias_initializer: names as in Keras.
        algorithm: 'auto' (chosen at build, see ``choose_algorithm``), 'im2col' or 'winograd';
            the chosen one is ``layer.algorithm`` and is logged to the 'slidenet' logger.
    """

    rank = 2
    step_buffers = ("_cols",)
    _forward_op = staticmethod(conv_ops.conv2d_forward)
    _backward_op = staticmethod(conv_ops.conv2d_backward)

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
        algorithm="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = self.label
        self.filters = positive_int(filters, f"{who}: filters")
        self.groups = positive_int(groups, f"{who}: groups")
        if self.groups > 1 and self.rank == 1:
            raise ValueError(f"{who}: groups > 1 is supported by Conv2D only, got {groups}.")
        if self.filters % self.groups:
            dw_ops.check_groups(self.groups, self.groups, self.filters, who)
        self.kernel_size = int_tuple(kernel_size, self.rank, f"{who}: kernel_size")
        self.strides = int_tuple(strides, self.rank, f"{who}: strides")
        self.dilation_rate = int_tuple(dilation_rate, self.rank, f"{who}: dilation_rate")
        if isinstance(padding, str):
            padding = padding.lower()
        elif not isinstance(padding, int):
            padding = _to_tuple(padding)
        ones = (1,) * self.rank
        # validate the spec; Conv1D's pair (before, after) is the padding of its one axis
        spec = (padding,) if self.rank == 1 and isinstance(padding, tuple) else padding
        resolve_padding(spec, ones, ones, ones, ones, f"{who}: padding")
        self.padding = padding
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.weight_names = ("kernel", "bias") if self.use_bias else ("kernel",)
        if algorithm not in ("auto", *conv_ops.ALGORITHMS):
            raise ValueError(
                f"{who}: algorithm must be 'auto', 'im2col' or 'winograd', got {algorithm!r}."
            )
        self.algorithm_arg = algorithm
        self.algorithm = "im2col"

    def _geometry(self, input_shape):
        return conv_ops.conv2d_geometry(
            (1, *input_shape),
            (*self.kernel_size, input_shape[-1], self.filters),
            self.strides,
            self.padding,
            self.dilation_rate,
            who=self.label,
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(
            input_shape, 3, "(H, W, D)", "Images need a channel axis: use input_shape=(H, W, 1)."
        )
        _, _, _, (ho, wo) = self._geometry(input_shape)
        return ho, wo, self.filters

    def _pads(self, input_shape):
        return self._geometry(tuple(input_shape))[0]

    def build(self, input_shape):
        super().build(input_shape)
        self.pads = self._pads(input_shape)
        dw_ops.check_groups(self.groups, input_shape[-1], self.filters, self.label)
        shape = (*self.kernel_size, input_shape[-1] // self.groups, self.filters)
        self.kernel = self.kernel_initializer(shape, self.dtype)
        if self.use_bias:
            self.bias = self.bias_initializer((self.filters,), self.dtype)
        self.algorithm = self.choose_algorithm(input_shape)

    def choose_algorithm(self, input_shape) -> str:
        """'winograd' for 3x3 / 5x5 stride-1 kernels on deep enough volumes, else 'im2col'.

        The choice covers the forward pass and both gradients (ops.conv2d_forward/backward).
        """
        pads = self.pads if self.rank == 2 else ((0, 0), self.pads)
        fits = self.rank == 2 and winograd_applies(
            self.kernel_size, self.strides, self.dilation_rate, pads
        )
        if self.algorithm_arg == "winograd" and not fits:
            conv_ops._check_algorithm(
                "winograd", self.kernel_size, self.strides, self.dilation_rate, pads, self.label
            )
        if self.groups > 1:
            if self.algorithm_arg == "winograd":
                raise ValueError(f"{self.label}: algorithm='winograd' does not take groups > 1.")
            choice, why = "im2col", f"{self.groups} groups"
        elif self.algorithm_arg != "auto":
            choice, why = self.algorithm_arg, "as asked"
        elif (
            fits
            and min(input_shape[-1], self.filters) >= WINOGRAD_MIN_DEPTH
            and self.dtype in (np.float32, np.float64)  # float16 tiles lose too much precision
        ):
            choice, why = "winograd", f"{self.kernel_size[0]}x{self.kernel_size[1]} stride 1"
        else:
            choice, why = "im2col", "the general path"
        logger.info("%s: algorithm %s (%s)", self.label, choice, why)
        return choice

    def forward(self, x, training=False, activate=True):
        """x (N, H, W, D) -> act(conv(x)) (N, Ho, Wo, K); activate=False returns conv(x) alone
        (the model then applies a ReLU after the following max pool, which is equivalent)."""
        b = self.bias if self.use_bias else None
        algorithm = self.algorithm
        if self.groups > 1:
            z, self._cache = dw_ops.conv2d_grouped_forward(
                x,
                self.kernel,
                b,
                groups=self.groups,
                stride=self.strides,
                padding=self.pads,
                dilation=self.dilation_rate,
            )
            return self._activate(z) if activate else z
        z, self._cache = self._forward_op(
            x,
            self.kernel,
            b,
            stride=self.strides,
            padding=self.pads,
            dilation=self.dilation_rate,
            cols_out=self._columns_buffer(x) if algorithm == "im2col" else None,
            algorithm=algorithm,
        )
        return self._activate(z) if activate else z

    def _columns_buffer(self, x):
        """A buffer for im2col, kept across steps: a fresh one per step would cost as much in page
        faults as the copy itself. None for 1x1 stride-1 kernels, whose columns are a view of x."""
        if all(k == 1 for k in self.kernel_size) and all(s == 1 for s in self.strides):
            return None
        rows = x.shape[0] * int(np.prod(self._out[:-1]))
        shape = (rows, int(np.prod(self.kernel_size)) * x.shape[-1])
        buf = getattr(self, "_cols", None)
        if buf is None or buf.shape != shape or buf.dtype != x.dtype:
            self._cols = buf = np.empty(shape, x.dtype)
        return buf

    def backward(self, dy, from_logits=False, need_dx=True):
        """dy (N, Ho, Wo, K) -> dx (N, H, W, D), or None with need_dx=False (a first layer)."""
        dz = self._deactivate(dy, from_logits)
        backward = dw_ops.conv2d_grouped_backward if self.groups > 1 else self._backward_op
        dx, dw, db = backward(dz, self._cache, need_dx)
        self.grads = [dw, db] if self.use_bias else [dw]
        return dx

    def receptive_field(self) -> tuple[int, ...]:
        """Extent of the window each output sees in this layer's input (dilation included)."""
        return tuple(
            effective_size(f, d) for f, d in zip(self.kernel_size, self.dilation_rate, strict=True)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding
            if isinstance(self.padding, str | int)
            else _to_list(self.padding),
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "algorithm": self.algorithm_arg,
        }


class Conv1D(Conv2D):
    """1D convolution for scanning signals: K filters of width F slide along L.

    Input (N, L, D) -> output (N, Lo, K), Lo = (L - F + 2P)/S + 1. kernel (F, D, K), bias (K,).
    padding: 'valid', 'same', an int P or a pair (before, after).
    """

    rank = 1
    _forward_op = staticmethod(conv_ops.conv1d_forward)
    _backward_op = staticmethod(conv_ops.conv1d_backward)

    def _geometry(self, input_shape):
        padding = self.padding
        if not isinstance(padding, str):
            padding = ((0, 0), (padding, padding) if isinstance(padding, int) else padding)
        return conv_ops.conv2d_geometry(
            (1, 1, *input_shape),
            (1, *self.kernel_size, input_shape[-1], self.filters),
            (1, *self.strides),
            padding,
            (1, *self.dilation_rate),
            who=self.label,
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(
            input_shape, 2, "(L, D)", "Signals need a channel axis: use input_shape=(L, 1)."
        )
        try:
            _, _, _, (_, lo) = self._geometry(input_shape)
        except ValueError:
            raise ValueError(
                f"{self.label}: kernel {self.kernel_size[0]} does not fit input length "
                f"{input_shape[0]} with padding={self.padding!r} (input {fmt_shape(input_shape)}). "
                f"Use padding='same' or kernel_size<={input_shape[0]}."
            ) from None
        return lo, self.filters

    def _pads(self, input_shape):
        return self._geometry(tuple(input_shape))[0][1]


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def _to_list(value):
    return [_to_list(v) for v in value] if isinstance(value, list | tuple) else value

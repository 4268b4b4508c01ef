"""ResidualBlock: the basic block of ResNet (He et al. 2016), built from existing layers.

    y = relu( BN2(Conv2(relu(BN1(Conv1(x))))) + S(x) )

Conv1 (K filters, F x F, stride s, 'same', no bias) and Conv2 (K filters, F x F, stride 1, 'same',
no bias) form the main path. The shortcut S is the identity when the input already has the output's
shape (stride 1 and input depth D == K), and otherwise a projection: a 1x1 Conv2D with stride s and
no bias, followed by its own BatchNormalization. The block is a composite: its ``call`` uses only
ordinary layers (Conv2D, BatchNormalization, ReLU, Add), so it has no backward pass of its own: the
calls are recorded and replayed backwards (slidenet.models.tape), the Add splitting the gradient
into the main path and the shortcut, and the two input gradients adding up. As a graph it is
``applications.resnet_small``'s stage; this layer is the one-line convenience.
"""

from __future__ import annotations

import numpy as np

from slidenet import initializers
from slidenet._validation import fmt_shape, int_tuple, positive_int
from slidenet.layers.base import Layer
from slidenet.layers.convolutional import Conv2D
from slidenet.layers.core import ReLU
from slidenet.layers.merge import Add
from slidenet.layers.normalization import BatchNormalization

SHORTCUTS = ("auto", "identity", "projection")
SUBLAYERS = ("conv1", "bn1", "conv2", "bn2", "shortcut_conv", "shortcut_bn")


class ResidualBlock(Layer):
    """ResNet's basic block: two F x F convolutions with batch norm, plus a shortcut.

    Input (N, H, W, D) -> output (N, ceil(H / s), ceil(W / s), K). The sub-layers are ordinary
    layers, kept as attributes ``conv1, bn1, conv2, bn2, shortcut_conv, shortcut_bn`` (the last two
    None for an identity shortcut). The block's weights are theirs, concatenated in that order and
    named ``'conv1/kernel', 'bn1/gamma', 'bn1/beta', 'bn1/moving_mean', ...``; the moving
    statistics of the batch norms get None gradients and are not trained.

    Parameters: F*F*D*K + 4K + F*F*K*K + 4K, plus D*K + 4K with a projection shortcut (each batch
    norm has 2K trained and 2K moving values).

    Args:
        filters: K, the output depth.
        kernel_size: F or (Fh, Fw) of both convolutions (3 in ResNet).
        strides: s, the stride of the first convolution and of the projection (2 to downsample).
        shortcut: 'identity', 'projection', or 'auto' (identity when s == 1 and D == K, else
            projection).
        kernel_initializer: of the three convolutions ('he_normal', as in ResNet).
        momentum, epsilon: of the batch norms (Keras' convention, see BatchNormalization).

    >>> import numpy as np
    >>> block = ResidualBlock(8, strides=2)
    >>> block.build((6, 6, 4))
    >>> block.output_shape, block.shortcut_conv is not None, block.count_params()
    ((None, 3, 3, 8), True, 992)
    >>> block(np.zeros((2, 6, 6, 4), "float32")).shape
    (2, 3, 3, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        shortcut="auto",
        kernel_initializer="he_normal",
        momentum=0.99,
        epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        who = self.label
        self.filters = positive_int(filters, f"{who}: filters")
        self.kernel_size = int_tuple(kernel_size, 2, f"{who}: kernel_size")
        self.strides = int_tuple(strides, 2, f"{who}: strides")
        if shortcut not in SHORTCUTS:
            raise ValueError(
                f"{who}: shortcut must be one of {', '.join(map(repr, SHORTCUTS))}, "
                f"got {shortcut!r}."
            )
        self.shortcut = shortcut
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.momentum, self.epsilon = momentum, epsilon
        conv = {"use_bias": False, "kernel_initializer": self.kernel_initializer}
        bn = {"momentum": momentum, "epsilon": epsilon}
        self.conv1 = self._sub(
            Conv2D, "conv1", filters, kernel_size, strides, padding="same", **conv
        )
        self.bn1 = self._sub(BatchNormalization, "bn1", **bn)
        self.conv2 = self._sub(Conv2D, "conv2", filters, kernel_size, 1, padding="same", **conv)
        self.bn2 = self._sub(BatchNormalization, "bn2", **bn)
        self.shortcut_conv = self.shortcut_bn = None  # decided in build (needs the input depth)
        self.relu1 = self._sub(ReLU, "relu1")
        self.add = self._sub(Add, "add")
        self.relu2 = self._sub(ReLU, "relu2")
        self.weight_names = ()

    def _sub(self, cls, part, *args, **kwargs):
        return cls(*args, name=f"{self.name}/{part}", dtype=self.dtype, **kwargs)

    # ----- the sub-layers ----------------------------------------------------------------------
    @property
    def sublayers(self) -> list[Layer]:
        """The sub-layers that exist, in weight order (conv1, bn1, conv2, bn2[, shortcut_*])."""
        return [layer for part in SUBLAYERS if (layer := self.__dict__.get(part)) is not None]

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, value):  # the sub-layers follow (gradcheck switches the block to float64)
        self._dtype = np.dtype(value)
        for layer in self.sublayers:
            layer.dtype = self._dtype

    def __getattr__(self, name):
        """'conv1/kernel' -> self.conv1.kernel (the live array), as the weight names say."""
        part, slash, attr = name.partition("/")
        layer = self.__dict__.get(part) if slash else None
        if layer is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(layer, attr)

    # ----- shapes and building -----------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        self._expect_rank(
            input_shape, 3, "(H, W, D)", "Images need a channel axis: use input_shape=(H, W, 1)."
        )
        return self.conv1.compute_output_shape(input_shape)

    def _projects(self, input_shape) -> bool:
        same_shape = self.strides == (1, 1) and input_shape[-1] == self.filters
        if self.shortcut == "identity" and not same_shape:
            raise ValueError(
                f"{self.label}: an identity shortcut needs strides=1 and input depth == filters, "
                f"got input {fmt_shape(input_shape)}, filters={self.filters}, "
                f"strides={self.strides}. Use shortcut='projection' (or 'auto')."
            )
        return self.shortcut == "projection" or (self.shortcut == "auto" and not same_shape)

    def build(self, input_shape):
        input_shape = tuple(int(s) for s in input_shape)
        out = self.compute_output_shape(input_shape)
        if self._projects(input_shape):
            self.shortcut_conv = self._sub(
                Conv2D,
                "shortcut_conv",
                self.filters,
                1,
                self.strides,
                padding="same",
                use_bias=False,
                kernel_initializer=self.kernel_initializer,
            )
            self.shortcut_bn = self._sub(
                BatchNormalization, "shortcut_bn", momentum=self.momentum, epsilon=self.epsilon
            )
        else:
            self.shortcut_conv = self.shortcut_bn = None
        self.conv1.build(input_shape)
        self.bn1.build(out)
        self.conv2.build(out)
        self.bn2.build(out)
        if self.shortcut_conv is not None:
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(out)
        super().build(input_shape)  # a composite: runs call once

    def _name_composite_weights(self) -> None:
        self.weight_names = tuple(
            f"{part}/{n}"
            for part in SUBLAYERS
            if (layer := self.__dict__.get(part)) is not None
            for n in layer.weight_names
        )

    # ----- running -----------------------------------------------------------------------------
    def call(self, x, training=False):
        """x (N, H, W, D) -> relu(main(x) + shortcut(x)) (N, Ho, Wo, K)."""
        h = self.relu1(self.bn1(self.conv1(x), training=training))
        h = self.bn2(self.conv2(h), training=training)
        s = x
        if self.shortcut_conv is not None:
            s = self.shortcut_bn(self.shortcut_conv(x), training=training)
        return self.relu2(self.add([h, s]))

    # ----- weights and config ------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.sublayers for w in layer.weights] if self.built else []

    def set_weights(self, weights) -> None:
        """Replace the weights (as get_weights returns them), sub-layer by sub-layer."""
        weights = self._checked_weights(weights)
        i = 0
        for layer in self.sublayers:
            n = len(layer.weight_names)
            layer.set_weights(weights[i : i + n])
            i += n

    def receptive_field(self) -> tuple[int, ...]:
        """Extent of the input window one output sees: F + (F - 1) * s per axis."""
        return tuple(f + (f - 1) * s for f, s in zip(self.kernel_size, self.strides, strict=True))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "shortcut": self.shortcut,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }

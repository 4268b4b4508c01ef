"""A small GoogLeNet (Szegedy et al. 2015): Inception modules, parallel branches joined on the
channel axis, built as a graph (:class:`slidenet.Model`)."""

from __future__ import annotations

from slidenet._validation import positive_int
from slidenet.layers import (
    Concatenate,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
)
from slidenet.models.functional import Model

# Per module, GoogLeNet's columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
MODULES = ((16, 16, 24, 4, 8, 8), (32, 24, 48, 8, 16, 16))


def _conv(filters, size, name):
    """Conv2D(filters, size x size, stride 1, 'same', relu): every GoogLeNet convolution."""
    return Conv2D(
        filters, size, padding="same", activation="relu", kernel_initializer="he_normal", name=name
    )


def _inception_module(x, f1, f3r, f3, f5r, f5, fp, prefix):
    """One Inception module on tensor ``x`` (N, H, W, D) -> (N, H, W, f1 + f3 + f5 + fp).

    Four branches see the same input: a 1x1 convolution; a 1x1 "reduce" to f3r channels, then a
    3x3; a 1x1 reduce to f5r, then a 5x5; a 3x3 max pool (stride 1, 'same'), then a 1x1 "pool
    projection". Every convolution is 'same' with stride 1 and ReLU, so all four keep H x W and a
    Concatenate on the channel axis joins them.
    """
    b1 = _conv(f1, 1, f"{prefix}_1x1")(x)
    b3 = _conv(f3, 3, f"{prefix}_3x3")(_conv(f3r, 1, f"{prefix}_3x3_reduce")(x))
    b5 = _conv(f5, 5, f"{prefix}_5x5")(_conv(f5r, 1, f"{prefix}_5x5_reduce")(x))
    pool = MaxPooling2D(3, strides=1, padding="same", name=f"{prefix}_pool")(x)
    bp = _conv(fp, 1, f"{prefix}_pool_proj")(pool)
    return Concatenate(axis=-1, name=f"{prefix}_concat")([b1, b3, b5, bp])


def inception_small(input_shape=(28, 28, 1), classes=10, name="inception_small") -> Model:
    """A small GoogLeNet-style net: a stem convolution and two Inception modules.

    ::

        input (28, 28, 1)
        stem_conv    Conv2D(16, 3, same, relu)                          (28, 28, 16)
        stem_pool    MaxPooling2D(3, strides 2, same)                   (14, 14, 16)
        inception1   1x1: 16 | 1x1: 16 -> 3x3: 24 | 1x1: 4 -> 5x5: 8 | pool -> 1x1: 8
                     Concatenate(axis=-1): 16 + 24 + 8 + 8             (14, 14, 56)
        pool1        MaxPooling2D(3, strides 2, same)                   (7, 7, 56)
        inception2   1x1: 32 | 1x1: 24 -> 3x3: 48 | 1x1: 8 -> 5x5: 16 | pool -> 1x1: 16
                     Concatenate(axis=-1): 32 + 48 + 16 + 16           (7, 7, 112)
        avg_pool     GlobalAveragePooling2D                             (112,)
        predictions  Dense(classes, softmax)                            (classes,)

    In each module the four branches run in parallel on the same input: a 1x1 convolution; a
    1x1 that reduces the depth, then a 3x3; a 1x1 reduce, then a 5x5; a 3x3 max pool (stride 1,
    'same'), then a 1x1 projection. Every convolution has stride 1, 'same' padding, a bias and
    ReLU, so the branches keep H x W and are joined on the channel axis. The layers are named
    ``inception{i}_{1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool, pool_proj, concat}``.

    A convolution with F x F kernels on D channels and K filters has (F*F*D + 1) * K parameters.
    With the defaults: stem 160; inception1 (D = 16) 272 + 272 + 3,480 + 68 + 808 + 136 = 5,036;
    inception2 (D = 56) 1,824 + 1,368 + 10,416 + 456 + 3,216 + 912 = 18,192; Dense 113 * 10 =
    1,130; 24,518 parameters in all, about 2.0M multiply-adds per 28x28 image (the 1x1 reductions
    keep the 3x3 and 5x5 convolutions thin). Input (N, H, W, D) -> output (N, classes).

    >>> model = inception_small()
    >>> model.count_params(), model.output_shape
    (24518, (None, 10))
    >>> model.get_layer("inception2_concat").output_shape
    (None, 7, 7, 112)
    """
    classes = positive_int(classes, "inception_small: classes")
    inputs = Input(input_shape, name="input")
    x = _conv(16, 3, "stem_conv")(inputs)
    x = MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    x = _inception_module(x, *MODULES[0], "inception1")
    x = MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _inception_module(x, *MODULES[1], "inception2")
    x = GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = Dense(classes, activation="softmax", name="predictions")(x)
    return Model(inputs, outputs, name=name)


__all__ = ["inception_small"]

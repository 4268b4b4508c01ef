"""VGG- and ResNet-style networks with batch normalisation, small enough for a 2-core CPU."""

from __future__ import annotations

from slidenet._validation import positive_int
from slidenet.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
    ResidualBlock,
)
from slidenet.models.sequential import Sequential


def _conv_bn_relu(filters, strides=1):
    """Conv2D(3x3, 'same', no bias: the batch norm's beta is the bias) -> BN -> ReLU."""
    return [
        Conv2D(
            filters,
            3,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
        ),
        BatchNormalization(),
        ReLU(),
    ]


def _check_filters(filters, who):
    if isinstance(filters, int) or not filters:
        raise ValueError(f"{who}: filters must be a non-empty tuple of ints, got {filters!r}.")
    return tuple(positive_int(f, f"{who}: filters") for f in filters)


def vgg_small(
    input_shape=(28, 28, 1),
    classes=10,
    filters=(32, 64),
    dense=128,
    dropout=0.3,
    name="vgg_small",
) -> Sequential:
    """A small VGG-style net (Simonyan & Zisserman 2015): blocks of two 3x3 convolutions with
    batch norm, each block ending in a 2x2 max pool, then a dense head.

    For each f in ``filters``: [Conv2D(f, 3, same, no bias) -> BN -> ReLU] x 2 -> MaxPool(2); then
    Flatten -> Dense(dense, relu) -> Dropout(dropout) -> Dense(classes, softmax).
    Input (N, H, W, D) -> output (N, classes). On 28x28x1 with the defaults: 28 -> 14 -> 7, a
    7x7x64 map, 468,394 parameters (of which 384 moving batch-norm statistics).

    >>> model = vgg_small()
    >>> model.count_params(), model.output_shape
    (468394, (None, 10))
    """
    filters = _check_filters(filters, "vgg_small")
    layers = [Input(input_shape)]
    for f in filters:
        layers += [*_conv_bn_relu(f), *_conv_bn_relu(f), MaxPooling2D(2)]
    layers += [Flatten(), Dense(positive_int(dense, "vgg_small: dense"), activation="relu")]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(positive_int(classes, "vgg_small: classes"), activation="softmax"))
    return Sequential(layers, name=name)


def resnet_small(
    input_shape=(28, 28, 1),
    classes=10,
    filters=(16, 32, 64),
    blocks=2,
    name="resnet_small",
) -> Sequential:
    """A small ResNet (He et al. 2016) for 28x28 images, in the style of the CIFAR ResNets.

    Stem: Conv2D(filters[0], 3, same, no bias) -> BN -> ReLU. Then one stage per entry of
    ``filters``, each of ``blocks`` :class:`~slidenet.layers.ResidualBlock`s; the first block of
    every stage after the first has strides 2 and a 1x1 projection shortcut (the depth changes),
    the others identity shortcuts. Then GlobalAveragePooling2D -> Dense(classes, softmax).

    On 28x28x1 with the defaults the maps are 28x28x16 -> 14x14x32 -> 7x7x64: 13 convolutions in
    all, 176,090 parameters (1,120 of them moving batch-norm statistics), about 20M multiply-adds
    per image.

    >>> model = resnet_small()
    >>> model.count_params(), model.output_shape
    (176090, (None, 10))
    >>> [layer.shortcut for layer in model.layers if hasattr(layer, "shortcut")][:3]
    ['auto', 'auto', 'auto']
    """
    filters = _check_filters(filters, "resnet_small")
    blocks = positive_int(blocks, "resnet_small: blocks")
    layers = [Input(input_shape), *_conv_bn_relu(filters[0])]
    for stage, f in enumerate(filters):
        for b in range(blocks):
            strides = 2 if stage > 0 and b == 0 else 1
            layers.append(ResidualBlock(f, 3, strides=strides))
    layers += [
        GlobalAveragePooling2D(),
        Dense(positive_int(classes, "resnet_small: classes"), activation="softmax"),
    ]
    return Sequential(layers, name=name)


__all__ = ["vgg_small", "resnet_small"]

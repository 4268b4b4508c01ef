"""VGG- and ResNet-style networks with batch normalisation, small enough for a 2-core CPU: vgg_small
is a Sequential, resnet_small a graph Model (its shortcuts are Add nodes)."""

from __future__ import annotations

from slidenet._validation import positive_int
from slidenet.layers import (
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
)
from slidenet.models.functional import Model
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


def _residual_block(x, filters, strides, prefix):
    """ResNet's basic block on tensor ``x``, as graph nodes named ``{prefix}_{part}``.

    Main path: Conv2D(filters, 3, strides, same, no bias) -> BN -> ReLU -> Conv2D(filters, 3, same,
    no bias) -> BN. Shortcut: ``x`` itself when it has the output's shape (strides 1, same depth),
    otherwise a 1x1 Conv2D(filters, strides, no bias) -> BN projection. Then Add -> ReLU. The parts
    are named as :class:`~slidenet.layers.ResidualBlock` names its sub-layers (conv1, bn1, relu1,
    conv2, bn2, shortcut_conv, shortcut_bn, add, relu2).
    """
    conv = {"padding": "same", "use_bias": False, "kernel_initializer": "he_normal"}
    h = Conv2D(filters, 3, strides=strides, name=f"{prefix}_conv1", **conv)(x)
    h = ReLU(name=f"{prefix}_relu1")(BatchNormalization(name=f"{prefix}_bn1")(h))
    h = Conv2D(filters, 3, name=f"{prefix}_conv2", **conv)(h)
    h = BatchNormalization(name=f"{prefix}_bn2")(h)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = Conv2D(filters, 1, strides=strides, name=f"{prefix}_shortcut_conv", **conv)(x)
        shortcut = BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
    return ReLU(name=f"{prefix}_relu2")(Add(name=f"{prefix}_add")([h, shortcut]))


def resnet_small(
    input_shape=(28, 28, 1),
    classes=10,
    filters=(16, 32, 64),
    blocks=2,
    name="resnet_small",
) -> Model:
    """A small ResNet (He et al. 2016) for 28x28 images, in the style of the CIFAR ResNets, built
    as a graph (:class:`slidenet.Model`) whose shortcuts are ``Add`` nodes.

    Stem: Conv2D(filters[0], 3, same, no bias) -> BN -> ReLU. Then one stage per entry of
    ``filters``, each of ``blocks`` basic blocks::

        x -> Conv2D(f, 3, s, same) -> BN -> ReLU -> Conv2D(f, 3, same) -> BN --> Add -> ReLU
        |                                                                      ^
        +------------ identity, or Conv2D(f, 1, s) -> BN (projection) ---------+

    The first block of every stage after the first has strides s = 2 and a 1x1 projection
    shortcut (the depth changes); the others identity shortcuts. Convolutions have no bias (the
    batch norm's beta is the bias) and He-normal initial weights. Then GlobalAveragePooling2D ->
    Dense(classes, softmax). Each block computes what a :class:`~slidenet.layers.ResidualBlock`
    computes, its layers named ``stage{i}_block{j}_{conv1, bn1, relu1, conv2, bn2, shortcut_conv,
    shortcut_bn, add, relu2}``; the rest are ``input``, ``stem_conv``, ``stem_bn``,
    ``stem_relu``, ``avg_pool`` and ``predictions``.

    On 28x28x1 with the defaults the maps are 28x28x16 -> 14x14x32 -> 7x7x64: 13 3x3 convolutions
    and 2 1x1 projections, 176,090 parameters (1,120 of them moving batch-norm statistics), about
    20M multiply-adds per image.

    >>> model = resnet_small()
    >>> model.count_params(), model.output_shape
    (176090, (None, 10))
    >>> [layer.name for layer in model.layers if "shortcut_conv" in layer.name]
    ['stage2_block1_shortcut_conv', 'stage3_block1_shortcut_conv']
    """
    filters = _check_filters(filters, "resnet_small")
    blocks = positive_int(blocks, "resnet_small: blocks")
    classes = positive_int(classes, "resnet_small: classes")
    inputs = Input(input_shape, name="input")
    x = Conv2D(
        filters[0],
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name="stem_conv",
    )(inputs)
    x = ReLU(name="stem_relu")(BatchNormalization(name="stem_bn")(x))
    for stage, f in enumerate(filters, 1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _residual_block(x, f, strides, f"stage{stage}_block{block}")
    x = GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = Dense(classes, activation="softmax", name="predictions")(x)
    return Model(inputs, outputs, name=name)


__all__ = ["vgg_small", "resnet_small"]

"""slidenet.layers: thin classes that hold parameters and call :mod:`slidenet.ops`.

Every layer: ``layer(x, training=False)`` runs forward, ``layer.backward(dy) -> dx`` runs the
hand-written backward and leaves parameter gradients in ``layer.grads`` (aligned with
``layer.weights``; None for statistics that are not trained).
"""

from slidenet.layers.base import Layer
from slidenet.layers.convolutional import Conv1D, Conv2D
from slidenet.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    ReLU,
    Reshape,
)
from slidenet.layers.merge import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from slidenet.layers.normalization import BatchNormalization
from slidenet.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    SumPooling2D,
)
from slidenet.layers.residual import ResidualBlock

# Keras' aliases
Convolution2D, Convolution1D = Conv2D, Conv1D
MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = (
    MaxPooling2D,
    AveragePooling2D,
    MaxPooling1D,
    AveragePooling1D,
)
GlobalMaxPool2D, GlobalAvgPool2D = GlobalMaxPooling2D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalAvgPool1D = GlobalMaxPooling1D, GlobalAveragePooling1D

LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (
        InputLayer,
        Conv2D,
        Conv1D,
        Dense,
        Flatten,
        Reshape,
        Dropout,
        Activation,
        ReLU,
        BatchNormalization,
        MaxPooling2D,
        AveragePooling2D,
        SumPooling2D,
        MaxPooling1D,
        AveragePooling1D,
        GlobalMaxPooling2D,
        GlobalAveragePooling2D,
        GlobalMaxPooling1D,
        GlobalAveragePooling1D,
        ResidualBlock,
        Add,
        Subtract,
        Multiply,
        Average,
        Maximum,
        Minimum,
        Concatenate,
    )
}

__all__ = [
    "Layer",
    "Input",
    *LAYER_CLASSES,
    "Convolution2D",
    "Convolution1D",
    "MaxPool2D",
    "AvgPool2D",
    "MaxPool1D",
    "AvgPool1D",
    "GlobalMaxPool2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalAvgPool1D",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
]

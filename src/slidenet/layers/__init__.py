"""slidenet.layers: thin classes that hold parameters and call :mod:`slidenet.ops`.

Every layer: ``layer(x, training=False)`` runs forward, ``layer.backward(dy) -> dx`` runs the
hand-written backward and leaves parameter gradients in ``layer.grads`` (aligned with
``layer.weights``; None for statistics that are not trained).
"""

from slidenet.layers.activation import ELU, LeakyReLU, PReLU, Softmax
from slidenet.layers.augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from slidenet.layers.base import Layer
from slidenet.layers.convolutional import Conv1D, Conv2D
from slidenet.layers.convolutional3d import (
    AveragePooling3D,
    Conv3D,
    GlobalAveragePooling3D,
    GlobalMaxPooling3D,
    MaxPooling3D,
)
from slidenet.layers.convolutional_more import (
    Conv1DTranspose,
    Conv2DTranspose,
    DepthwiseConv2D,
    SeparableConv2D,
)
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
from slidenet.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
)
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
from slidenet.layers.preprocessing import CenterCrop, Normalization, Rescaling, Resizing
from slidenet.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from slidenet.layers.residual import ResidualBlock
from slidenet.layers.spatial_dropout import (
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)

# Keras' aliases
Convolution2D, Convolution1D = Conv2D, Conv1D
Convolution2DTranspose, Convolution1DTranspose = Conv2DTranspose, Conv1DTranspose
SeparableConvolution2D = SeparableConv2D
MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = (
    MaxPooling2D,
    AveragePooling2D,
    MaxPooling1D,
    AveragePooling1D,
)
GlobalMaxPool2D, GlobalAvgPool2D = GlobalMaxPooling2D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalAvgPool1D = GlobalMaxPooling1D, GlobalAveragePooling1D
Convolution3D = Conv3D
MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
GlobalMaxPool3D, GlobalAvgPool3D = GlobalMaxPooling3D, GlobalAveragePooling3D

LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (
        InputLayer,
        Conv2D,
        Conv1D,
        Conv3D,
        MaxPooling3D,
        AveragePooling3D,
        GlobalMaxPooling3D,
        GlobalAveragePooling3D,
        UpSampling1D,
        UpSampling2D,
        UpSampling3D,
        ZeroPadding1D,
        ZeroPadding2D,
        ZeroPadding3D,
        Cropping1D,
        Cropping2D,
        Cropping3D,
        SpatialDropout1D,
        SpatialDropout2D,
        SpatialDropout3D,
        Conv2DTranspose,
        Conv1DTranspose,
        DepthwiseConv2D,
        SeparableConv2D,
        Dense,
        Flatten,
        Reshape,
        Dropout,
        Activation,
        ReLU,
        BatchNormalization,
        LeakyReLU,
        PReLU,
        ELU,
        Softmax,
        LayerNormalization,
        GroupNormalization,
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
        Rescaling,
        Normalization,
        Resizing,
        CenterCrop,
        RandomFlip,
        RandomTranslation,
        RandomRotation,
        RandomZoom,
        RandomCrop,
        RandomContrast,
        RandomBrightness,
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
    "Convolution2DTranspose",
    "Convolution1DTranspose",
    "SeparableConvolution2D",
    "MaxPool2D",
    "AvgPool2D",
    "MaxPool1D",
    "AvgPool1D",
    "GlobalMaxPool2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "GlobalAvgPool1D",
    "Convolution3D",
    "MaxPool3D",
    "AvgPool3D",
    "GlobalMaxPool3D",
    "GlobalAvgPool3D",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
]

"""The Layer contract, checked on every class in slidenet.layers.LAYER_CLASSES.

One parametrised test walks each case through: build -> output_shape, config round trip, forward
(dtype kept), backward (dx like x, grads aligned with weights), get/set_weights (copies, round trip,
wrong count/shape), count_params, and a float64 numerical gradient check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from slidenet import layers as L
from slidenet.utils import gradcheck

GRADCHECK_TOL = 1e-6
# Only BatchNormalization may leave a gradient slot empty: its running statistics are not trained.
UNTRAINED = {"BatchNormalization": {"moving_mean", "moving_variance"}}
# Normalization keeps its statistics (from adapt or its arguments) as weights; not trained.
UNTRAINED["Normalization"] = {"mean", "variance"}
UNTRAINED["ResidualBlock"] = {  # its batch norms' statistics, named '<sub-layer>/<weight>'
    f"{bn}/{n}" for bn in ("bn1", "bn2", "shortcut_bn") for n in ("moving_mean", "moving_variance")
}


@dataclass(frozen=True)
class Case:
    id: str
    make: Any  # () -> unbuilt layer
    shape: tuple  # input batch shape (N, ...)
    params: int  # expected count_params(), worked out by hand
    training: bool = False
    distinct: bool = False  # inputs with well separated values (max pooling, relu kinks)


def conv2d_params(fh, fw, d, k, bias=True):
    return (fh * fw * d + bias) * k


CASES = [
    Case("input_layer", lambda: L.InputLayer(shape=(3, 4)), (2, 3, 4), 0),
    # Conv2D
    Case("conv2d", lambda: L.Conv2D(3, 3), (2, 5, 5, 2), conv2d_params(3, 3, 2, 3)),
    Case(
        "conv2d_stride2_same",
        lambda: L.Conv2D(2, 3, strides=2, padding="same"),
        (2, 7, 6, 2),
        conv2d_params(3, 3, 2, 2),
    ),
    Case(
        "conv2d_asymmetric_pad",
        lambda: L.Conv2D(2, (2, 3), padding=((1, 0), (2, 1))),
        (2, 4, 5, 1),
        conv2d_params(2, 3, 1, 2),
    ),
    Case(
        "conv2d_int_pad", lambda: L.Conv2D(2, 3, padding=1), (2, 4, 4, 2), conv2d_params(3, 3, 2, 2)
    ),
    Case(
        "conv2d_pair_pad_stride",
        lambda: L.Conv2D(2, 3, strides=(2, 1), padding=(1, 2)),
        (2, 5, 4, 1),
        conv2d_params(3, 3, 1, 2),
    ),
    Case(
        "conv2d_dilation",
        lambda: L.Conv2D(2, 2, dilation_rate=2),
        (2, 6, 5, 2),
        conv2d_params(2, 2, 2, 2),
    ),
    Case(
        "conv2d_dilation_same",
        lambda: L.Conv2D(2, 3, dilation_rate=(2, 1), padding="same"),
        (2, 5, 5, 1),
        conv2d_params(3, 3, 1, 2),
    ),
    Case(
        "conv2d_rect_kernel",
        lambda: L.Conv2D(2, (1, 3), strides=(1, 2)),
        (2, 4, 7, 2),
        conv2d_params(1, 3, 2, 2),
    ),
    Case(
        "conv2d_relu",
        lambda: L.Conv2D(3, 2, activation="relu"),
        (2, 4, 4, 2),
        conv2d_params(2, 2, 2, 3),
        distinct=True,
    ),
    Case(
        "conv2d_sigmoid",
        lambda: L.Conv2D(2, 3, activation="sigmoid", padding="same"),
        (2, 4, 4, 1),
        conv2d_params(3, 3, 1, 2),
    ),
    Case(
        "conv2d_tanh",
        lambda: L.Conv2D(2, 2, activation="tanh"),
        (2, 3, 3, 2),
        conv2d_params(2, 2, 2, 2),
    ),
    Case(
        "conv2d_softmax",
        lambda: L.Conv2D(3, 2, activation="softmax"),
        (2, 3, 3, 2),
        conv2d_params(2, 2, 2, 3),
    ),
    Case(
        "conv2d_no_bias",
        lambda: L.Conv2D(2, 2, use_bias=False, kernel_initializer="he_normal"),
        (2, 4, 3, 2),
        conv2d_params(2, 2, 2, 2, bias=False),
    ),
    # Conv1D
    Case("conv1d", lambda: L.Conv1D(3, 3), (2, 8, 2), (3 * 2 + 1) * 3),
    Case(
        "conv1d_stride2_same",
        lambda: L.Conv1D(2, 3, strides=2, padding="same"),
        (2, 7, 2),
        (3 * 2 + 1) * 2,
    ),
    Case("conv1d_dilation", lambda: L.Conv1D(2, 2, dilation_rate=3), (2, 8, 1), (2 + 1) * 2),
    Case("conv1d_pair_pad", lambda: L.Conv1D(2, 3, padding=(2, 1)), (2, 5, 2), (3 * 2 + 1) * 2),
    Case(
        "conv1d_relu",
        lambda: L.Conv1D(2, 3, activation="relu", padding=1),
        (2, 6, 2),
        (3 * 2 + 1) * 2,
        distinct=True,
    ),
    # Conv2DTranspose / Conv1DTranspose: kernel (Fh, Fw, K, D), (Fh*Fw*D + 1)*K parameters
    Case(
        "conv2d_transpose", lambda: L.Conv2DTranspose(3, 3), (2, 3, 3, 2), conv2d_params(3, 3, 2, 3)
    ),
    Case(
        "conv2d_transpose_stride2_same",
        lambda: L.Conv2DTranspose(2, 3, strides=2, padding="same"),
        (2, 3, 2, 2),
        conv2d_params(3, 3, 2, 2),
    ),
    Case(
        "conv2d_transpose_output_padding_dilation",
        lambda: L.Conv2DTranspose(
            2, (2, 3), strides=(2, 3), output_padding=(1, 2), dilation_rate=(2, 1)
        ),
        (2, 2, 3, 1),
        conv2d_params(2, 3, 1, 2),
    ),
    Case(
        "conv2d_transpose_int_pad_relu_no_bias",
        lambda: L.Conv2DTranspose(2, 3, strides=2, padding=1, activation="relu", use_bias=False),
        (2, 3, 3, 2),
        conv2d_params(3, 3, 2, 2, bias=False),
        distinct=True,
    ),
    Case(
        "conv1d_transpose", lambda: L.Conv1DTranspose(2, 3, strides=2), (2, 4, 3), (3 * 3 + 1) * 2
    ),
    Case(
        "conv1d_transpose_same_output_padding",
        lambda: L.Conv1DTranspose(3, 4, strides=3, padding="same", output_padding=2),
        (2, 3, 2),
        (4 * 2 + 1) * 3,
    ),
    # DepthwiseConv2D: depthwise_kernel (Fh, Fw, D, M), bias (D*M,): (Fh*Fw + 1)*D*M
    Case("depthwise_conv2d", lambda: L.DepthwiseConv2D(3), (2, 4, 4, 2), (9 + 1) * 2),
    Case(
        "depthwise_conv2d_multiplier_stride_same",
        lambda: L.DepthwiseConv2D((3, 2), strides=2, padding="same", depth_multiplier=2),
        (2, 5, 4, 3),
        (6 + 1) * 3 * 2,
    ),
    Case(
        "depthwise_conv2d_dilation_tanh_no_bias",
        lambda: L.DepthwiseConv2D(2, dilation_rate=2, activation="tanh", use_bias=False),
        (2, 4, 5, 2),
        4 * 2,
    ),
    # SeparableConv2D: Fh*Fw*D*M + D*M*K + K
    Case("separable_conv2d", lambda: L.SeparableConv2D(3, 3), (2, 4, 4, 2), 9 * 2 + 2 * 3 + 3),
    Case(
        "separable_conv2d_multiplier_stride_same_relu",
        lambda: L.SeparableConv2D(
            2, 3, strides=2, padding="same", depth_multiplier=2, activation="relu"
        ),
        (2, 5, 5, 2),
        9 * 2 * 2 + 4 * 2 + 2,
        distinct=True,
    ),
    Case(
        "separable_conv2d_no_bias",
        lambda: L.SeparableConv2D(2, (1, 3), use_bias=False, dilation_rate=(1, 2)),
        (2, 3, 6, 2),
        3 * 2 + 2 * 2,
    ),
    # Dense
    Case("dense", lambda: L.Dense(3), (4, 5), (5 + 1) * 3),
    Case("dense_relu", lambda: L.Dense(4, activation="relu"), (4, 5), (5 + 1) * 4, distinct=True),
    Case("dense_softmax", lambda: L.Dense(4, activation="softmax"), (3, 5), (5 + 1) * 4),
    Case("dense_sigmoid", lambda: L.Dense(1, activation="sigmoid"), (3, 4), 4 + 1),
    Case("dense_tanh_no_bias", lambda: L.Dense(3, activation="tanh", use_bias=False), (3, 4), 12),
    Case("dense_3d_input", lambda: L.Dense(4), (2, 3, 5), (5 + 1) * 4),
    Case("dense_input_dim", lambda: L.Dense(2, input_dim=3), (2, 3), (3 + 1) * 2),
    # reshaping
    Case("flatten", lambda: L.Flatten(), (2, 3, 4, 2), 0),
    Case("reshape", lambda: L.Reshape((6, 2)), (2, 3, 4), 0),
    Case("reshape_minus_one", lambda: L.Reshape((4, -1)), (2, 2, 3, 2), 0),
    # Dropout
    Case("dropout_training", lambda: L.Dropout(0.4, seed=7), (3, 4, 5), 0, training=True),
    Case("dropout_inference", lambda: L.Dropout(0.4, seed=7), (3, 4, 5), 0, training=False),
    # activations
    Case("activation_relu", lambda: L.Activation("relu"), (3, 5), 0, distinct=True),
    Case("activation_sigmoid", lambda: L.Activation("sigmoid"), (3, 5), 0),
    Case("activation_tanh", lambda: L.Activation("tanh"), (3, 2, 5), 0),
    Case("activation_softmax", lambda: L.Activation("softmax"), (3, 5), 0),
    Case("activation_linear", lambda: L.Activation("linear"), (3, 5), 0),
    Case("activation_none", lambda: L.Activation(None), (3, 5), 0),
    Case("relu", lambda: L.ReLU(), (2, 3, 3, 2), 0, distinct=True),
    # BatchNormalization: gamma, beta, moving mean and variance, 4 * D parameters
    Case("batchnorm_training", lambda: L.BatchNormalization(), (4, 3, 3, 2), 8, training=True),
    Case("batchnorm_inference", lambda: L.BatchNormalization(), (4, 3, 3, 2), 8),
    Case(
        "batchnorm_dense_training",
        lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-2),
        (6, 3),
        12,
        training=True,
    ),
    # Keras 3 activations by name, through Activation, Dense and Conv2D
    *[
        Case(f"activation_{name}", lambda name=name: L.Activation(name), (3, 5), 0, distinct=True)
        for name in "gelu swish silu elu selu softplus leaky_relu hard_sigmoid".split()
    ],
    Case("dense_gelu", lambda: L.Dense(3, activation="gelu"), (3, 4), (4 + 1) * 3),
    Case(
        "conv2d_swish",
        lambda: L.Conv2D(2, 2, activation="swish"),
        (2, 3, 3, 2),
        conv2d_params(2, 2, 2, 2),
    ),
    # activation layers: LeakyReLU, ELU and Softmax have no weights; PReLU's alpha has one
    # example's shape, with 1 on the shared axes
    Case("leaky_relu", lambda: L.LeakyReLU(), (2, 3, 4), 0, distinct=True),
    Case("leaky_relu_slope", lambda: L.LeakyReLU(negative_slope=0.05), (3, 5), 0, distinct=True),
    Case("prelu", lambda: L.PReLU(), (2, 3, 3, 2), 18, distinct=True),
    Case("prelu_shared", lambda: L.PReLU(shared_axes=[1, 2]), (2, 3, 3, 2), 2, distinct=True),
    Case("elu", lambda: L.ELU(), (3, 5), 0),
    Case("elu_alpha", lambda: L.ELU(alpha=0.5), (2, 3, 4), 0),
    Case("softmax", lambda: L.Softmax(), (3, 5), 0),
    Case("softmax_axis1", lambda: L.Softmax(axis=1), (2, 3, 4), 0),
    Case("softmax_two_axes", lambda: L.Softmax(axis=[1, 2]), (2, 3, 2, 2), 0),
    # LayerNormalization: gamma and beta shaped like the normalised axes
    Case("layernorm", lambda: L.LayerNormalization(), (3, 4), 8),
    Case("layernorm_image", lambda: L.LayerNormalization(axis=[1, 2, 3]), (2, 3, 2, 2), 24),
    Case(
        "layernorm_axis1_no_center",
        lambda: L.LayerNormalization(axis=1, center=False),
        (2, 3, 4),
        3,
    ),
    # GroupNormalization: gamma and beta (C,)
    Case("groupnorm", lambda: L.GroupNormalization(groups=2), (2, 3, 2, 4), 8),
    Case("groupnorm_instance", lambda: L.GroupNormalization(groups=-1), (2, 3, 3, 2), 4),
    Case(
        "groupnorm_one_group_no_scale",
        lambda: L.GroupNormalization(groups=1, scale=False, epsilon=1e-2),
        (3, 4, 3),
        3,
    ),
    Case("groupnorm_dense", lambda: L.GroupNormalization(groups=3, axis=1), (4, 6), 12),
    # 2D pooling
    Case("maxpool2d", lambda: L.MaxPooling2D(2), (2, 4, 4, 2), 0, distinct=True),
    Case(
        "maxpool2d_same", lambda: L.MaxPooling2D(2, padding="same"), (2, 5, 5, 2), 0, distinct=True
    ),
    Case(
        "maxpool2d_overlap",
        lambda: L.MaxPooling2D(3, strides=2),
        (2, 7, 7, 1),
        0,
        distinct=True,
    ),
    Case(
        "maxpool2d_rect_same",
        lambda: L.MaxPooling2D((2, 3), strides=(1, 2), padding="same"),
        (2, 4, 5, 2),
        0,
        distinct=True,
    ),
    Case("avgpool2d", lambda: L.AveragePooling2D(2), (2, 4, 6, 2), 0),
    Case("avgpool2d_same", lambda: L.AveragePooling2D(2, padding="same"), (2, 5, 3, 2), 0),
    Case("avgpool2d_overlap", lambda: L.AveragePooling2D(3, strides=1), (2, 4, 4, 1), 0),
    Case("sumpool2d", lambda: L.SumPooling2D(2), (2, 4, 4, 2), 0),
    Case("sumpool2d_same_overlap", lambda: L.SumPooling2D(3, 2, padding="same"), (2, 5, 4, 1), 0),
    # 1D pooling
    Case("maxpool1d", lambda: L.MaxPooling1D(2), (2, 8, 2), 0, distinct=True),
    Case(
        "maxpool1d_same_overlap",
        lambda: L.MaxPooling1D(3, strides=2, padding="same"),
        (2, 8, 2),
        0,
        distinct=True,
    ),
    Case("avgpool1d", lambda: L.AveragePooling1D(3), (2, 9, 2), 0),
    Case("avgpool1d_same", lambda: L.AveragePooling1D(2, padding="same"), (2, 7, 2), 0),
    # global pooling
    Case("global_maxpool2d", lambda: L.GlobalMaxPooling2D(), (2, 3, 4, 2), 0, distinct=True),
    Case("global_avgpool2d", lambda: L.GlobalAveragePooling2D(), (2, 3, 4, 2), 0),
    Case("global_maxpool1d", lambda: L.GlobalMaxPooling1D(), (2, 5, 3), 0, distinct=True),
    Case("global_avgpool1d", lambda: L.GlobalAveragePooling1D(), (2, 5, 3), 0),
    # 3D convolution and pooling on (N, Z, H, W, D) volumes: kernel (Fz, Fh, Fw, D, K)
    Case("conv3d", lambda: L.Conv3D(2, 2), (2, 3, 3, 3, 2), (2 * 2 * 2 * 2 + 1) * 2),
    Case(
        "conv3d_stride2_same",
        lambda: L.Conv3D(2, 3, strides=2, padding="same"),
        (1, 3, 4, 3, 1),
        (27 * 1 + 1) * 2,
    ),
    Case(
        "conv3d_pads_dilation_tanh_no_bias",
        lambda: L.Conv3D(
            2,
            (1, 2, 2),
            padding=((0, 1), (1, 0), (1, 1)),
            dilation_rate=(1, 2, 1),
            activation="tanh",
            use_bias=False,
        ),
        (2, 2, 4, 3, 2),
        1 * 2 * 2 * 2 * 2,
    ),
    Case("maxpool3d", lambda: L.MaxPooling3D(2), (2, 2, 4, 4, 2), 0, distinct=True),
    Case(
        "maxpool3d_same_overlap",
        lambda: L.MaxPooling3D((1, 3, 2), strides=(1, 2, 1), padding="same"),
        (1, 2, 5, 4, 2),
        0,
        distinct=True,
    ),
    Case("avgpool3d", lambda: L.AveragePooling3D(2), (2, 2, 2, 4, 2), 0),
    Case("avgpool3d_same", lambda: L.AveragePooling3D(2, padding="same"), (1, 3, 3, 3, 2), 0),
    Case("global_maxpool3d", lambda: L.GlobalMaxPooling3D(), (2, 2, 3, 2, 2), 0, distinct=True),
    Case("global_avgpool3d", lambda: L.GlobalAveragePooling3D(), (2, 2, 3, 2, 2), 0),
    # reshaping: upsampling, zero padding, cropping (no weights)
    Case("upsampling1d", lambda: L.UpSampling1D(3), (2, 4, 2), 0),
    Case("upsampling2d", lambda: L.UpSampling2D((2, 1)), (2, 3, 3, 2), 0),
    Case(
        "upsampling2d_bilinear",
        lambda: L.UpSampling2D(2, interpolation="bilinear"),
        (2, 3, 2, 2),
        0,
    ),
    Case("upsampling3d", lambda: L.UpSampling3D((1, 2, 2)), (1, 2, 2, 3, 2), 0),
    Case("zeropadding1d", lambda: L.ZeroPadding1D((1, 2)), (2, 4, 2), 0),
    Case("zeropadding2d", lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (2, 3, 3, 2), 0),
    Case("zeropadding3d", lambda: L.ZeroPadding3D(1), (1, 2, 2, 2, 2), 0),
    Case("cropping1d", lambda: L.Cropping1D(), (2, 5, 2), 0),
    Case("cropping2d", lambda: L.Cropping2D(((1, 0), (0, 2))), (2, 4, 5, 2), 0),
    Case("cropping3d", lambda: L.Cropping3D((1, 0, 1)), (1, 3, 3, 4, 2), 0),
    # spatial dropout: whole channels, seeded (the clone draws the same masks)
    Case(
        "spatial_dropout1d_training",
        lambda: L.SpatialDropout1D(0.4, seed=3),
        (4, 5, 3),
        0,
        training=True,
    ),
    Case(
        "spatial_dropout2d_training",
        lambda: L.SpatialDropout2D(0.5, seed=4),
        (4, 3, 3, 4),
        0,
        training=True,
    ),
    Case("spatial_dropout2d_inference", lambda: L.SpatialDropout2D(0.5, seed=4), (2, 3, 3, 2), 0),
    Case(
        "spatial_dropout3d_training",
        lambda: L.SpatialDropout3D(0.3, seed=5),
        (3, 2, 2, 2, 3),
        0,
        training=True,
    ),
    # ResidualBlock: conv1 3x3xDxK, conv2 3x3xKxK (no biases), 4K per batch norm; + D*K + 4K with
    # the projection shortcut
    Case("residual_identity", lambda: L.ResidualBlock(3), (2, 4, 4, 3), 81 + 12 + 81 + 12),
    Case(
        "residual_projection_training",
        lambda: L.ResidualBlock(3, strides=2),
        (3, 5, 4, 2),
        54 + 12 + 81 + 12 + 6 + 12,
        training=True,
    ),
    # preprocessing layers (Normalization: mean and variance, one each per kept index)
    Case("rescaling", lambda: L.Rescaling(1 / 255), (2, 3, 4, 2), 0),
    Case("rescaling_per_channel", lambda: L.Rescaling([0.5, 2.0], offset=-1.0), (2, 3, 3, 2), 0),
    Case(
        "normalization",
        lambda: L.Normalization(mean=[0.5, -1.0], variance=[4.0, 0.25]),
        (2, 3, 3, 2),
        4,
    ),
    Case("normalization_pixels", lambda: L.Normalization(axis=(1, 2)), (2, 3, 2, 2), 12),
    Case(
        "normalization_invert",
        lambda: L.Normalization(axis=1, mean=0.2, variance=2.0, invert=True),
        (3, 4),
        8,
    ),
    Case("resizing", lambda: L.Resizing(5, 3), (2, 3, 4, 2), 0),
    Case(
        "resizing_nearest_crop",
        lambda: L.Resizing(2, 3, interpolation="nearest", crop_to_aspect_ratio=True),
        (2, 5, 4, 1),
        0,
    ),
    Case("center_crop", lambda: L.CenterCrop(2, 3), (2, 5, 4, 2), 0),
    Case("center_crop_smaller_input", lambda: L.CenterCrop(6, 2), (2, 3, 4, 1), 0),
    # augmentation layers: random with training=True (seeded, so the clone draws the same)
    Case("random_flip_training", lambda: L.RandomFlip(seed=3), (4, 3, 4, 2), 0, training=True),
    Case("random_flip_inference", lambda: L.RandomFlip("horizontal", seed=3), (2, 3, 4, 2), 0),
    Case(
        "random_rotation_training",
        lambda: L.RandomRotation(0.3, seed=1),
        (2, 4, 5, 2),
        0,
        training=True,
    ),
    Case(
        "random_rotation_constant_nearest",
        lambda: L.RandomRotation(
            (-0.5, 0.2), fill_mode="constant", interpolation="nearest", fill_value=0.5, seed=2
        ),
        (2, 4, 4, 1),
        0,
        training=True,
    ),
    Case(
        "random_translation_training",
        lambda: L.RandomTranslation(0.3, (-0.2, 0.4), fill_mode="wrap", seed=4),
        (2, 5, 4, 2),
        0,
        training=True,
    ),
    Case(
        "random_zoom_training",
        lambda: L.RandomZoom(0.4, fill_mode="nearest", seed=5),
        (2, 4, 5, 1),
        0,
        training=True,
    ),
    Case("random_zoom_inference", lambda: L.RandomZoom((-0.3, 0.2), 0.5), (2, 4, 5, 1), 0),
    Case(
        "random_crop_training", lambda: L.RandomCrop(3, 2, seed=6), (2, 5, 4, 2), 0, training=True
    ),
    Case("random_crop_inference", lambda: L.RandomCrop(3, 2, seed=6), (2, 5, 4, 2), 0),
    Case(
        "random_contrast_training",
        lambda: L.RandomContrast(0.5, value_range=(-2, 2), seed=7),
        (3, 3, 4, 2),
        0,
        training=True,
    ),
    Case(
        "random_brightness_training",
        lambda: L.RandomBrightness((-0.2, 0.1), value_range=(-1.5, 1.5), seed=8),
        (3, 3, 3, 2),
        0,
        training=True,
    ),
]


def make_input(case: Case, seed: int = 0) -> np.ndarray:
    """float32 input; with ``distinct``: +-k * step for k = 1..size, so no two values are closer
    than step = 2 / size (>= 0.01 here) and none is closer than step to 0."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(case.shape))
    if case.distinct:
        k = np.arange(1, size + 1)
        values = k * (2.0 / size) * np.where(k % 2, 1.0, -1.0)
        return rng.permutation(values).reshape(case.shape).astype(np.float32)
    return rng.uniform(-1, 1, size=case.shape).astype(np.float32)


def random_weights(layer, rng) -> list[np.ndarray]:
    """New values for every weight (positive for BatchNormalization's moving variance)."""
    out = []
    for name, w in zip(layer.weight_names, layer.weights, strict=True):
        new = rng.normal(size=w.shape)
        if name.endswith("moving_variance"):
            new = np.abs(new) + 0.5
        if name == "variance":  # Normalization
            new = np.abs(new) + 0.5
        out.append(new.astype(np.float32))
    return out


# Merge layers take a list of inputs and return a list of gradients, so this single-input contract
# does not fit them: tests/layers/test_merge.py checks them (oracle, gradients, config, errors).
MULTI_INPUT = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}


def test_every_layer_class_has_a_contract_case():
    covered = {type(case.make()).__name__ for case in CASES}
    assert covered == set(L.LAYER_CLASSES) - MULTI_INPUT


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_contract(case: Case):
    rng = np.random.default_rng(42)
    x = make_input(case)
    layer = case.make()
    cls = type(layer)
    assert cls.__name__ in L.LAYER_CLASSES

    # ---- build and output shape --------------------------------------------------------------
    assert not layer.built and layer.weights == [] and layer.output_shape is None
    layer.build(x.shape[1:])
    assert layer.built
    assert layer.input_shape == (None, *x.shape[1:])
    if layer.weights:  # fresh random weights, so that zero biases / unit gammas hide nothing
        layer.set_weights(random_weights(layer, rng))

    # ---- config round trip (JSON-serialisable), before any call so both see the same RNG ----
    config = json.loads(json.dumps(layer.get_config()))
    clone = cls.from_config(config)
    assert type(clone) is cls
    clone.build(x.shape[1:])
    assert clone.get_config() == layer.get_config()
    clone.set_weights(layer.get_weights())

    y = layer(x, training=case.training)
    assert layer.output_shape == (None, *y.shape[1:])
    assert y.shape[0] == x.shape[0]
    assert y.dtype == np.float32
    assert np.isfinite(y).all()

    y_clone = clone(x, training=case.training)
    np.testing.assert_array_equal(y_clone, y)
    for a, b in zip(clone.get_weights(), layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # includes BatchNormalization's updated statistics

    # float64 data into a float32 layer still gives float32
    assert layer(x.astype(np.float64), training=case.training).dtype == np.float32
    y = layer(x, training=case.training)

    # ---- backward --------------------------------------------------------------------------
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    assert dx.dtype == np.float32
    assert np.isfinite(dx).all()

    # grads aligned with weights
    assert len(layer.grads) == len(layer.weights) == len(layer.weight_names)
    untrained = UNTRAINED.get(cls.__name__, set())
    for name, w, g in zip(layer.weight_names, layer.weights, layer.grads, strict=True):
        if g is None:
            assert name in untrained, f"{case.id}: gradient of {name} is None"
            continue
        assert name not in untrained
        assert g.shape == w.shape, f"{case.id}: grad of {name} {g.shape} vs weight {w.shape}"
        assert g.dtype == np.float32
    for name in untrained.intersection(layer.weight_names):
        assert layer.grads[layer.weight_names.index(name)] is None

    # ---- get_weights returns copies ---------------------------------------------------------
    saved = layer.get_weights()
    reference = [w.copy() for w in layer.weights]
    assert len(saved) == len(layer.weights)
    for copy, live in zip(saved, layer.weights, strict=True):
        assert copy is not live and not np.shares_memory(copy, live)
        copy += 1.0
    for want, live in zip(reference, layer.weights, strict=True):
        np.testing.assert_array_equal(live, want)

    # ---- set_weights round trip ------------------------------------------------------------
    if layer.weights:
        new = [w.astype(np.float64) for w in random_weights(layer, rng)]
        layer.set_weights(new)
        for got, want in zip(layer.get_weights(), new, strict=True):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want.astype(np.float32))
        # the new weights are used (and the caller's arrays are not aliased)
        new[0] += 1.0
        assert not np.array_equal(layer.get_weights()[0], new[0].astype(np.float32))
        y_new = layer(x, training=case.training)
        assert not np.allclose(y_new, y)

    # wrong count / wrong shape name the layer
    name_re = re.escape(layer.name)
    with pytest.raises(ValueError, match=name_re):
        layer.set_weights([*layer.get_weights(), np.zeros(1, np.float32)])
    if layer.weights:
        with pytest.raises(ValueError, match=name_re):
            layer.set_weights(layer.get_weights()[:-1])
        bad = layer.get_weights()
        bad[0] = np.zeros(tuple(s + 1 for s in bad[0].shape), np.float32)
        with pytest.raises(ValueError, match=name_re + ".*" + re.escape(layer.weight_names[0])):
            layer.set_weights(bad)

    # ---- count_params -------------------------------------------------------------------------
    assert layer.count_params() == case.params
    assert layer.count_params() == sum(w.size for w in layer.get_weights())

    # ---- float64 numerical gradient check -----------------------------------------------------
    before = layer.get_weights()
    errors = gradcheck(layer, x.astype(np.float64), training=case.training)
    trained = [n for n in layer.weight_names if n not in untrained]
    assert set(errors) == {"dx", *trained}
    worst = {k: v for k, v in errors.items() if not v < GRADCHECK_TOL}
    assert not worst, f"{case.id}: gradient check errors {errors}"
    # gradcheck restores the layer: dtype and weights as before
    assert layer.dtype == np.float32
    for a, b in zip(layer.get_weights(), before, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert layer(x, training=case.training).dtype == np.float32


def test_gradcheck_catches_a_wrong_backward():
    """The gradient check used above is not vacuous: a broken backward fails it."""

    class BrokenDense(L.Dense):
        def backward(self, dy, from_logits=False):
            dx = super().backward(dy, from_logits)
            self.grads[0] = self.grads[0] * 1.01
            return dx * 0.99

    x = np.random.default_rng(0).normal(size=(3, 4))
    errors = gradcheck(BrokenDense(2), x)
    assert errors["dx"] > 1e-3 and errors["kernel"] > 1e-3 and errors["bias"] < 1e-6


def test_gradcheck_catches_one_wrong_entry():
    """A single wrong entry of dx (here: the first one dropped) is found, too."""

    class OneEntryWrong(L.Activation):
        def backward(self, dy, from_logits=False):
            dx = super().backward(dy, from_logits).copy()
            dx.flat[0] = 0.0
            return dx

    x = np.random.default_rng(1).normal(size=(3, 5))
    assert gradcheck(OneEntryWrong("tanh"), x)["dx"] > 1e-2
    assert gradcheck(L.Activation("tanh"), x)["dx"] < 1e-6

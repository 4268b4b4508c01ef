"""export_onnx of the layers and activations of issue 16: each case runs in ONNX Runtime like
``model.predict`` (float32: within 1e-5 of the output's scale)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_cases import example, max_diff, ort_predict, randomize  # noqa: E402

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import UnsupportedOnnxError, export_onnx, to_onnx  # noqa: E402

ACTIVATION_NAMES = [
    "gelu", "swish", "silu", "elu", "selu", "softplus", "leaky_relu", "hard_sigmoid", "softmax",
    "relu", "sigmoid", "tanh", "linear",
]  # fmt: skip


def _seq(shape, *layer_list):
    return slidenet.Sequential([L.Input(shape), *layer_list])


def _img(*layer_list, shape=(6, 5, 3)):
    return lambda: _seq(shape, *layer_list)


def _after_conv(*layer_list, shape=(6, 5, 2), filters=4):
    """Behind a Conv2D, so the layer reads a channels-first tensor inside the graph."""
    return lambda: _seq(shape, L.Conv2D(filters, 2, padding="same"), *layer_list)


def _ct(shape, k, **kw):
    return lambda: _seq(shape, L.Conv2DTranspose(3, k, **kw))


def _ct1(shape, k, **kw):
    return lambda: _seq(shape, L.Conv1DTranspose(3, k, **kw))


CASES = {
    # activation layers
    "leaky-relu": _after_conv(L.LeakyReLU(0.1)),
    "leaky-relu-default": _img(L.LeakyReLU()),
    "elu": _after_conv(L.ELU(0.7)),
    "prelu-full": _img(L.PReLU()),
    "prelu-channels-after-conv": _after_conv(L.PReLU(shared_axes=[1, 2])),
    "prelu-rows-after-conv": _after_conv(L.PReLU(shared_axes=2)),
    "prelu-dense": lambda: _seq((5,), L.Dense(4), L.PReLU()),
    "softmax-channels-after-conv": _after_conv(L.Softmax()),
    "softmax-rows": _after_conv(L.Softmax(axis=1)),
    "softmax-pixels": _after_conv(L.Softmax(axis=[1, 2])),
    "softmax-flat": lambda: _seq((6,), L.Softmax()),
    # normalisation
    "layernorm-channels": _after_conv(L.LayerNormalization(epsilon=1e-5)),
    "layernorm-example": _after_conv(L.LayerNormalization(axis=[1, 2, 3])),
    "layernorm-hw": _after_conv(L.LayerNormalization(axis=[1, 2])),
    "layernorm-no-affine": _img(L.LayerNormalization(center=False, scale=False)),
    "layernorm-scale-only": _img(L.LayerNormalization(center=False)),
    "layernorm-signal": lambda: _seq((7, 3), L.LayerNormalization()),
    "layernorm-flat": lambda: _seq((6,), L.LayerNormalization()),
    "groupnorm-2": _after_conv(L.GroupNormalization(2), filters=6),
    "groupnorm-instance": _after_conv(L.GroupNormalization(-1)),
    "groupnorm-1": _img(L.GroupNormalization(1, epsilon=1e-5)),
    "groupnorm-rows": _img(L.GroupNormalization(3, axis=1)),
    "groupnorm-signal": lambda: _seq((5, 4), L.GroupNormalization(2, center=False)),
    # transposed convolutions
    "convT-valid": _ct((4, 3, 2), 3),
    "convT-valid-s2": _ct((4, 3, 2), 3, strides=2),
    "convT-valid-s3-k2": _ct((3, 4, 2), 2, strides=3),  # stride > kernel: zeros + bias at the end
    "convT-valid-op": _ct((3, 3, 2), 3, strides=2, output_padding=1),
    "convT-same-s1": _ct((4, 5, 2), 4, padding="same"),
    "convT-same-s2": _ct((4, 3, 2), 3, strides=2, padding="same"),
    "convT-same-s2-k4": _ct((3, 4, 2), 4, strides=2, padding="same"),
    "convT-same-s3-k2": _ct((3, 3, 1), 2, strides=3, padding="same"),
    "convT-same-op": _ct((3, 4, 2), 3, strides=(2, 3), padding="same", output_padding=(0, 2)),
    "convT-int-pad-op": _ct((3, 3, 2), 3, strides=2, padding=1, output_padding=1),
    "convT-pair-pads": _ct((4, 4, 2), (3, 2), strides=2, padding=((1, 0), (0, 2))),
    "convT-dilation": _ct((4, 4, 2), 3, dilation_rate=2, padding="same"),
    "convT-relu-no-bias": _ct((4, 4, 2), 2, strides=2, activation="relu", use_bias=False),
    "convT-gelu": _ct((3, 3, 2), 3, activation="gelu"),
    "convT1d-valid": _ct1((5, 2), 3, strides=2),
    "convT1d-same": _ct1((5, 2), 4, strides=3, padding="same"),
    "convT1d-pair": _ct1((5, 2), 3, strides=2, padding=(2, 1), output_padding=1),
    # depthwise and separable
    "depthwise-valid": _img(L.DepthwiseConv2D(3)),
    "depthwise-same-s2-m2": _img(
        L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)
    ),
    "depthwise-dilation-swish": _img(L.DepthwiseConv2D(2, dilation_rate=2, activation="swish")),
    "depthwise-int-pad": _img(L.DepthwiseConv2D((2, 3), padding=1, use_bias=False)),
    "separable-valid": _img(L.SeparableConv2D(4, 3)),
    "separable-same-m2": _img(L.SeparableConv2D(3, 3, padding="same", depth_multiplier=2)),
    "separable-s2-no-bias": _img(
        L.SeparableConv2D(2, 2, strides=2, use_bias=False, activation="selu")
    ),
    # 3D
    "conv3d-valid": lambda: _seq((4, 5, 4, 2), L.Conv3D(3, 2)),
    "conv3d-same-s2": lambda: _seq((5, 4, 5, 2), L.Conv3D(3, 3, strides=2, padding="same")),
    "conv3d-dilation-elu": lambda: _seq(
        (5, 5, 5, 1), L.Conv3D(2, (2, 3, 2), dilation_rate=(2, 1, 1), activation="elu")
    ),
    "maxpool3d-same": lambda: _seq((5, 4, 5, 2), L.MaxPooling3D(2, padding="same")),
    "avgpool3d-same": lambda: _seq((5, 5, 4, 2), L.AveragePooling3D(3, 2, padding="same")),
    "global3d": lambda: _seq((3, 4, 5, 2), L.Conv3D(3, 2), L.GlobalAveragePooling3D()),
    "globalmax3d": lambda: _seq((3, 4, 5, 2), L.GlobalMaxPooling3D()),
    # resampling, padding, cropping, dropout
    "upsampling1d": lambda: _seq((5, 2), L.UpSampling1D(3)),
    "upsampling2d": _after_conv(L.UpSampling2D((2, 3))),
    "upsampling2d-bilinear": _img(L.UpSampling2D((3, 2), interpolation="bilinear")),
    "upsampling3d": lambda: _seq((2, 3, 2, 2), L.UpSampling3D((1, 2, 3))),
    "zeropadding1d": lambda: _seq((5, 2), L.ZeroPadding1D((2, 1))),
    "zeropadding2d": _after_conv(L.ZeroPadding2D(((1, 0), (2, 3)))),
    "zeropadding2d-last": _img(L.ZeroPadding2D(1)),
    "zeropadding3d": lambda: _seq((2, 3, 2, 2), L.ZeroPadding3D((1, 0, 2))),
    "cropping1d": lambda: _seq((6, 2), L.Cropping1D((2, 1))),
    "cropping2d": _after_conv(L.Cropping2D(((1, 2), (0, 1)))),
    "cropping3d": lambda: _seq((4, 5, 4, 2), L.Cropping3D(((1, 0), (1, 2), (0, 1)))),
    "spatialdropout": lambda: _seq(
        (6, 2), L.SpatialDropout1D(0.5), L.Conv1D(2, 2), L.Flatten(), L.Dense(3)
    ),
    "spatialdropout2d-3d": lambda: _seq(
        (3, 4, 4, 2), L.SpatialDropout3D(0.3), L.Reshape((12, 4, 2)), L.SpatialDropout2D(0.2)
    ),
    # preprocessing and augmentation (inference forms)
    "rescaling": _after_conv(L.Rescaling(1 / 255, offset=-0.5)),
    "rescaling-per-channel": _img(L.Rescaling([1.0, 2.0, -0.5], offset=[0.0, 1.0, 2.0])),
    "normalization": _img(L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0])),
    "normalization-all": _img(L.Normalization(axis=None, mean=0.5, variance=2.0)),
    "normalization-pixels-invert": _img(L.Normalization(axis=(1, 2), invert=True)),
    "resizing-up": _img(L.Resizing(9, 7)),
    "resizing-down": _img(L.Resizing(4, 3), shape=(9, 8, 2)),
    "resizing-odd": _img(L.Resizing(7, 3), shape=(3, 7, 2)),
    "resizing-nearest": _img(L.Resizing(10, 3, interpolation="nearest"), shape=(4, 7, 2)),
    "resizing-nearest-down": _img(L.Resizing(3, 5, interpolation="nearest"), shape=(8, 7, 1)),
    # ties of floor((o + 0.5) * n / n_out) that a Resize's float32 scale rounds the other way
    "resizing-nearest-ties": _img(L.Resizing(14, 9, interpolation="nearest"), shape=(24, 30, 1)),
    "resizing-nearest-aspect": _img(
        L.Resizing(4, 6, interpolation="nearest", crop_to_aspect_ratio=True), shape=(9, 8, 2)
    ),
    "resizing-aspect": _img(L.Resizing(4, 4, crop_to_aspect_ratio=True), shape=(6, 9, 2)),
    "centercrop": _after_conv(L.CenterCrop(3, 2)),
    "centercrop-small-image": _img(L.CenterCrop(8, 4), shape=(5, 6, 2)),
    "randomcrop": _img(L.RandomCrop(4, 3, seed=1)),
    "randomcrop-resize": _img(L.RandomCrop(3, 6, seed=1)),
    "augmentation-identity": _after_conv(
        L.RandomFlip(seed=1),
        L.RandomTranslation(0.2, 0.2, seed=1),
        L.RandomRotation(0.1, seed=1),
        L.RandomZoom(0.2, seed=1),
        L.RandomContrast(0.5, seed=1),
        L.RandomBrightness(0.5, seed=1),
        L.Conv2D(2, 2),
    ),
}
for _act in ACTIVATION_NAMES:  # on a wide range: hard_sigmoid's clipping, softplus' tails
    CASES[f"activation-{_act}"] = _after_conv(L.Rescaling(4.0), L.Activation(_act))
    CASES[f"dense-{_act}"] = lambda a=_act: _seq((5,), L.Dense(4, activation=a))


def _tol(want) -> float:
    return 1e-5 * max(1.0, float(np.abs(want).max()))


def _check(model, tmp_path, opset=17, n=3):
    x = 3 * example(model, n=n)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, opset=opset)
    want = model.predict(x, verbose=0)
    diff = max_diff(ort_predict(path, x), want)
    assert diff <= _tol(want), diff
    assert np.abs(want).max() > 1e-3  # the case computes something
    return diff


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_layer_runs_in_onnxruntime_like_slidenet(tmp_path, name):
    _check(randomize(CASES[name](), seed=2), tmp_path)


OPSET_CASES = [
    "activation-gelu",
    "layernorm-channels",
    "layernorm-signal",
    "groupnorm-2",
    "softmax-pixels",
    "resizing-up",
    "resizing-nearest",
    "upsampling2d-bilinear",
    "convT-same-op",
]


@pytest.mark.parametrize("opset", [13, 18, 21])
@pytest.mark.parametrize("name", OPSET_CASES)
def test_other_opsets(tmp_path, name, opset):
    """Opset 13: Reduce* axes as attributes, gelu through Erf, LayerNormalization decomposed;
    18: axes as inputs; 21: the Gelu operator."""
    _check(randomize(CASES[name](), seed=4), tmp_path, opset=opset)


def test_operators_chosen(tmp_path):
    def ops(name, opset=17):
        return [n.op_type for n in to_onnx(CASES[name](), opset).graph.node]

    assert ops("layernorm-channels") == ["Transpose", "Conv", "Transpose", "LayerNormalization"]
    assert "LayerNormalization" not in ops("layernorm-channels", 13)
    assert "LayerNormalization" not in ops("layernorm-hw")  # not the trailing axes
    assert "Erf" in ops("activation-gelu") and "Gelu" in ops("activation-gelu", 20)
    assert ops("depthwise-valid") == ["Transpose", "Conv", "Transpose"]
    assert ops("separable-valid") == ["Transpose", "Conv", "Conv", "Transpose"]
    assert ops("convT-same-s2") == ["Transpose", "ConvTranspose", "Transpose"]
    assert ops("augmentation-identity") == ["Transpose", "Conv", "Conv", "Transpose"]
    assert ops("prelu-channels-after-conv") == ["Transpose", "Conv", "PRelu", "Transpose"]
    assert ops("spatialdropout2d-3d").count("Dropout") == 2
    conv = to_onnx(CASES["depthwise-same-s2-m2"]()).graph.node[1]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["group"] == 3 and attrs["pads"] == [0, 1, 1, 1]
    node = to_onnx(CASES["convT-valid-s3-k2"]()).graph.node[1]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["output_padding"] == [1, 1] and attrs["pads"] == [0, 0, 0, 0]


def test_shared_layers_in_both_layouts(tmp_path):
    """One PReLU, ZeroPadding2D and Cropping2D called on an NHWC input and on a Conv2D output
    (channels-first inside the graph): each call gets constants of its own layout."""
    x = L.Input((5, 4, 3))
    prelu, pad, crop = L.PReLU(), L.ZeroPadding2D(((1, 0), (0, 2))), L.Cropping2D(((1, 0), (0, 1)))
    a = crop(pad(prelu(x)))
    b = crop(pad(prelu(L.Conv2D(3, 3, padding="same")(x))))
    model = slidenet.Model(x, L.Add()([a, b]))
    randomize(model, seed=5)
    _check(model, tmp_path)


def test_training_only_layers_do_not_change_inference(tmp_path):
    model = randomize(CASES["augmentation-identity"](), seed=6)
    proto = to_onnx(model)
    assert not {"RandomFlip", "RandomZoom"} & {n.op_type for n in proto.graph.node}
    _check(model, tmp_path)


class Doubler(L.Layer):
    def forward(self, x, training=False):
        return 2 * x


def test_layer_without_onnx_form_still_named_with_the_new_list(tmp_path):
    model = _seq((4, 4, 2), L.LayerNormalization(), Doubler(name="twice"))
    with pytest.raises(UnsupportedOnnxError, match=r"'twice' \(Doubler\) has no ONNX form") as e:
        export_onnx(model, tmp_path / "m.onnx")
    assert "Conv2DTranspose" in str(e.value) and "GroupNormalization" in str(e.value)

"""import_onnx of LeakyRelu, Elu, Selu, Softplus, HardSigmoid, PRelu, ConvTranspose, Pad and
Resize: slidenet's own exports round-trip (same layers, same predictions), hand-written NCHW
graphs predict like ONNX Runtime, and what has no layer is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import example, max_diff, ort_predict, randomize  # noqa: E402

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import UnsupportedOnnxError, export_onnx, import_onnx  # noqa: E402


def _seq(shape, *layer_list):
    return lambda: slidenet.Sequential([L.Input(shape), *layer_list])


def _conv(*layer_list, shape=(6, 5, 2)):
    return _seq(shape, L.Conv2D(3, 2, padding="same"), *layer_list)


ROUND_TRIP = {  # name -> (model builder, the layer types the import gives back)
    "leaky-relu": (_conv(L.LeakyReLU(0.25)), ["Conv2D", "LeakyReLU"]),
    "elu": (_seq((5, 4, 2), L.ELU(0.5)), ["ELU"]),
    "selu-fused": (_conv(L.Activation("selu")), ["Conv2D"]),
    "softplus-dense": (_seq((5,), L.Dense(3, activation="softplus")), ["Dense"]),
    "hard-sigmoid": (_seq((4, 4, 2), L.Activation("hard_sigmoid")), ["Activation"]),
    "prelu-full": (_seq((4, 3, 2), L.PReLU()), ["PReLU"]),
    "prelu-channels": (_conv(L.PReLU(shared_axes=[1, 2])), ["Conv2D", "PReLU"]),
    "prelu-dense": (_seq((5,), L.Dense(4), L.PReLU()), ["Dense", "PReLU"]),
    "convT-same-s2": (
        _seq((4, 3, 2), L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu")),
        ["Conv2DTranspose"],
    ),
    "convT-valid-s3-k2": (_seq((3, 3, 2), L.Conv2DTranspose(2, 2, strides=3)), ["Conv2DTranspose"]),
    "convT-pads-op": (
        _seq(
            (3, 4, 2),
            L.Conv2DTranspose(
                2,
                3,
                strides=2,
                padding=((1, 0), (0, 2)),
                output_padding=1,
                dilation_rate=1,
                use_bias=False,
            ),
        ),
        ["Conv2DTranspose"],
    ),  # fmt: skip
    "convT1d": (
        _seq((5, 2), L.Conv1DTranspose(3, 4, strides=2, padding="same")),
        ["Conv1DTranspose"],
    ),
    "zeropadding2d-after-conv": (
        _conv(L.ZeroPadding2D(((1, 0), (2, 1)))),
        ["Conv2D", "ZeroPadding2D"],
    ),
    "zeropadding1d": (_seq((5, 2), L.ZeroPadding1D((0, 2))), ["ZeroPadding1D"]),
    "zeropadding3d": (_seq((2, 3, 2, 1), L.ZeroPadding3D(1)), ["ZeroPadding3D"]),
    "upsampling2d": (_conv(L.UpSampling2D((2, 3))), ["Conv2D", "UpSampling2D"]),
    "upsampling2d-bilinear": (
        _seq((3, 4, 2), L.UpSampling2D(2, interpolation="bilinear")),
        ["UpSampling2D"],
    ),
    "upsampling1d": (_seq((4, 2), L.UpSampling1D(3)), ["UpSampling1D"]),
    "upsampling3d": (_seq((2, 2, 3, 1), L.UpSampling3D((2, 1, 2))), ["UpSampling3D"]),
    "resizing-bilinear": (_seq((5, 7, 2), L.Resizing(8, 3)), ["Resizing"]),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_import_of_export_gives_the_layers_back(tmp_path, name):
    build, kinds = ROUND_TRIP[name]
    model = randomize(build(), seed=3)
    x = 3 * example(model)
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    assert [type(layer).__name__ for layer in back.layers] == kinds
    assert back.output_shape == model.output_shape
    assert back.count_params() == model.count_params()
    want = model.predict(x, verbose=0)
    assert max_diff(back.predict(x, verbose=0), want) <= 1e-5 * max(1.0, np.abs(want).max())


# ----- hand-written NCHW graphs -----------------------------------------------------------------
def _graph(nodes, weights, in_shape, out_shape, opset=17):
    graph = helper.make_graph(
        nodes,
        "hand_made",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        [numpy_helper.from_array(np.asarray(w), k) for k, w in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check_like_ort(tmp_path, proto, in_shape, kinds=None, n=2):
    onnx.save(proto, str(tmp_path / "g.onnx"))
    x = np.random.default_rng(0).normal(0, 2, (n, *in_shape)).astype(np.float32)
    want = ort_predict(tmp_path / "g.onnx", x)
    model = import_onnx(tmp_path / "g.onnx")
    got = model.predict(x.transpose(0, *range(2, x.ndim), 1), verbose=0)
    got = got.transpose(0, got.ndim - 1, *range(1, got.ndim - 1))  # NHWC -> NCHW
    assert max_diff(got, want) <= 1e-5 * max(1.0, float(np.abs(want).max()))
    if kinds is not None:
        assert [type(layer).__name__ for layer in model.layers] == kinds
    return model


def test_nchw_prelu_with_one_slope_per_channel_and_torch_style_pads(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
        helper.make_node("PRelu", ["p", "slope"], ["a"]),
        helper.make_node(
            "ConvTranspose",
            ["a", "w", "b"],
            ["c"],
            strides=[2, 2],
            pads=[1, 0, 0, 1],
            output_padding=[1, 0],
        ),  # fmt: skip
        helper.make_node("LeakyRelu", ["c"], ["d"], alpha=0.1),
        helper.make_node("HardSigmoid", ["d"], ["y"], alpha=1 / 6, beta=0.5),
    ]
    weights = {
        "pads": np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64),
        "slope": rng.uniform(0, 0.5, (3, 1, 1)).astype(np.float32),
        "w": rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32),
        "b": rng.normal(0, 0.5, 2).astype(np.float32),
    }
    # input 3x4x5 -> pad 5x8 -> convT: (5 - 1)*2 + 3 - 1 - 0 + 1 = 11, (8 - 1)*2 + 3 - 0 - 1 = 16
    proto = _graph(nodes, weights, (3, 4, 5), (2, 11, 16))
    model = _check_like_ort(tmp_path, proto, (3, 4, 5))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["ZeroPadding2D", "PReLU", "Conv2DTranspose", "LeakyReLU", "Activation"]
    assert model.layers[1].alpha.shape == (1, 1, 3)


@pytest.mark.parametrize(
    "coords, rounding",
    [
        ("asymmetric", "floor"),
        ("half_pixel", "round_prefer_floor"),
        ("half_pixel", "round_prefer_ceil"),
    ],
)
def test_nearest_resize_modes_that_repeat_cells_are_upsampling(tmp_path, coords, rounding):
    nodes = [
        helper.make_node(
            "Resize", ["x", "", "scales"], ["y"], mode="nearest",
            coordinate_transformation_mode=coords, nearest_mode=rounding,
        )
    ]  # fmt: skip
    weights = {"scales": np.array([1, 1, 2, 3], np.float32)}
    proto = _graph(nodes, weights, (2, 3, 4), (2, 6, 12))
    _check_like_ort(tmp_path, proto, (2, 3, 4), kinds=["UpSampling2D"])


def test_resize_by_sizes_to_a_resizing_layer(tmp_path):
    nodes = [
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear"),
        helper.make_node("Elu", ["y"], ["z"], alpha=0.3),
        helper.make_node("Softplus", ["z"], ["s"]),
        helper.make_node("Selu", ["s"], ["y2"]),
        helper.make_node("Identity", ["y2"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2, 7, 3])],
        [numpy_helper.from_array(np.array([1, 2, 7, 3], np.int64), "sizes")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = _check_like_ort(tmp_path, proto, (2, 5, 4), n=1)  # sizes [1, ...]: one example
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Resizing", "ELU", "Activation", "Activation"]


REFUSED = {
    "hard-sigmoid-keras2": (
        helper.make_node("HardSigmoid", ["x"], ["y"]),
        {},
        r"alpha=0\.2.*relu6",
    ),
    "selu-other-alpha": (helper.make_node("Selu", ["x"], ["y"], alpha=1.0), {}, "selu"),
    "reflect-pad": (
        helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect"),
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)},
        "reflect",
    ),
    "channel-pad": (
        helper.make_node("Pad", ["x", "pads"], ["y"]),
        {"pads": np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64)},
        "spatial axes",
    ),
    "cubic": (
        helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic"),
        {"scales": np.array([1, 1, 2, 2], np.float32)},
        "cubic",
    ),
    "align-corners": (
        helper.make_node(
            "Resize",
            ["x", "", "scales"],
            ["y"],
            mode="linear",
            coordinate_transformation_mode="align_corners",
        ),
        {"scales": np.array([1, 1, 2, 2], np.float32)},
        "align_corners",
    ),  # fmt: skip
    "grouped-convT": (
        helper.make_node("ConvTranspose", ["x", "w"], ["y"], group=2),
        {"w": np.ones((2, 1, 2, 2), np.float32)},
        "group=2",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_has_no_layer_is_refused_by_node(tmp_path, name):
    node, weights, match = REFUSED[name]
    node.name = f"the_{name}"
    proto = _graph([node], weights, (2, 3, 4), (2, 3, 4))
    with pytest.raises(UnsupportedOnnxError, match=f"the_{name}.*{match}"):
        import_onnx(proto)


def test_pytorch_export_imports_and_predicts_like_torch(tmp_path):
    """torch's own ONNX export (TorchScript exporter) of PReLU, ConvTranspose, LeakyReLU, Upsample
    (nearest and bilinear), ELU, SELU, Softplus and Hardsigmoid, against a float64 torch."""
    torch = pytest.importorskip("torch")
    from test_onnx_torch import torch_export, torch_vs_slidenet

    nn = torch.nn
    torch.manual_seed(0)
    nets = [
        (
            nn.Sequential(
                nn.Conv2d(2, 4, 3),
                nn.PReLU(4),
                nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                nn.LeakyReLU(0.1),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ELU(0.5),
                nn.Upsample(scale_factor=2, mode="bilinear"),
                nn.SELU(),
                nn.Softplus(),
                nn.Hardsigmoid(),
            ).eval(),
            (2, 6, 5),
            [
                "Conv2D",
                "PReLU",
                "Conv2DTranspose",
                "LeakyReLU",
                "UpSampling2D",
                "ELU",
                "UpSampling2D",
                "Activation",
                "Activation",
                "Activation",
            ],
        ),  # fmt: skip
        (
            nn.Sequential(
                nn.Conv1d(2, 3, 3), nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1), nn.PReLU()
            ).eval(),
            (2, 9),
            ["Conv1D", "Conv1DTranspose", "PReLU"],
        ),
    ]
    for i, (net, shape, kinds) in enumerate(nets):
        if not torch_export(net, tmp_path / f"{i}.onnx", shape):
            pytest.skip("torch.onnx.export (TorchScript exporter) is not available")
        model = import_onnx(tmp_path / f"{i}.onnx")
        assert [type(layer).__name__ for layer in model.layers] == kinds
        assert torch_vs_slidenet(net, model, shape) <= 1e-5

"""import_onnx: slidenet's own files round-trip; hand-written NCHW graphs import and predict like
ONNX Runtime; unsupported and malformed files give clear errors; imported models train."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import CASES, TOL, build, example, max_diff, ort_predict, randomize  # noqa: E402

import slidenet  # noqa: E402
from slidenet.interop import (  # noqa: E402
    OnnxFileError,
    UnsupportedOnnxError,
    export_onnx,
    import_onnx,
)
from slidenet.models.saving import ModelFileError  # noqa: E402


@pytest.mark.parametrize("name", sorted(CASES))
def test_import_of_export_predicts_like_the_original(tmp_path, name):
    model = build(name)
    x = example(model)
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    assert back.input_shape == model.input_shape and back.output_shape == model.output_shape
    assert back.count_params() == model.count_params()
    assert max_diff(back.predict(x), model.predict(x)) <= TOL


@pytest.mark.parametrize("name", ["vgg_small", "resnet_small", "keyword_scanner"])
def test_applications_round_trip(tmp_path, name):
    model = randomize(getattr(slidenet.applications, name)(), seed=4)
    x = example(model, n=2)
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    assert [layer.name for layer in back.layers if layer.weights] == [
        layer.name for layer in model.layers if layer.weights
    ]
    assert max_diff(back.predict(x), model.predict(x)) <= TOL


# ----- graphs written by hand, NCHW as other frameworks write them ------------------------------
def _model(nodes, weights, in_shape, out_shape, opset=17):
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(
            w if isinstance(w, np.ndarray) else rng.normal(0, 0.5, w).astype(np.float32), k
        )
        for k, w in weights.items()
    ]
    graph = helper.make_graph(
        nodes,
        "hand_made",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check_nchw(proto, path, in_shape):
    onnx.save(proto, str(path))
    model = import_onnx(path)
    x = np.random.default_rng(1).normal(size=(3, *in_shape)).astype(np.float32)
    want = ort_predict(path, x)
    got = model.predict(np.moveaxis(x, 1, -1))
    if got.ndim > 2:
        got = np.moveaxis(got, -1, 1)
    assert max_diff(got, want) <= TOL
    return model


N = helper.make_node


def test_same_upper_conv_global_pool_squeeze_gemm(tmp_path):
    nodes = [
        N("Conv", ["x", "w", "b"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        N("Relu", ["c"], ["r"]),
        N("GlobalAveragePool", ["r"], ["g"]),
        N("Squeeze", ["g", "axes"], ["s"]),
        N("Gemm", ["s", "fc", "fb"], ["z"], transB=1, alpha=0.5, beta=2.0),
        N("Softmax", ["z"], ["y"], axis=-1),
    ]
    weights = {"w": (4, 2, 3, 3), "b": (4,), "axes": np.array([2, 3]), "fc": (3, 4), "fb": (3,)}
    model = _check_nchw(_model(nodes, weights, [2, 8, 7], [3]), tmp_path / "m.onnx", (2, 8, 7))
    conv = model.layers[0]
    assert (conv.padding, conv.activation, model.layers[-1].activation) == (
        "same",
        "relu",
        "softmax",
    )


def test_reshape_matmul_add_and_batchnorm_of_nchw_features(tmp_path):
    """Flattening NCHW orders features C, H, W: the MatMul rows and the BN are reordered."""
    nodes = [
        N("Conv", ["x", "w"], ["c"], pads=[1, 0, 0, 2], dilations=[1, 2]),
        N("Reshape", ["c", "shape"], ["f"]),
        N("BatchNormalization", ["f", "g", "be", "m", "v"], ["n"], epsilon=0.01),
        N("Dropout", ["n", "ratio"], ["d"]),
        N("Identity", ["d"], ["i"]),
        N("MatMul", ["i", "k"], ["mm"]),
        N("Add", ["mm", "kb"], ["a"]),
        N("Sigmoid", ["a"], ["y"]),
    ]
    v = np.random.default_rng(3).uniform(0.5, 1.5, 3 * 5 * 4).astype(np.float32)
    weights = {
        "w": (3, 2, 2, 2), "shape": np.array([-1, 60]), "g": (60,), "be": (60,), "m": (60,),
        "v": v, "ratio": np.array(0.25, np.float32), "k": (60, 4), "kb": (4,),
    }  # fmt: skip
    model = _check_nchw(_model(nodes, weights, [2, 5, 4], [4]), tmp_path / "m.onnx", (2, 5, 4))
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["Conv2D", "Flatten", "BatchNormalization", "Dropout", "Dense"]
    assert model.layers[0].padding == ((1, 0), (0, 2)) and model.layers[3].rate == 0.25


def test_reduce_max_pools_and_signals(tmp_path):
    nodes = [
        N("Conv", ["x", "w", "b"], ["c"], auto_pad="SAME_LOWER", kernel_shape=[4]),
        N("Tanh", ["c"], ["t"]),
        N("AveragePool", ["t"], ["p"], kernel_shape=[2], strides=[2]),
        N("MaxPool", ["p"], ["q"], kernel_shape=[3], strides=[1], pads=[1, 1]),
        N("ReduceMax", ["q"], ["r"], axes=[2], keepdims=1),
        N("Flatten", ["r"], ["y"]),
    ]
    weights = {"w": (5, 3, 4), "b": (5,)}
    model = _check_nchw(
        _model(nodes, weights, [3, 10], [5], opset=13), tmp_path / "m.onnx", (3, 10)
    )
    assert model.layers[0].padding == (2, 1)  # SAME_LOWER: the extra cell at the start


# ----- errors -------------------------------------------------------------------------------------
def _save(proto, path):
    onnx.save(proto, str(path))
    return path


def test_unsupported_ops_are_listed(tmp_path):
    nodes = [N("Sin", ["x"], ["a"], name="sine"), N("Erf", ["a"], ["y"], name="erf_1")]
    path = _save(_model(nodes, {}, [4], [4]), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOnnxError, match=r"2 node\(s\).*Sin 'sine', Erf 'erf_1'"):
        import_onnx(path)


@pytest.mark.parametrize(
    "nodes, weights, in_shape, out_shape, match",
    [
        (
            [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
            {}, [1, 8, 8], [1, 4, 4], r"MaxPool node 'y': pads \[1, 1, 1, 1\] are neither",
        ),
        (
            [N("Conv", ["x", "w"], ["y"], group=2)],
            {"w": (2, 1, 3)}, [2, 5], [2, 3], r"Conv node 'y': group=2 on a 1D convolution",
        ),
        (
            [N("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])],
            {}, [1, 4, 5], [1, 5, 4], r"perm \[0, 1, 3, 2\] is not a change between NHWC and NCHW",
        ),
        (
            [N("Conv", ["x", "w"], ["c"]), N("Add", ["c", "bias"], ["y"])],
            {"w": (2, 1, 3, 3), "bias": (1,)}, [1, 5, 5], [2, 3, 3],
            r"Add node 'y': an Add of a constant .* has no slidenet layer",
        ),
        (
            [N("Conv", ["x", "w"], ["c"]), N("Flatten", ["c"], ["y"])],
            {"w": (2, 1, 3, 3)}, [1, 5, 5], [18], r"flattened NCHW tensor",
        ),
    ],
)  # fmt: skip
def test_structures_without_a_slidenet_form(tmp_path, nodes, weights, in_shape, out_shape, match):
    path = _save(_model(nodes, weights, in_shape, out_shape), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOnnxError, match=match):
        import_onnx(path)


def test_malformed_files(tmp_path):
    good = tmp_path / "good.onnx"
    export_onnx(build("conv-relu"), good)
    data = good.read_bytes()
    cases = {
        "garbage.onnx": b"\x07this is not protobuf\xff\xfe" * 20,
        "truncated.onnx": data[: len(data) // 2],
        "empty.onnx": b"",
        "model.slidenet": b"PK\x03\x04" + b"\x00" * 100,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(OnnxFileError, match=rf"'.*{name}' (is not an ONNX|holds no ONNX)"):
            import_onnx(tmp_path / name)
    assert issubclass(OnnxFileError, ModelFileError) and issubclass(OnnxFileError, ValueError)
    broken = _model([N("Relu", ["nowhere"], ["y"])], {}, [4], [4])
    with pytest.raises(OnnxFileError, match="is not a valid ONNX model"):
        import_onnx(_save(broken, tmp_path / "broken.onnx"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


def test_imported_model_summarises_and_fine_tunes(tmp_path, capsys):
    model = slidenet.applications.lenet5((28, 28, 1))
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    back.summary()
    assert "Total params: 61,706" in capsys.readouterr().out
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    y = np.arange(8) % 10
    back.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = back.get_weights()
    history = back.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, back.get_weights(), strict=True))

"""import_onnx of general graphs written by hand in NCHW, as other frameworks write them: merges,
concatenations, shared initializers, several inputs and outputs; and the errors of the graphs
slidenet cannot express."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import TOL, max_diff  # noqa: E402
from onnx_graph_cases import ort_run, predict  # noqa: E402

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import UnsupportedOnnxError, import_onnx  # noqa: E402

N = helper.make_node


def _graph(nodes, weights, inputs, outputs, opset=17):
    """A ModelProto; ``inputs`` / ``outputs``: {name: per-example dims} (the batch is 'N')."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(
            w if isinstance(w, np.ndarray) else rng.normal(0, 0.5, w).astype(np.float32), k
        )
        for k, w in weights.items()
    ]

    def info(name, dims):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *dims])

    graph = helper.make_graph(
        nodes,
        "hand_made_graph",
        [info(k, v) for k, v in inputs.items()],
        [info(k, v) for k, v in outputs.items()],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _nhwc(a):
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def _check(proto, path, seed=1):
    """Import, then compare with ONNX Runtime on NCHW inputs (slidenet gets them in NHWC)."""
    onnx.save(proto, str(path))
    model = import_onnx(path)
    rng = np.random.default_rng(seed)
    xs = [
        rng.normal(size=(3, *[d.dim_value for d in i.type.tensor_type.shape.dim[1:]])).astype(
            np.float32
        )
        for i in proto.graph.input
        if i.name not in {t.name for t in proto.graph.initializer}
    ]
    want = ort_run(path, xs)
    got = predict(model, [_nhwc(x) for x in xs])
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert max_diff(_nhwc(w), g) <= TOL
    return model


def test_elementwise_merges_of_nchw_branches(tmp_path):
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
        N("Conv", ["x", "w2"], ["b"]),
        N("Tanh", ["b"], ["tb"]),
        N("Conv", ["x", "w3", "b3"], ["c"], pads=[1, 1, 1, 1]),
        N("Sum", ["a", "tb", "c"], ["s"]),
        N("Sub", ["s", "a"], ["d"]),
        N("Mul", ["d", "c"], ["m"]),
        N("Max", ["m", "a", "tb"], ["mx"]),
        N("Min", ["mx", "s"], ["mn"]),
        N("Mean", ["mn", "a", "c"], ["y"]),
    ]
    weights = {"w1": (3, 2, 3, 3), "b1": (3,), "w2": (3, 2, 1, 1), "w3": (3, 2, 3, 3), "b3": (3,)}
    model = _check(_graph(nodes, weights, {"x": [2, 5, 4]}, {"y": [3, 5, 4]}), tmp_path / "m.onnx")
    assert isinstance(model, slidenet.Model)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"} <= kinds
    assert model.get_layer("conv_1").activation == "tanh"  # a Tanh of one branch is fused


def test_concat_of_nchw_images_and_of_flattened_features(tmp_path):
    nodes = [
        N("Conv", ["x", "w1"], ["a"]),
        N("Conv", ["x", "w2", "b2"], ["b"]),
        N("Concat", ["a", "b"], ["ch"], axis=1),  # channels
        N("Concat", ["ch", "ch"], ["rows"], axis=2),  # rows: NCHW axis 2 is NHWC axis 1
        N("Relu", ["rows"], ["r"]),
        N("Flatten", ["r"], ["f1"]),
        N("Flatten", ["a"], ["f2"]),
        N("Concat", ["f1", "f2"], ["f"], axis=-1),  # two CHW feature orders, one after the other
        N("Gemm", ["f", "fc", "fb"], ["y"], transB=1),
        N("Concat", ["x"], ["same_x"], axis=1),  # one input: the identity
        N("Concat", ["same_x", "x"], ["cols"], axis=-1),
    ]
    weights = {"w1": (2, 3, 3, 3), "w2": (1, 3, 3, 3), "b2": (1,), "fc": (4, 3 * 4 * 2 + 2 * 2 * 2)}
    weights["fb"] = (4,)
    proto = _graph(nodes, weights, {"x": [3, 4, 4]}, {"y": [4], "cols": [3, 4, 8]})
    model = _check(proto, tmp_path / "m.onnx")
    axes = [layer.axis for layer in model.layers if isinstance(layer, L.Concatenate)]
    assert axes == [-1, 1, -1, 2]


def test_shared_initializers_become_one_shared_layer(tmp_path):
    """Two Conv nodes and two Gemm nodes reading the same weights: one Conv2D and one Dense,
    each called twice (a siamese network with two inputs and two outputs)."""
    nodes = [
        N("Conv", ["a", "w", "b"], ["ca"], pads=[1, 1, 1, 1], name="enc_a"),
        N("Conv", ["b_in", "w", "b"], ["cb"], pads=[1, 1, 1, 1], name="enc_b"),
        N("Relu", ["ca"], ["ra"]),
        N("Relu", ["cb"], ["rb"]),
        N("GlobalAveragePool", ["ra"], ["ga"]),
        N("GlobalAveragePool", ["rb"], ["gb"]),
        N("Flatten", ["ga"], ["fa"]),
        N("Flatten", ["gb"], ["fb"]),
        N("Gemm", ["fa", "k", "kb"], ["ea"], transB=1, name="head_a"),
        N("Gemm", ["fb", "k", "kb"], ["eb"], transB=1, name="head_b"),
        N("Sub", ["ea", "eb"], ["diff"]),
        N("Mul", ["ea", "eb"], ["prod"]),
    ]
    weights = {"w": (4, 1, 3, 3), "b": (4,), "k": (3, 4), "kb": (3,)}
    proto = _graph(nodes, weights, {"a": [1, 6, 6], "b_in": [1, 6, 6]}, {"diff": [3], "prod": [3]})
    model = _check(proto, tmp_path / "m.onnx")
    assert [t.name for t in model.inputs] == ["a", "b_in"]
    convs = [layer for layer in model.layers if isinstance(layer, L.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    assert [layer.name for layer in convs + dense] == ["enc_a", "head_a"]
    assert convs[0].activation == "relu"  # both calls are followed by Relu: fused
    calls = [node.layer for node in model._nodes]
    assert calls.count(convs[0]) == 2 and calls.count(dense[0]) == 2
    assert model.count_params() == 4 * 9 + 4 + 12 + 3


def test_shared_conv_followed_by_different_activations_keeps_them_apart(tmp_path):
    nodes = [
        N("Conv", ["x", "w"], ["c1"], name="conv"),
        N("Relu", ["c1"], ["r"]),
        N("Conv", ["r", "w"], ["c2"], name="conv_again"),
        N("Sigmoid", ["c2"], ["y"]),
    ]
    model = _check(
        _graph(nodes, {"w": (2, 2, 1, 1)}, {"x": [2, 3, 3]}, {"y": [2, 3, 3]}), tmp_path / "m.onnx"
    )
    conv = model.get_layer("conv")
    assert conv.activation == "linear"
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Conv2D",
        "Activation",
        "Activation",
    ]


def test_chain_is_a_sequential_and_a_branchy_graph_a_model(tmp_path):
    chain = [N("Conv", ["x", "w"], ["c"]), N("Relu", ["c"], ["y"])]
    proto = _graph(chain, {"w": (2, 1, 3, 3)}, {"x": [1, 5, 5]}, {"y": [2, 3, 3]})
    assert type(_check(proto, tmp_path / "c.onnx")) is slidenet.Sequential
    branchy = [N("Relu", ["x"], ["a"]), N("Sigmoid", ["x"], ["b"]), N("Mul", ["a", "b"], ["y"])]
    proto = _graph(branchy, {}, {"x": [4]}, {"y": [4]})
    assert type(_check(proto, tmp_path / "b.onnx")) is slidenet.Model


@pytest.mark.parametrize(
    "nodes, weights, inputs, outputs, match",
    [
        (
            [N("Relu", ["x"], ["a"]), N("Flatten", ["x"], ["f"]), N("Add", ["a", "f"], ["y"])],
            {}, {"x": [2, 3, 3]}, {"y": [2, 3, 3]}, r"Add node 'y': its inputs .* laid out",
        ),
        (
            [N("Conv", ["x", "w"], ["c"]), N("Add", ["c", "x"], ["y"])],
            {"w": (2, 2, 3, 3)}, {"x": [2, 3, 3]}, {"y": [2, 3, 3]},
            r"Add node 'y': its inputs .* differ in shape: ONNX broadcasts",
        ),
        (
            [N("Relu", ["x"], ["a"]), N("Concat", ["a", "x"], ["y"], axis=0)],
            {}, {"x": [4]}, {"y": [4]}, r"Concat node 'y': a Concat along the batch axis",
        ),
        (
            [N("Relu", ["x"], ["a"]), N("MatMul", ["a", "x"], ["y"])],
            {}, {"x": [4]}, {"y": [4]}, r"MatMul node 'y': it reads 2 computed tensors",
        ),
        (
            [N("Relu", ["x"], ["a"]), N("Div", ["a", "x"], ["y"], name="ratio")],
            {}, {"x": [4]}, {"y": [4]}, r"1 node\(s\) have no slidenet equivalent: Div 'ratio'",
        ),
        (
            [N("Relu", ["x"], ["a"]), N("Max", ["a", "c"], ["y"])],
            {"c": np.zeros(4, np.float32)}, {"x": [4]}, {"y": [4]},
            r"Max node 'y': this use has no slidenet layer",
        ),
    ],
)  # fmt: skip
def test_graphs_without_a_slidenet_form(tmp_path, nodes, weights, inputs, outputs, match):
    path = tmp_path / "m.onnx"
    onnx.save(_graph(nodes, weights, inputs, outputs), str(path))
    with pytest.raises(UnsupportedOnnxError, match=match):
        import_onnx(path)

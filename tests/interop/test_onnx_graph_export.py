"""export_onnx of graph models: every case runs in ONNX Runtime like ``model.predict``, and comes
back through import_onnx with the same predictions, its shared layers still shared."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_cases import TOL, max_diff  # noqa: E402
from onnx_graph_cases import (  # noqa: E402
    GRAPH_CASES,
    build_graph,
    inputs_for,
    ort_run,
    predict,
)

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import UnsupportedOnnxError, export_onnx, import_onnx, to_onnx  # noqa: E402


@pytest.mark.parametrize("name", sorted(GRAPH_CASES))
def test_graph_runs_in_onnxruntime_like_slidenet(tmp_path, name):
    model = build_graph(name)
    xs = inputs_for(model)
    export_onnx(model, tmp_path / "m.onnx")
    want = predict(model, xs)
    got = ort_run(tmp_path / "m.onnx", xs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert max_diff(g, w) <= TOL
    assert max(float(np.abs(w).max()) for w in want) > 1e-3


@pytest.mark.parametrize("name", sorted(GRAPH_CASES))
def test_graph_round_trips_through_import(tmp_path, name):
    model = build_graph(name)
    xs = inputs_for(model)
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    want_type = slidenet.Sequential if name == "chain" else slidenet.Model
    assert type(back) is want_type
    assert back.count_params() == model.count_params()
    got = predict(back, xs)
    for g, w in zip(got, predict(model, xs), strict=True):
        assert max_diff(g, w) <= TOL


def _initializer_readers(proto) -> dict[str, int]:
    inits = {i.name for i in proto.graph.initializer}
    readers = {}
    for node in proto.graph.node:
        for name in node.input:
            if name in inits:
                readers[name] = readers.get(name, 0) + 1
    return readers


def test_shared_layer_is_two_nodes_reading_one_initializer(tmp_path):
    model = build_graph("shared-layers")
    proto = to_onnx(model)
    names = [i.name for i in proto.graph.initializer]
    assert names.count("shared_conv/kernel") == 1 and names.count("shared_dense/kernel") == 1
    readers = _initializer_readers(proto)
    assert readers["shared_conv/kernel"] == readers["shared_dense/kernel"] == 2
    assert [i.name for i in proto.graph.input] == ["left", "right"]
    export_onnx(model, tmp_path / "m.onnx")
    back = import_onnx(tmp_path / "m.onnx")
    convs = [layer for layer in back.layers if isinstance(layer, L.Conv2D)]
    dense = [layer for layer in back.layers if isinstance(layer, L.Dense)]
    assert len(convs) == 1 and convs[0].activation == "relu" and len(dense) == 2
    calls = [node.layer for node in back._nodes]
    assert calls.count(convs[0]) == 2 and calls.count(back.get_layer("shared_dense")) == 2
    # still shared: training one changes both calls
    assert len(back.get_weights()) == len(model.get_weights())


def test_nested_models_are_flattened_with_scoped_names():
    proto = to_onnx(build_graph("nested-models"))
    assert not any(n.op_type == "Model" for n in proto.graph.node)
    inits = [i.name for i in proto.graph.initializer]
    assert "middle/inner/conv/kernel" in inits and "conv/kernel" in inits
    # the inner model is called twice: its two Conv nodes read one kernel
    assert _initializer_readers(proto)["middle/inner/conv/kernel"] == 2
    assert sum(n.op_type == "BatchNormalization" for n in proto.graph.node) == 2


def test_merge_ops_and_concat_axes_in_nchw():
    ops = [n.op_type for n in to_onnx(build_graph("all-merges")).graph.node]
    for op in ("Sum", "Sub", "Mul", "Mean", "Max", "Min", "Concat"):
        assert op in ops, op
    proto = to_onnx(build_graph("concat-axes"))
    axes = [
        onnx.helper.get_attribute_value(n.attribute[0])
        for n in proto.graph.node
        if n.op_type == "Concat"
    ]
    # rows: [conv (NCHW), x] -> NCHW axis 2; columns: [x (NHWC), ...] -> NHWC axis 2; flat: 1
    assert axes == [2, 2, 1]
    proto = to_onnx(build_graph("inception-concat"))
    concat = next(n for n in proto.graph.node if n.op_type == "Concat")
    assert onnx.helper.get_attribute_value(concat.attribute[0]) == 1  # channels, in NCHW


def test_inputs_and_outputs_are_named_after_the_model():
    proto = to_onnx(build_graph("dict-inputs-outputs"))
    assert [i.name for i in proto.graph.input] == ["img", "sig"]
    assert [o.name for o in proto.graph.output] == ["sum", "sig_map"]
    proto = to_onnx(build_graph("two-outputs"))
    assert [o.name for o in proto.graph.output] == ["probs", "heatmap"]
    dims = [d.dim_value or d.dim_param for d in proto.graph.output[1].type.tensor_type.shape.dim]
    assert dims == ["N", 6, 6, 1]  # outputs are channels-last, like predict's
    proto = to_onnx(build_graph("duplicate-outputs"))
    assert [o.name for o in proto.graph.output] == ["dense_0", "x_1", "dense_2"]


def test_transposes_are_shared_between_readers():
    proto = to_onnx(build_graph("inception-concat"))
    transposes = [n for n in proto.graph.node if n.op_type == "Transpose"]
    assert len(transposes) == 1  # the input, once, for three branches


class Net(slidenet.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, inputs, training=False):
        return self.dense(inputs)


class Doubler(L.Layer):
    def forward(self, x, training=False):
        return 2 * x


def test_subclassed_model_is_refused_with_advice(tmp_path):
    model = Net()
    model.build((None, 3))
    with pytest.raises(UnsupportedOnnxError, match=r"subclassed model.*save_weights.*functional"):
        export_onnx(model, tmp_path / "m.onnx")
    x = slidenet.Input((3,))
    outer = slidenet.Model(x, L.Dense(2)(model(x)))
    with pytest.raises(UnsupportedOnnxError, match=r"Net 'net.*' is a subclassed model"):
        export_onnx(outer, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_layer_in_a_graph_is_named(tmp_path):
    x = slidenet.Input((4,))
    y = L.Add()([L.Dense(4)(x), Doubler(name="twice")(x)])
    with pytest.raises(UnsupportedOnnxError, match=r"Doubler 'twice' \(Doubler\) has no ONNX"):
        export_onnx(slidenet.Model(x, y), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()

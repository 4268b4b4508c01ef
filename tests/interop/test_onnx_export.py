"""export_onnx: every layer case and every application runs in ONNX Runtime like slidenet."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_cases import CASES, TOL, build, example, max_diff, ort_predict, randomize  # noqa: E402

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import UnsupportedOnnxError, export_onnx, to_onnx  # noqa: E402


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_case_runs_in_onnxruntime_like_slidenet(tmp_path, name):
    model = build(name)
    x = example(model)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path)
    want = model.predict(x)
    assert max_diff(ort_predict(path, x), want) <= TOL
    assert np.abs(want).max() > 1e-3  # the case computes something


def test_graph_is_nhwc_outside_nchw_inside(tmp_path):
    model = build("conv-same-s2-even")
    proto = to_onnx(model)
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Transpose", "Conv", "Transpose"]
    dims = [d.dim_value or d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 8, 6, 2]
    conv = proto.graph.node[1]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["pads"] == [0, 0, 1, 1]  # TensorFlow 'same': the extra cell at the end
    # the average pooling of Keras' 'same' leaves the padded cells out of the count
    pool = to_onnx(build("avgpool-same")).graph.node[1]
    assert {a.name: a.i for a in pool.attribute}["count_include_pad"] == 0


@pytest.mark.parametrize("name", list(slidenet.applications.__all__))
@pytest.mark.parametrize("head", ["as built", "logits"])
def test_application_models_run_in_onnxruntime(tmp_path, name, head):
    model = randomize(getattr(slidenet.applications, name)(), seed=3)
    if head == "logits":  # softmax outputs can hide differences: compare the logits too
        model.layers[-1]._set_activation("linear")
    x = example(model, n=2)
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path)  # a functional Model has no export_onnx method (yet)
    want = model.predict(x)
    diff = max_diff(ort_predict(path, x), want)
    assert diff <= (TOL if head == "as built" else 1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("opset", [13, 21])
def test_other_opsets(tmp_path, opset):
    model = build("residual-projection")
    x = example(model)
    export_onnx(model, tmp_path / "m.onnx", opset=opset)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == opset
    assert max_diff(ort_predict(tmp_path / "m.onnx", x), model.predict(x)) <= TOL


def test_float64_model_exports_float32(tmp_path):
    model = slidenet.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, dtype="float64")])
    randomize(model)
    x = example(model)
    export_onnx(model, tmp_path / "m.onnx")
    assert max_diff(ort_predict(tmp_path / "m.onnx", x), model.predict(x)) <= TOL


class Doubler(L.Layer):
    def forward(self, x, training=False):
        return 2 * x


def test_layer_without_onnx_form_is_named(tmp_path):
    model = slidenet.Sequential([L.Input((4,)), L.Dense(3), Doubler(name="twice")])
    with pytest.raises(UnsupportedOnnxError, match=r"Doubler 'twice' \(Doubler\) has no ONNX form"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unbuilt_model_and_bad_opset(tmp_path):
    with pytest.raises(ValueError, match="not built or has no layers"):
        export_onnx(slidenet.Sequential([L.Dense(3)]), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be an int from 13"):
        export_onnx(build("dense"), tmp_path / "m.onnx", opset=9)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(build("dense"), tmp_path / "missing" / "m.onnx")


def test_import_slidenet_does_not_import_onnx():
    code = (
        "import sys, slidenet, slidenet.interop; m = slidenet.applications.lenet5(); "
        "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules, 'onnx imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

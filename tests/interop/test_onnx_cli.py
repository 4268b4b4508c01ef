"""``slidenet export``, run in-process through ``slidenet.cli.main``."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx_cases import TOL, example, max_diff, ort_predict, randomize  # noqa: E402

import slidenet  # noqa: E402
from slidenet.cli import main  # noqa: E402
from slidenet.interop import import_onnx  # noqa: E402


def run(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_a_saved_model(tmp_path, capsys):
    model = randomize(slidenet.applications.keyword_scanner(), seed=5)
    model.save(tmp_path / "scan.slidenet")
    code, out, err = run(capsys, "export", tmp_path / "scan.slidenet", "-o", tmp_path / "scan.onnx")
    assert code == 0, err
    assert re.search(r"wrote .*scan\.onnx: \d+ ONNX nodes, opset 17, input \(N, 128, 1\)", out)
    x = example(model)
    assert max_diff(ort_predict(tmp_path / "scan.onnx", x), model.predict(x)) <= TOL
    assert max_diff(import_onnx(tmp_path / "scan.onnx").predict(x), model.predict(x)) <= TOL


def test_export_a_builder_with_verify(tmp_path, capsys):
    out_path = tmp_path / "lenet5.onnx"
    code, out, err = run(
        capsys, "export", "--model", "lenet5", "-o", out_path, "--opset", 13, "--verify"
    )
    assert code == 0, err
    diff = float(re.search(r"max \|difference\| = (\S+)", out).group(1))
    assert diff <= TOL and out_path.is_file()


def test_export_errors(tmp_path, capsys):
    code, _, err = run(capsys, "export", "-o", tmp_path / "m.onnx")
    assert code == 2 and "give either a MODEL file or --model" in err
    code, _, err = run(
        capsys, "export", "--model", "lenet5", "-o", tmp_path / "m.onnx", "--opset", 5
    )
    assert code == 1 and "opset must be an int from 13" in err
    (tmp_path / "bad.slidenet").write_bytes(b"not a zip")
    code, _, err = run(capsys, "export", tmp_path / "bad.slidenet", "-o", tmp_path / "m.onnx")
    assert code == 1 and "not a slidenet model file" in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_a_saved_graph_model_with_two_inputs(tmp_path, capsys):
    from onnx_graph_cases import build_graph, inputs_for, ort_run, predict

    model = build_graph("two-inputs")
    model.save(tmp_path / "two.slidenet")
    out_path = tmp_path / "two.onnx"
    code, out, err = run(capsys, "export", tmp_path / "two.slidenet", "-o", out_path, "--verify")
    assert code == 0, err
    assert "inputs image (N, 6, 6, 1), meta (N, 3) -> output (N, 3)" in out
    assert float(re.search(r"max \|difference\| = (\S+)", out).group(1)) <= TOL
    xs = inputs_for(model)
    assert max_diff(ort_run(out_path, xs)[0], predict(model, xs)[0]) <= TOL

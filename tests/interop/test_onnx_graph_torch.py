"""PyTorch networks with branches, exported to ONNX (float32) and imported into slidenet, predict
like the same networks run by torch in float64 (tests/torch_oracle.py)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx_cases import TOL, max_diff  # noqa: E402
from onnx_graph_cases import ort_run, predict  # noqa: E402

import slidenet  # noqa: E402
from slidenet import layers as L  # noqa: E402
from slidenet.interop import import_onnx  # noqa: E402
from torch_oracle import leaf, to_numpy  # noqa: E402

nn = torch.nn


def export(net, path, shapes, outputs=1):
    """torch.onnx.export (TorchScript exporter) with inputs in0, in1, ... and outputs out0, ...;
    skips the test when this torch build has no exporter."""
    names = [f"in{i}" for i in range(len(shapes))]
    outs = [f"out{i}" for i in range(outputs)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                tuple(torch.zeros(1, *s) for s in shapes),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=names,
                output_names=outs,
                dynamic_axes={n: {0: "N"} for n in names + outs},
            )
    except Exception:
        pytest.skip("torch.onnx.export (TorchScript exporter) is not available")


def _nhwc(a):
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def compare(net, model, shapes, path, n=4, seed=0) -> float:
    """Largest |slidenet - torch (float64)| over the outputs; ONNX Runtime checked on the way."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, *s)).astype(np.float32) for s in shapes]
    with torch.no_grad():  # NCHW already, as torch takes it
        want = copy.deepcopy(net).double()(*[leaf(x, grad=False) for x in xs])
    want = [to_numpy(w) for w in (want if isinstance(want, tuple) else (want,))]
    got = predict(model, [_nhwc(x) for x in xs])
    ort = ort_run(path, xs)
    assert len(got) == len(want) == len(ort)
    worst = 0.0
    for g, w, o in zip(got, want, ort, strict=True):
        assert max_diff(_nhwc(o), g) <= TOL
        worst = max(worst, max_diff(g, _nhwc(w)))
    return worst


class ResidualNet(nn.Module):
    """A residual add that is no ResNet basic block: Conv -> Relu -> Conv, + x, then a pool."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        h = self.conv2(torch.relu(self.conv1(x))) + x
        return self.fc(torch.flatten(nn.functional.max_pool2d(h, 2), 1))


class InceptionNet(nn.Module):
    """Three branches concatenated on the channels."""

    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(2, 3, 1)
        self.b2 = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(2, 2, 1))
        self.fc = nn.Linear(9 * 3 * 3, 5)

    def forward(self, x):
        h = torch.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x)], dim=1))
        return torch.softmax(self.fc(torch.flatten(nn.functional.max_pool2d(h, 2), 1)), dim=1)


class TwoInputNet(nn.Module):
    """An image and a feature vector: global mean and max of two conv branches, concatenated
    with the encoded vector."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.other = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.meta = nn.Linear(3, 2)
        self.head = nn.Linear(4 + 2 + 2, 3)

    def forward(self, image, meta):
        a = torch.relu(self.conv(image)).mean(dim=(2, 3))
        b = self.other(image).amax(dim=(2, 3))
        return self.head(torch.cat([a, b, torch.tanh(self.meta(meta))], dim=1))


class SiameseNet(nn.Module):
    """Two inputs through the same conv and linear layers (shared weights)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3, 2)

    def embed(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.conv(x), 1), 1))

    def forward(self, a, b):
        return torch.maximum(self.embed(a), self.embed(b)) - self.embed(a) * self.embed(b)


class TwoOutputNet(nn.Module):
    """Class scores and a per-pixel map from one trunk."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Conv2d(2, 4, 3, padding=1)
        self.map = nn.Conv2d(4, 1, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        scores = self.fc(torch.flatten(nn.functional.adaptive_max_pool2d(h, 1), 1))
        return scores, torch.sigmoid(self.map(h))


def test_residual_add(tmp_path):
    torch.manual_seed(0)
    net, path = ResidualNet().eval(), tmp_path / "m.onnx"
    export(net, path, [(3, 6, 6)])
    model = import_onnx(path)
    assert type(model) is slidenet.Model
    assert sum(isinstance(layer, L.Add) for layer in model.layers) == 1
    assert compare(net, model, [(3, 6, 6)], path) <= TOL


def test_inception_concat_of_three_branches(tmp_path):
    torch.manual_seed(1)
    net, path = InceptionNet().eval(), tmp_path / "m.onnx"
    export(net, path, [(2, 7, 7)])
    model = import_onnx(path)
    (concat,) = [layer for layer in model.layers if isinstance(layer, L.Concatenate)]
    assert concat.axis == -1 and len(concat.input_shape) == 3
    assert compare(net, model, [(2, 7, 7)], path) <= TOL


def test_two_inputs(tmp_path):
    torch.manual_seed(2)
    net, path = TwoInputNet().eval(), tmp_path / "m.onnx"
    export(net, path, [(1, 6, 6), (3,)])
    model = import_onnx(path)
    assert [t.shape for t in model.inputs] == [(None, 6, 6, 1), (None, 3)]
    assert compare(net, model, [(1, 6, 6), (3,)], path) <= TOL


def test_shared_weights_two_inputs(tmp_path):
    torch.manual_seed(3)
    net, path = SiameseNet().eval(), tmp_path / "m.onnx"
    export(net, path, [(1, 5, 5), (1, 5, 5)])
    model = import_onnx(path)
    assert [t.name for t in model.inputs] == ["in0", "in1"]
    weighted = [layer for layer in model.layers if layer.weights]
    assert [type(layer).__name__ for layer in weighted] == ["Conv2D", "Dense"]
    assert model.count_params() == sum(p.numel() for p in net.parameters())
    assert compare(net, model, [(1, 5, 5), (1, 5, 5)], path) <= TOL


def test_two_outputs(tmp_path):
    torch.manual_seed(4)
    net, path = TwoOutputNet().eval(), tmp_path / "m.onnx"
    export(net, path, [(2, 5, 5)], outputs=2)
    model = import_onnx(path)
    assert model.output_shape == [(None, 3), (None, 5, 5, 1)]
    assert compare(net, model, [(2, 5, 5)], path) <= TOL

"""Networks built in PyTorch, exported to ONNX and imported into slidenet predict like torch.

The export is float32 (ONNX interop is float32); the reference numbers come from a float64 copy of
the torch net run on contiguous NCHW tensors (tests/torch_oracle.py).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_cases import TOL, max_diff, ort_predict  # noqa: E402

from slidenet.interop import import_onnx  # noqa: E402
from slidenet.layers import Conv2D, Dense, Flatten, MaxPooling2D, ResidualBlock  # noqa: E402
from torch_oracle import leaf, nhwc, to_numpy  # noqa: E402

nn = torch.nn


def lenet5_torch():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
        nn.Softmax(dim=1),
    ).eval()


def torch_export(net, path, shape) -> bool:
    """torch.onnx.export with the TorchScript exporter (offline); False when it is unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (torch.zeros(1, *shape),),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
            )
    except Exception:  # no exporter in this torch build: the caller builds the graph by hand
        return False
    return True


def lenet5_by_hand(net, path) -> None:
    """The same LeNet-5 as an ONNX graph written with onnx.helper from torch's weights."""
    p = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    inits = [numpy_helper.from_array(v, k) for k, v in p.items()]
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "0.weight", "0.bias"], ["c1"], pads=[2, 2, 2, 2]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "3.weight", "3.bias"], ["c2"]),
        n("Relu", ["c2"], ["r2"]),
        n("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["p2"], ["f"]),
        n("Gemm", ["f", "7.weight", "7.bias"], ["g1"], transB=1),
        n("Relu", ["g1"], ["h1"]),
        n("Gemm", ["h1", "9.weight", "9.bias"], ["g2"], transB=1),
        n("Relu", ["g2"], ["h2"]),
        n("Gemm", ["h2", "11.weight", "11.bias"], ["g3"], transB=1),
        n("Softmax", ["g3"], ["output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "lenet5_torch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))


def oracle(net):
    """A float64 copy of ``net`` (the exported float32 net is left as it is)."""
    return copy.deepcopy(net).double()


def torch_vs_slidenet(net, model, shape, n=4, seed=0) -> float:
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    with torch.no_grad():  # x is channels-first already, as torch takes it
        want = to_numpy(oracle(net)(leaf(x, grad=False)))
    got = model.predict(np.moveaxis(x, 1, -1))  # slidenet takes NHWC / NLC
    if got.ndim == want.ndim and got.ndim > 2:
        got = np.moveaxis(got, -1, 1)
    return max_diff(got, want)


@pytest.mark.parametrize("how", ["torch.onnx.export", "onnx.helper"])
def test_torch_lenet5_imports_and_predicts_like_torch(tmp_path, how):
    net, path = lenet5_torch(), tmp_path / "lenet5.onnx"
    if how == "onnx.helper" or not torch_export(net, path, (1, 28, 28)):
        lenet5_by_hand(net, path)
    model = import_onnx(path)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Conv2D, MaxPooling2D, Conv2D, MaxPooling2D, Flatten, Dense, Dense, Dense]
    assert model.layers[0].padding == "same" and model.layers[-1].activation == "softmax"
    assert model.count_params() == sum(p.numel() for p in net.parameters()) == 61706
    assert torch_vs_slidenet(net, model, (1, 28, 28)) <= TOL
    # the first Dense read torch's CHW-ordered features: its rows were reordered to HWC
    w_torch = net[7].weight.detach().numpy().T.reshape(16, 5, 5, 120)
    np.testing.assert_array_equal(
        model.layers[5].kernel, w_torch.transpose(1, 2, 0, 3).reshape(400, 120)
    )


class Block(nn.Module):
    """ResNet's basic block, as torchvision writes it, with 'same'-compatible padding."""

    def __init__(self, d, k, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(d, k, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(k)
        self.conv2 = nn.Conv2d(k, k, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(k)
        self.short = (
            nn.Sequential(nn.Conv2d(d, k, 1, stride, bias=False), nn.BatchNorm2d(k))
            if stride != 1 or d != k
            else nn.Identity()
        )

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.short(x))


def small_resnet():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        Block(4, 4, 1),
        Block(4, 6, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def test_torch_resnet_blocks_import_as_residual_blocks(tmp_path):
    net, path = small_resnet(), tmp_path / "resnet.onnx"
    if not torch_export(net, path, (2, 7, 7)):
        pytest.skip("torch.onnx.export (TorchScript exporter) is not available")
    model = import_onnx(path)
    blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
    assert [b.shortcut_conv is None for b in blocks] == [True, False]
    assert torch_vs_slidenet(net, model, (2, 7, 7)) <= TOL
    x = np.random.default_rng(2).normal(size=(2, 2, 7, 7)).astype(np.float32)
    assert max_diff(model.predict(np.moveaxis(x, 1, -1)), ort_predict(path, x)) <= TOL


def test_torch_mean_pool_and_batchnorm1d(tmp_path):
    torch.manual_seed(2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 5, 3, stride=2, padding=1)
            self.fc = nn.Linear(5, 4)
            self.bn = nn.BatchNorm1d(4)

        def forward(self, x):
            h = torch.tanh(self.conv(x)).mean(dim=2)
            return torch.sigmoid(self.bn(self.fc(h)))

    net = Net()
    net.bn.running_mean.uniform_(-0.5, 0.5)
    net.eval()
    path = tmp_path / "signal.onnx"
    if not torch_export(net, path, (3, 9)):
        pytest.skip("torch.onnx.export (TorchScript exporter) is not available")
    model = import_onnx(path)
    assert torch_vs_slidenet(net, model, (3, 9)) <= TOL


def test_imported_torch_model_is_explained_like_torch(tmp_path, capsys):
    """Saliency (d logit / d pixels) of the imported LeNet-5 equals torch's autograd gradient."""
    attribution = pytest.importorskip("slidenet.viz.attribution")
    net, path = lenet5_torch(), tmp_path / "lenet5.onnx"
    lenet5_by_hand(net, path)
    model = import_onnx(path)
    model.summary()
    assert "Total params: 61,706" in capsys.readouterr().out
    image = np.random.default_rng(3).random((1, 28, 28), dtype=np.float32)
    x = leaf(image[None])  # (1, 1, 28, 28): channels-first, contiguous
    logits = oracle(net)[:-1](x)
    c = int(logits.argmax())
    logits[0, c].backward()
    want = to_numpy(nhwc(x.grad))[0]
    got = attribution.saliency_map(model, image.transpose(1, 2, 0), class_index=c)
    assert max_diff(got, want) <= 1e-5 * max(1.0, float(np.abs(want).max()))


def test_torch_blocks_that_are_not_residual_blocks_import_as_a_graph(tmp_path):
    """On an even input a stride-2 conv with padding=1 pads (1, 1); TensorFlow's 'same' pads
    (0, 1), so the second block is no ResidualBlock: it imports node by node (Conv2D with explicit
    pads, BatchNormalization, ReLU, Add) into a graph Model that still predicts like torch. The
    first block (stride 1) is a ResidualBlock as before."""
    from slidenet.layers import Add
    from slidenet.models import Model

    net, path = small_resnet(), tmp_path / "even.onnx"
    if not torch_export(net, path, (2, 8, 8)):
        pytest.skip("torch.onnx.export (TorchScript exporter) is not available")
    model = import_onnx(path)
    assert isinstance(model, Model)
    assert sum(isinstance(layer, Add) for layer in model.layers) == 1
    assert sum(isinstance(layer, ResidualBlock) for layer in model.layers) == 1
    assert ((1, 1), (1, 1)) in [getattr(layer, "padding", None) for layer in model.layers]
    assert torch_vs_slidenet(net, model, (2, 8, 8)) <= TOL

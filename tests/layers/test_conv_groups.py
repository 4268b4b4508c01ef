"""Conv2D(groups=G): the layer against torch's grouped conv2d (float64 oracle) and finite
differences; the op itself is checked in tests/ops/test_depthwise.py."""

import numpy as np
import pytest
import torch.nn.functional as F

import slidenet as keras
from slidenet.utils import gradcheck
from torch_oracle import assert_matches, leaf, nhwc, to_nchw, to_numpy


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("groups,stride", [(2, 1), (3, 2)])
def test_grouped_conv_layer_matches_torch(dtype, groups, stride):
    layer = keras.layers.Conv2D(6, 3, strides=stride, groups=groups, activation="relu", dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 7, 6)).astype(dtype)
    y = layer(x)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert (
        layer.kernel.shape == (3, 3, 6 // groups, 6)
        and layer.count_params() == 3 * 3 * 6 // groups * 6 + 6
    )
    xt = to_nchw(x)
    wt, bt = leaf(np.transpose(layer.kernel, (3, 2, 0, 1))), leaf(layer.bias)
    yt = F.relu(F.conv2d(xt, wt, bt, stride=stride, groups=groups))
    yt.backward(to_nchw(dy, grad=False))
    assert_matches(y, nhwc(yt), "y")
    assert_matches(dx, to_numpy(xt.grad, channels_last=True), "dx")
    assert_matches(layer.grads[0], np.transpose(to_numpy(wt.grad), (2, 3, 1, 0)), "dkernel")
    assert_matches(layer.grads[1], bt.grad, "dbias")


def test_grouped_conv_gradcheck_and_config_round_trip():
    layer = keras.layers.Conv2D(4, 3, groups=2, padding="same")
    errors = gradcheck(layer, np.random.default_rng(1).normal(size=(2, 5, 5, 4)))
    assert max(errors.values()) < 1e-6
    again = keras.layers.Conv2D.from_config(layer.get_config())
    assert again.groups == 2
    with pytest.raises(ValueError, match=r"groups > 1 is supported by Conv2D only"):
        keras.layers.Conv1D(4, 3, groups=2)


def test_grouped_conv_exports_to_onnx_and_back(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from slidenet.interop import export_onnx, import_onnx

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.layers.Input((6, 6, 4)), keras.layers.Conv2D(6, 3, groups=2, activation="relu")]
    )
    path = tmp_path / "g.onnx"
    export_onnx(model, path)
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 4)).astype("float32")
    got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-5)
    back = import_onnx(path)
    assert back.layers[0].groups == 2
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-6, atol=1e-6)

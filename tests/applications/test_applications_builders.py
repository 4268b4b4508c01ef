"""The model builders: parameter counts by hand arithmetic and by torch-built equivalents, shapes,
and that each trains a step and survives the model-file round trip. torch runs in float64 on
contiguous channels-first tensors (tests/torch_oracle.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import slidenet as keras
from slidenet import applications as apps
from slidenet import layers as L
from torch_oracle import ORACLE_DTYPE, leaf, to_nchw, to_numpy


def torch_count(module: nn.Module) -> int:
    """Parameters plus BatchNorm running statistics (what Keras and slidenet count as weights)."""
    stats = sum(
        b.numel()
        for name, b in module.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return sum(p.numel() for p in module.parameters()) + stats


def conv_bn(d, k, stride=1, f=3):
    return [nn.Conv2d(d, k, f, stride, padding=f // 2, bias=False), nn.BatchNorm2d(k)]


class TorchBasicBlock(nn.Module):
    def __init__(self, d, k, stride):
        super().__init__()
        self.main = nn.Sequential(*conv_bn(d, k, stride), nn.ReLU(), *conv_bn(k, k))
        self.short = (
            nn.Sequential(*conv_bn(d, k, stride, f=1)) if stride != 1 or d != k else nn.Identity()
        )

    def forward(self, x):
        return torch.relu(self.main(x) + self.short(x))


def test_vgg_small_counts():
    model = apps.vgg_small()
    # by hand: convs 9*(1*32 + 32*32 + 32*64 + 64*64), BN 4*(32+32+64+64), Dense 7*7*64*128+128,
    # Dense 128*10+10
    by_hand = 9 * (32 + 32 * 32 + 32 * 64 + 64 * 64) + 4 * 192 + (3136 * 128 + 128) + 1290
    torch_net = nn.Sequential(
        *conv_bn(1, 32), nn.ReLU(), *conv_bn(32, 32), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(32, 64), nn.ReLU(), *conv_bn(64, 64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10),
    ).double()  # fmt: skip
    assert model.count_params() == by_hand == torch_count(torch_net) == 468394
    assert model.output_shape == (None, 10)
    assert torch_net(torch.zeros(2, 1, 28, 28, dtype=ORACLE_DTYPE)).shape == (2, 10)
    names = [type(layer).__name__ for layer in model.layers]
    assert names.count("BatchNormalization") == 4 and names.count("MaxPooling2D") == 2
    assert all(not c.use_bias for c in model.layers if isinstance(c, L.Conv2D))


def test_resnet_small_counts_and_shortcuts():
    model = apps.resnet_small()
    assert isinstance(model, keras.Model)
    assert not any(isinstance(layer, L.ResidualBlock) for layer in model.layers)
    adds = [layer for layer in model.layers if isinstance(layer, L.Add)]
    assert len(adds) == 6
    # each block's shortcut is an Add node: main path (bn2) + identity or projection (shortcut_bn)
    into_add = [[t.node.layer.name for t in add.input] for add in adds]
    assert [names[0].endswith("_bn2") for names in into_add] == [True] * 6
    assert [names[1].endswith("_shortcut_bn") for names in into_add] == [
        False, False, True, False, True, False
    ]  # fmt: skip
    assert into_add[0][1] == "stem_relu" and into_add[1][1] == "stage1_block1_relu2"
    outs = [model.get_layer(f"stage{i}_block2_relu2").output_shape[1:] for i in (1, 2, 3)]
    assert outs == [(28, 28, 16), (14, 14, 32), (7, 7, 64)]
    stem = 9 * 16 + 4 * 16
    identity = [2 * 9 * k * k + 2 * 4 * k for k in (16, 16, 32, 64)]
    projection = [9 * d * k + 9 * k * k + d * k + 3 * 4 * k for d, k in ((16, 32), (32, 64))]
    by_hand = stem + sum(identity) + sum(projection) + 64 * 10 + 10
    torch_net = nn.Sequential(
        *conv_bn(1, 16), nn.ReLU(),
        TorchBasicBlock(16, 16, 1), TorchBasicBlock(16, 16, 1),
        TorchBasicBlock(16, 32, 2), TorchBasicBlock(32, 32, 1),
        TorchBasicBlock(32, 64, 2), TorchBasicBlock(64, 64, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    ).double()  # fmt: skip
    assert model.count_params() == by_hand == torch_count(torch_net) == 176090
    assert 100_000 < model.count_params() < 300_000
    assert torch_net(torch.zeros(2, 1, 28, 28, dtype=ORACLE_DTYPE)).shape == (2, 10)
    assert model.output_shape == (None, 10)


def test_keyword_scanner_counts_and_torch_forward():
    model = apps.keyword_scanner((40, 1), filters=5, kernel_size=7)
    assert model.count_params() == (7 * 1 + 1) * 5 + (5 + 1) * 1
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv1D",
        "GlobalMaxPooling1D",
        "Dense",
    ]
    conv, dense = nn.Conv1d(1, 5, 7).double(), nn.Linear(5, 1).double()
    assert torch_count(nn.Sequential(conv, dense)) == model.count_params()
    k, b, w, c = model.get_weights()
    with torch.no_grad():  # slidenet's layouts -> torch's: (F, in, out) -> (out, in, F), w.T
        conv.weight.copy_(leaf(np.transpose(k, (2, 1, 0)), grad=False))
        conv.bias.copy_(leaf(b, grad=False))
        dense.weight.copy_(leaf(w.T, grad=False))
        dense.bias.copy_(leaf(c, grad=False))
    x = np.random.default_rng(0).normal(size=(3, 40, 1)).astype(np.float32)
    with torch.no_grad():
        h = torch.relu(conv(to_nchw(x, grad=False))).amax(dim=2)
        want = to_numpy(torch.sigmoid(dense(h)))
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)
    assert apps.keyword_scanner().count_params() == (12 + 1) * 16 + 17


@pytest.mark.parametrize(
    "build, shape, classes",
    [
        (lambda: apps.vgg_small((16, 16, 3), classes=4, filters=(4, 8), dense=8), (16, 16, 3), 4),
        (
            lambda: apps.resnet_small((12, 12, 1), classes=3, filters=(4, 8), blocks=1),
            (12, 12, 1),
            3,
        ),
        (lambda: apps.inception_small((9, 9, 2), classes=3), (9, 9, 2), 3),
        (lambda: apps.keyword_scanner((32, 2), classes=2, filters=3, kernel_size=5), (32, 2), 2),
    ],
    ids=["vgg", "resnet", "inception", "scanner"],
)
def test_builders_train_a_step_and_round_trip(tmp_path, build, shape, classes):
    keras.utils.set_random_seed(0)
    model = build()
    assert model.output_shape == (None, classes)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, *shape)).astype(np.float32)
    scanner = model.name == "keyword_scanner"
    y = rng.integers(0, 2, (6, classes)) if scanner else rng.integers(0, classes, 6)
    loss = "binary_crossentropy" if scanner else "sparse_categorical_crossentropy"
    model.compile("adam", loss)
    before = model.get_weights()
    model.train_on_batch(x, y)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert all(changed)  # every weight moved: trained ones by Adam, statistics by batch norm
    model.save(tmp_path / "m.slidenet")
    loaded = keras.load_model(tmp_path / "m.slidenet")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: apps.vgg_small(filters=()), "vgg_small: filters must be a non-empty tuple"),
        (lambda: apps.resnet_small(filters=16), "resnet_small: filters must be a non-empty tuple"),
        (lambda: apps.resnet_small(blocks=0), "resnet_small: blocks must be a positive integer"),
        (lambda: apps.keyword_scanner(filters=0), "keyword_scanner: filters must be a positive"),
        (lambda: apps.vgg_small(classes=0), "vgg_small: classes must be a positive integer"),
        (lambda: apps.resnet_small(classes=0), "resnet_small: classes must be a positive integer"),
        (lambda: apps.inception_small(classes=0), "inception_small: classes must be a positive"),
    ],
)
def test_bad_builder_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()

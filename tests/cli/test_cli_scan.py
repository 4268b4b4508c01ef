"""``slidenet scan``, run in-process: scores, heatmaps (matplotlib and Pillow) and errors."""

from __future__ import annotations

import numpy as np
import pytest
from cli_test_helpers import run_cli
from PIL import Image

import slidenet as keras
from slidenet import applications as apps
from slidenet import layers as L
from slidenet.cli import _common


@pytest.fixture
def files(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            L.Input((8, 8, 1)),
            L.Conv2D(3, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model_path = tmp_path / "clf.slidenet"
    _common.save(model, model_path, {"class_names": ["O", "X"]})
    pixels = np.random.default_rng(0).integers(0, 256, (20, 26), dtype=np.uint8)
    scene_path = tmp_path / "scene.png"
    Image.fromarray(pixels).save(scene_path)
    return model, model_path, pixels, scene_path


def test_scores_equal_the_library_scan_and_the_classifier(files, tmp_path, capsys):
    model, model_path, pixels, scene = files
    out, npy = tmp_path / "heat.png", tmp_path / "scores.npy"
    code, stdout, err = run_cli(capsys, "scan", model_path, scene, "-o", out, "--npy", npy)
    assert code == 0, err
    scores = np.load(npy)
    image = pixels[..., None] / 255.0
    assert scores.shape == ((20 - 8) // 2 + 1, (26 - 8) // 2 + 1, 2)  # the network's stride 2
    np.testing.assert_allclose(scores, apps.scan(model, image), rtol=1e-6)
    np.testing.assert_allclose(scores[1, 3], model.predict(image[None, 2:10, 6:14])[0], rtol=1e-5)
    best = int(np.unravel_index(scores.argmax(), scores.shape)[-1])
    assert f"class {best} {'OX'[best]}: max score" in stdout
    assert "with 8x8 windows at stride 2x2: 7x10 positions" in stdout
    with Image.open(out) as im:
        assert im.format == "PNG" and min(im.size) > 100  # a matplotlib figure


def test_plain_heatmap_by_class_name_and_stride(files, tmp_path, capsys):
    _, model_path, _, scene = files
    out, npy = tmp_path / "x.png", tmp_path / "x.npy"
    code, stdout, err = run_cli(
        capsys, "scan", model_path, scene, "--class", "X", "--stride", "3", "--plain", "-o", out,
        "--npy", npy,
    )  # fmt: skip
    assert code == 0, err
    assert "class 1 X: max score" in stdout and "at stride 3x3: 5x7 positions" in stdout
    scores = np.load(npy)[..., 1]
    with Image.open(out) as im:
        assert im.size == (26, 20) and im.mode == "RGB"  # the scene's size
        red = np.asarray(im)[..., 0].astype(float)
    # the window with the highest score is drawn brightest at its centre
    i, j = np.unravel_index(scores.argmax(), scores.shape)
    k, m = np.unravel_index(scores.argmin(), scores.shape)
    assert red[3 * i + 4, 3 * j + 4] > red[3 * k + 4, 3 * m + 4]


def test_errors(files, tmp_path, capsys):
    _, model_path, _, scene = files
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((6, 30), np.uint8)).save(small)
    code, _, err = run_cli(capsys, "scan", model_path, small, "-o", tmp_path / "o.png")
    assert code == 1 and "is 6x30, smaller than the model's 8x8 input" in err
    code, _, err = run_cli(capsys, "scan", model_path, scene, "--class", "Y", "-o", tmp_path / "o")
    assert code == 2 and "--class 'Y' is not a class of this model: 0..1 or a name" in err
    code, _, err = run_cli(capsys, "scan", model_path, scene, "--stride", "0", "-o", "o.png")
    assert code == 2 and "expected a positive integer" in err
    signal_model = tmp_path / "kw.slidenet"
    apps.keyword_scanner((64, 1)).save(signal_model)
    code, _, err = run_cli(capsys, "scan", signal_model, scene, "-o", tmp_path / "o.png")
    assert code == 1 and "not images (H, W, C)" in err
    assert not (tmp_path / "o.png").exists()


def test_help(capsys):
    code, out, _ = run_cli(capsys, "scan", "--help")
    assert code == 0 and "slidenet scan cnn.slidenet scene.png -o heatmap.png" in out
    assert "--stride" in out and "--class" in out

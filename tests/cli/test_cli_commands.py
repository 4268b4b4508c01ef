"""`slidenet evaluate`, `predict` and `summary`, in-process, on a small model trained here."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from cli_test_helpers import digits_npz, nets_file, run_cli

import slidenet
from slidenet.cli import main
from slidenet.datasets import mnist_sample
from slidenet.filters import save_image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 10-class model trained for 2 epochs on 600 digits (.npz with class names)."""
    root = tmp_path_factory.mktemp("trained")
    digits_npz(root / "digits.npz", n_train=600, n_test=200, class_names=NAMES)
    nets = nets_file(root)
    code = main(
        [
            *("train", "--model", f"{nets}:tiny", "--dataset", str(root / "digits.npz")),
            *("--epochs", "2", "--verbose", "0", "--out", str(root / "digits.slidenet")),
        ]
    )
    assert code == 0
    return root


def test_evaluate_prints_loss_accuracy_and_per_class_table(capsys, trained):
    model_file, data = trained / "digits.slidenet", trained / "digits.npz"
    code, out, err = run_cli(capsys, "evaluate", model_file, "--dataset", data)
    assert code == 0, err
    model = slidenet.load_model(model_file)
    with np.load(data) as npz:
        x, y = npz["x_test"] / 255.0, npz["y_test"]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert f"loss: {loss:.4f}\naccuracy: {accuracy:.4f}" in out
    rows = re.findall(r"^(\d) (\w+)\s+(\d+)\s+(\d+)\s+(\d\.\d{4})$", out, re.M)
    assert [r[1] for r in rows] == NAMES
    predicted = model.predict(x).argmax(axis=1)
    for c, (_, _, images, correct, acc) in enumerate(rows):
        assert int(images) == np.sum(y == c)
        assert int(correct) == np.sum((y == c) & (predicted == c))
        assert float(acc) == pytest.approx(int(correct) / int(images), abs=5e-5)
    assert sum(int(r[3]) for r in rows) == round(accuracy * len(y))


def test_evaluate_json_train_split_and_recorded_dataset(capsys, trained):
    model_file = trained / "digits.slidenet"
    code, out, _ = run_cli(capsys, "evaluate", model_file, "--split", "train", "--json")
    assert code == 0  # the data set recorded by train
    result = json.loads(out)
    assert result["dataset"] == str(trained / "digits.npz") and result["images"] == 600
    assert sum(row["images"] for row in result["per_class"]) == 600
    correct = sum(row["correct"] for row in result["per_class"])
    assert result["accuracy"] == pytest.approx(correct / 600)
    assert [row["name"] for row in result["per_class"]] == NAMES


def test_evaluate_plain_model_file_needs_dataset(capsys, tmp_path):
    model = slidenet.applications.lenet5((28, 28, 1), classes=10)
    model.save(tmp_path / "plain.slidenet")  # not even compiled
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "plain.slidenet")
    assert code == 2 and "(the model file does not record one)" in err
    code, out, _ = run_cli(
        capsys, "evaluate", tmp_path / "plain.slidenet", "--dataset", "mnist-sample"
    )
    assert code == 0 and "mnist-sample (test split, 1,000 images)" in out
    assert len(re.findall(r"^\d\s+100\s+\d+\s+\d\.\d{4}$", out, re.M)) == 10


def test_evaluate_rejects_more_classes_than_outputs(capsys, tmp_path):
    model = slidenet.applications.lenet5((28, 28, 1), classes=2)
    model.save(tmp_path / "two.slidenet")
    code, _, err = run_cli(
        capsys, "evaluate", tmp_path / "two.slidenet", "--dataset", "mnist-sample"
    )
    assert code == 1 and "has 10 classes but the model has only 2 outputs" in err


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """Test digits 0..2 as PNG (28x28), one enlarged to 56x56 and one dark-on-light."""
    root = tmp_path_factory.mktemp("images")
    _, (x_test, y_test) = mnist_sample.load_data()
    paths = {}
    for label in (0, 1, 2):
        image = x_test[np.flatnonzero(y_test == label)[0]]
        paths[label] = root / f"digit{label}.png"
        save_image(paths[label], image)
    big = np.kron(x_test[np.flatnonzero(y_test == 3)[0]], np.ones((2, 2), np.uint8))
    paths["big"] = root / "big.png"
    save_image(paths["big"], big)
    paths["paper"] = root / "paper.png"
    save_image(paths["paper"], 255 - x_test[np.flatnonzero(y_test == 4)[0]])
    return paths


def test_predict_top3_matches_the_model(capsys, trained, digit_images):
    model_file = trained / "digits.slidenet"
    images = [digit_images[0], digit_images[1], digit_images[2]]
    code, out, err = run_cli(capsys, "predict", model_file, *images, "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    model = slidenet.load_model(model_file)
    x = np.stack([slidenet.filters.load_image(p) for p in images])
    probs = model.predict(x)
    assert [r["image"] for r in result] == [str(p) for p in images]
    for r, p in zip(result, probs, strict=True):
        assert len(r["top"]) == 3
        assert [t["class"] for t in r["top"]] == list(np.argsort(-p, kind="stable")[:3])
        assert [t["probability"] for t in r["top"]] == pytest.approx(np.sort(p)[::-1][:3])
        assert [t["name"] for t in r["top"]] == [NAMES[t["class"]] for t in r["top"]]
    code, text, _ = run_cli(capsys, "predict", model_file, digit_images[0], "--top", "2")
    lines = text.splitlines()
    assert lines[0] == str(digit_images[0]) and len(lines) == 3
    top = result[0]["top"][0]
    assert re.fullmatch(
        rf"  1\. {top['class']} {top['name']}\s+{100 * top['probability']:6.2f}%", lines[1]
    )


def test_predict_resizes_with_a_note_and_offers_invert(capsys, trained, digit_images):
    model_file = trained / "digits.slidenet"
    code, out, err = run_cli(capsys, "predict", model_file, digit_images["big"], "--json")
    assert code == 0
    assert f"note: {digit_images['big']} is 56x56; resized to 28x28" in err
    assert json.loads(out)[0]["top"][0]["probability"] > 0
    code, _, err = run_cli(capsys, "predict", model_file, digit_images["paper"])
    assert code == 0 and "mostly light" in err and "--invert" in err
    code, out, err = run_cli(
        capsys, "predict", model_file, digit_images["paper"], "--invert", "--json"
    )
    assert code == 0 and "mostly light" not in err
    model = slidenet.load_model(model_file)
    x = 1.0 - slidenet.filters.load_image(digit_images["paper"])
    expected = model.predict(x[None])[0]
    assert json.loads(out)[0]["top"][0]["probability"] == pytest.approx(expected.max())


def test_predict_converts_rgb_to_the_models_grayscale(capsys, trained, digit_images, tmp_path):
    gray = slidenet.filters.load_image(digit_images[2])
    save_image(tmp_path / "rgb.png", np.stack([gray] * 3, axis=-1))
    code, out_rgb, _ = run_cli(
        capsys, "predict", trained / "digits.slidenet", tmp_path / "rgb.png", "--json"
    )
    code2, out_gray, _ = run_cli(
        capsys, "predict", trained / "digits.slidenet", digit_images[2], "--json"
    )
    assert code == code2 == 0
    assert json.loads(out_rgb)[0]["top"] == json.loads(out_gray)[0]["top"]


def test_predict_errors(capsys, trained, tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    code, _, err = run_cli(capsys, "predict", trained / "digits.slidenet", tmp_path / "text.png")
    assert code == 1 and "is not an image file Pillow can read" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "predict", trained / "digits.slidenet", tmp_path / "none.png")
    assert code == 1 and "none.png" in err
    flat = slidenet.Sequential([slidenet.layers.Dense(3, activation="softmax", input_shape=(5,))])
    flat.save(tmp_path / "flat.slidenet")
    code, _, err = run_cli(capsys, "predict", tmp_path / "flat.slidenet", tmp_path / "text.png")
    assert code == 1 and "not images" in err


def test_predict_softmax_for_logits(capsys, tmp_path, digit_images):
    model = slidenet.Sequential(
        [slidenet.layers.Input((28, 28, 1)), slidenet.layers.Flatten(), slidenet.layers.Dense(4)]
    )
    model.save(tmp_path / "logits.slidenet")
    code, out, err = run_cli(
        capsys, "predict", tmp_path / "logits.slidenet", digit_images[0], "--json"
    )
    assert code == 0 and "applying softmax" in err
    logits = model.predict(slidenet.filters.load_image(digit_images[0])[None])[0].astype(float)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    top = json.loads(out)[0]["top"]
    assert [t["probability"] for t in top] == pytest.approx(np.sort(expected)[::-1][:3])
    assert [t["name"] for t in top] == [str(t["class"]) for t in top]


def test_summary_of_a_file_and_of_builders(capsys, trained, tmp_path):
    code, out, _ = run_cli(capsys, "summary", "--model", "mnist_cnn")
    assert code == 0 and "Total params: 3,274,634" in out and "(28 - 5 + 2*2)/1 + 1 = 28" in out
    code, out, _ = run_cli(capsys, "summary", "--model", "lenet5")
    assert code == 0 and "Total params: 61,706" in out
    code, out, _ = run_cli(
        capsys, "summary", "--model", "lenet5", "--input-shape", "28,28,1", "--classes", "5"
    )
    assert code == 0 and "(None, 5)" in out and "(None, 28, 28, 6)" in out
    code, out, _ = run_cli(capsys, "summary", trained / "digits.slidenet")
    assert code == 0 and "(None, 26, 26, 4)" in out and "(None, 10)" in out
    nets = nets_file(tmp_path)
    code, out, _ = run_cli(capsys, "summary", "--model", f"{nets}:fixed")
    assert code == 0 and "(None, 14, 14, 4)" in out
    code, _, err = run_cli(capsys, "summary", trained / "digits.slidenet", "--classes", "3")
    assert code == 2 and "go with --model" in err

"""The HTML report: self-contained and complete; `slidenet report` and `train --report`."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from viz_helpers import corner_data, png_size_and_std, trained_tiny

import slidenet
import slidenet.viz as viz
from slidenet.cli import main
from slidenet.cli import report as report_cli

NETS = """\
import slidenet as keras


def tiny(input_shape=(12, 12, 1), classes=2):
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),
            keras.layers.Conv2D(3, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
"""


class Page(HTMLParser):
    """Every tag's attributes, and the text, of an HTML page."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag):
        return [attrs for t, attrs in self.tags if t == tag]


@pytest.fixture(scope="module")
def trained():
    return trained_tiny()


def check_self_contained(text):
    """Every picture an inline PNG of the size the tag declares; nothing loaded from elsewhere."""
    page = Page(text)
    images = page.all("img")
    for attrs in images:
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix)
        size, std = png_size_and_std(base64.b64decode(attrs["src"][len(prefix) :]))
        assert size == (int(attrs["width"]), int(attrs["height"]))
        assert std > 5.0
        assert attrs["alt"]
    for _, attrs in page.tags:
        for key in ("src", "href"):
            assert not re.match(r"\s*(https?:|//|file:)", attrs.get(key, "")), attrs
    assert not page.all("script")
    csp = [a for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    return page, images


def test_report_holds_every_section(trained):
    model, x, y = trained
    text = viz.build_report(model, x[:40], y[:40], class_names=["bottom", "top"], examples=2)
    page, images = check_self_contained(text)
    body = " ".join(page.text)
    for heading in (
        "Test results",
        "Summary",
        "Training curves",
        "Confusion matrix",
        "Most confident mistakes",
        "Filters",
        "Inside the network",
    ):
        assert heading in body
    assert "Total params: " in body and "receptive field" in body  # summary with its arithmetic
    accuracy = np.mean(model.predict(x[:40]).argmax(1) == y[:40])
    assert f"accuracy {accuracy:.2%}" in "".join(page.text)
    loss = model.evaluate(x[:40], y[:40], verbose=0)[0]
    assert f"loss {loss:.4f}" in body
    alts = [a["alt"] for a in images]
    # curves, confusion, mistakes, 2 conv layers' filters, feature visualisation of the last,
    # and 3 pictures for each of 2 images
    assert len(images) == 3 + 2 + 1 + 2 * 3
    assert sum(a.startswith("occlusion") for a in alts) == 2
    assert "loss and accuracy per epoch" in alts
    assert re.search(r"test image \d+: true (top|bottom), predicted (top|bottom)", body)


def test_report_without_history_says_so(trained, tmp_path):
    model, x, y = trained
    path = tmp_path / "r.html"
    viz.write_report(path, model, x[:10], y[:10], history={}, examples=0)
    page, images = check_self_contained(path.read_text(encoding="utf-8"))
    assert "The model file holds no training history." in " ".join(page.text)
    assert len(images) == 2 + 2 + 1  # confusion, mistakes, filters of 2 layers, features


def test_report_checks_its_data(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="5 images and 4 labels"):
        viz.build_report(model, x[:5], y[:4])


def _dataset(tmp_path):
    x, y = corner_data(80, 12)
    path = tmp_path / "corners.npz"
    np.savez(
        path,
        x_train=(x[:60, ..., 0] * 255).astype(np.uint8),
        y_train=y[:60],
        x_test=(x[60:, ..., 0] * 255).astype(np.uint8),
        y_test=y[60:],
        class_names=np.array(["bottom-right", "top-left"]),
    )
    return path


def test_cli_train_report_then_report_command(tmp_path, capsys, monkeypatch):
    data = _dataset(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    model_path, first = tmp_path / "m.slidenet", tmp_path / "after-train.html"
    args = ["--dataset", str(data), "--verbose", "0", "--out", str(model_path)]
    assert main(["train", "--model", f"{tmp_path / 'nets.py'}:tiny", "--epochs", "1", *args]) == 0
    seen = {}
    real_write = report_cli.write

    def spy(model, *a, **kw):
        seen.setdefault("history", kw.get("history"))
        return real_write(model, *a, **kw)

    monkeypatch.setattr(report_cli, "write", spy)
    code = main(["train", "--resume", str(model_path), "--epochs", "2", "--report", str(first)])
    out = capsys.readouterr().out
    assert len(seen["history"]["loss"]) == 2  # the resumed checkpoint's epoch and this run's
    assert code == 0 and f"report: {first}" in out
    page, _ = check_self_contained(first.read_text(encoding="utf-8"))
    assert "loss and accuracy per epoch" in [a["alt"] for a in page.all("img")]
    assert "top-left" in " ".join(page.text)  # the data set's class names

    code = main(["report", str(model_path), "--examples", "1", "--limit", "10"])
    out = capsys.readouterr().out
    default = tmp_path / "m.html"  # the data set recorded in the model file, MODEL.html
    assert code == 0 and out.startswith(f"wrote {default}") and "10 images" in out
    assert "with training curves" in out
    page, images = check_self_contained(default.read_text(encoding="utf-8"))
    assert len(images) == 3 + 1 + 1 + 3


def test_cli_report_needs_a_dataset_for_a_plain_model_file(tmp_path, capsys):
    model, _, _ = trained_tiny(epochs=1, n=16)
    path = tmp_path / "plain.slidenet"
    model.save(path)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --dataset" in err
    assert slidenet.load_model(path).history.history["loss"]  # the file does keep its history

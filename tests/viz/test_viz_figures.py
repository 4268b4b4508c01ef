"""slidenet.viz figures: each writes a PNG of figsize * dpi pixels that is not blank."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from viz_helpers import corner_data, png_size_and_std, tiny_cnn, trained_tiny

import slidenet as keras
import slidenet.viz as viz


@pytest.fixture(scope="module")
def trained():
    return trained_tiny()


def _conv1d_model():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.layers.Input((20, 2)),
            keras.layers.Conv1D(3, 5, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


FIGURES = {
    "filters-first": lambda m, x, y: viz.plot_filters(m),
    "filters-deeper": lambda m, x, y: viz.plot_filters(m, 2),
    "filters-rgb": lambda m, x, y: viz.plot_filters(tiny_cnn(channels=3)),
    "filters-conv1d": lambda m, x, y: viz.plot_filters(_conv1d_model()),
    "activations": lambda m, x, y: viz.plot_activations(m, x[0]),
    "activations-conv1d": lambda m, x, y: viz.plot_activations(
        _conv1d_model(), np.linspace(0, 1, 40).reshape(20, 2)
    ),
    "history": lambda m, x, y: viz.plot_history(m.history),
    "confusion": lambda m, x, y: viz.plot_confusion_matrix(y, m.predict(x).argmax(1), ["b", "t"]),
    "most-confused": lambda m, x, y: viz.plot_most_confused(x, 1 - y, m.predict(x)),
    "most-confused-none": lambda m, x, y: viz.plot_most_confused(x[:4], y[:4], np.eye(2)[y[:4]]),
    "occlusion": lambda m, x, y: viz.plot_occlusion(m, x[0], patch=4, stride=2),
    "saliency": lambda m, x, y: viz.plot_saliency(m, x[1], class_names=["bottom", "top"]),
    "feature-visualization": lambda m, x, y: viz.plot_feature_visualization(m, 0, steps=5),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_writes_png_of_expected_size_that_is_not_blank(trained, tmp_path, name):
    model, x, y = trained
    fig = FIGURES[name](model, x, y)
    path = tmp_path / f"{name}.png"
    viz.save_figure(fig, path, dpi=80)
    width, height = (int(round(v * 80)) for v in fig.get_size_inches())
    size, std = png_size_and_std(path.read_bytes())
    assert size == (width, height)
    assert std > 5.0  # drawn content, not one flat colour
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_history_figure_has_a_panel_per_metric_and_the_curves(trained):
    model, _, _ = trained
    fig = viz.plot_history(model.history.history)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["loss", "val loss"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(), model.history.history["loss"])
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="no 'loss' values"):
        viz.plot_history({})


def test_confusion_matrix_counts_and_errors():
    counts = viz.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], n_classes=4)
    assert counts.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="label 2 but n_classes=2"):
        viz.confusion_matrix([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="3 labels but y_pred 2"):
        viz.confusion_matrix([0, 1, 1], [0, 1])
    fig = viz.plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["cat", "dog"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["1", "1", "1"]


def test_most_confused_shows_the_most_confident_mistakes_first():
    images = np.zeros((4, 5, 5))
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.3, 0.7], [0.9, 0.1], [0.95, 0.05], [0.2, 0.8]])  # mistakes: 0 and 2
    fig = viz.plot_most_confused(images, labels, probs, ["a", "b"], n=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true b\nsaid a 95%", "true a\nsaid b 70%"]


def test_filters_of_a_layer_without_filters_is_an_error(trained):
    model, _, _ = trained
    with pytest.raises(ValueError, match="MaxPooling2D '.*' has no filters"):
        viz.plot_filters(model, 1)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        viz.plot_filters(model, "nope")


def test_filters_first_layer_shows_each_kernel(trained):
    model, _, _ = trained
    fig = viz.plot_filters(model)
    images = [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]
    kernel = model.layers[0].kernel
    assert len(images) == kernel.shape[-1]
    np.testing.assert_allclose(images[2], kernel[:, :, 0, 2])


def test_import_slidenet_does_not_import_viz_or_matplotlib():
    code = "import slidenet, sys; print('matplotlib' in sys.modules, 'slidenet.viz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_corner_data_classes():
    x, y = corner_data(4, 12)
    assert x[y == 1][:, :4, :4].mean() > 0.7 and x[y == 0][:, -4:, -4:].mean() > 0.7

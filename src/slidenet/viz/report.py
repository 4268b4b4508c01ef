"""One self-contained HTML report of a trained classifier (``slidenet report``).

The page holds the summary with its arithmetic, the training curves (when the model file kept its
history), test loss and accuracy with a per-class table, the confusion matrix, the most confident
mistakes, the filters of every conv layer, inputs made to excite the last conv layer's filters,
and for a few test images the activation maps, occlusion and saliency maps. Every picture is a
PNG inlined as a ``data:`` URL and the page declares a Content-Security-Policy that allows nothing
else: it needs no network and no other file, so it can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

import numpy as np

from slidenet import __version__
from slidenet.layers.convolutional import Conv2D
from slidenet.models.summary import summary_text
from slidenet.utils.files import atomic_write
from slidenet.viz import figures
from slidenet.viz.attribution import class_probabilities

__all__ = ["build_report", "write_report"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.meta { color: #666; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; text-align: right; }
th { border-bottom: 1px solid #999; } .big { font-size: 1.3em; }
.example { border-top: 1px dashed #ccc; padding-top: 0.5em; } .nav a { color: #2060a0; }
"""


NAV = (
    '<p class="nav"><a href="#results">results</a> | <a href="#summary">summary</a> | '
    '<a href="#curves">training curves</a> | <a href="#confusion">confusion matrix</a> | '
    '<a href="#mistakes">mistakes</a> | <a href="#filters">filters</a> | '
    '<a href="#inside">inside the network</a></p>'
)


def _img(fig, alt: str) -> str:
    data = base64.b64encode(figures.figure_png(fig)).decode("ascii")
    width, height = (int(round(v * figures.DPI)) for v in fig.get_size_inches())
    return (
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" '
        f'alt="{html.escape(alt)}">'
    )


def _pick_examples(y, predicted, n: int) -> list[int]:
    """Up to n test images of different classes, correctly classified ones first."""
    chosen, seen = [], set()
    for want_correct in (True, False):
        for i, label in enumerate(y):
            if len(chosen) == n:
                return chosen
            if label not in seen and (predicted[i] == label) == want_correct:
                chosen.append(i)
                seen.add(int(label))
    return chosen


def build_report(
    model,
    x,
    y,
    class_names=None,
    title=None,
    dataset=None,
    history=None,
    examples=3,
    batch_size=256,
) -> str:
    """The HTML text of the report.

    Args:
        model: a built classifier (softmax outputs, or one sigmoid output).
        x: test images (N, H, W, C) scaled as in training; y: labels (N,).
        class_names: names of the classes (default 0, 1, ...). title: the page title.
        dataset: the data set's name, for the header. history: a History or dict (default
            ``model.history``, which model files keep). examples: images for the activation,
            occlusion and saliency maps. batch_size: for the predictions.
    """
    x = np.asarray(x)
    y = np.asarray(y).astype(np.int64)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"build_report: {len(x)} images and {len(y)} labels; give the same number (> 0)."
        )
    probs = class_probabilities(model.predict(x, batch_size=batch_size))
    n_classes = probs.shape[1]
    names = [str(c) for c in range(n_classes)] if class_names is None else list(class_names)
    if len(names) < n_classes:
        names += [str(c) for c in range(len(names), n_classes)]
    predicted = probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    loss = None
    if model.loss is not None:
        values = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        loss = float(values[0] if isinstance(values, list) else values)
    title = title or f"slidenet report: {model.name}"
    history = model.history if history is None else history
    logs = getattr(history, "history", history) or {}

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<p class="meta">'
        + html.escape(
            f"model '{model.name}', {model.count_params():,} parameters"
            + (f"; data set {dataset}" if dataset else "")
            + f"; {len(x):,} test images; slidenet {__version__}; "
            + datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        + "</p>",
        NAV,
        '<h2 id="results">Test results</h2>',
        f'<p class="big">accuracy <b>{accuracy:.2%}</b> ({int(np.sum(predicted == y)):,} of '
        f"{len(y):,})" + (f", loss {loss:.4f}" if loss is not None else "") + "</p>",
        _class_table(y, predicted, names),
        '<h2 id="summary">Summary</h2>',
        f"<pre>{html.escape(summary_text(model))}</pre>",
        '<h2 id="curves">Training curves</h2>',
    ]
    if logs.get("loss"):
        parts.append(_img(figures.plot_history(logs), "loss and accuracy per epoch"))
    else:
        parts.append("<p>The model file holds no training history.</p>")
    parts += [
        '<h2 id="confusion">Confusion matrix</h2>',
        _img(figures.plot_confusion_matrix(y, predicted, names), "confusion matrix"),
        '<h2 id="mistakes">Most confident mistakes</h2>',
        _img(figures.plot_most_confused(x, y, probs, names), "most confident mistakes"),
        '<h2 id="filters">Filters</h2>',
    ]
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    if not convs:
        parts.append("<p>The model has no convolution layer.</p>")
    for layer in convs:
        fig = figures.plot_filters(model, layer, max_filters=16 if layer is not convs[0] else 32)
        parts.append(_img(fig, f"filters of {layer.name}"))
    if convs:
        parts.append(
            f"<p>Inputs made by gradient ascent to excite filters of {html.escape(convs[-1].name)}"
            " (feature visualisation):</p>"
        )
        fig = figures.plot_feature_visualization(model, convs[-1], steps=30)
        parts.append(_img(fig, f"feature visualisation of {convs[-1].name}"))
    parts.append('<h2 id="inside">Inside the network, image by image</h2>')
    spatial = len(model._input_shape) == 3
    for i in _pick_examples(y, predicted, examples):
        p = predicted[i]
        heading = f"test image {i}: true {names[y[i]]}, predicted {names[p]} ({probs[i, p]:.1%})"
        parts.append(f'<div class="example"><h3>{html.escape(heading)}</h3>')
        parts.append(_img(figures.plot_activations(model, x[i]), f"activation maps of image {i}"))
        if spatial:
            parts.append(
                _img(figures.plot_occlusion(model, x[i], int(p), names), f"occlusion, image {i}")
            )
        parts.append(
            _img(figures.plot_saliency(model, x[i], int(p), names), f"saliency of image {i}")
        )
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _class_table(y, predicted, names) -> str:
    rows = ["<table><tr><th>class</th><th>images</th><th>correct</th><th>accuracy</th></tr>"]
    for c, name in enumerate(names):
        n = int(np.sum(y == c))
        k = int(np.sum((y == c) & (predicted == c)))
        acc = f"{k / n:.2%}" if n else "-"
        rows.append(
            f"<tr><td>{html.escape(str(name))}</td><td>{n:,}</td><td>{k:,}</td><td>{acc}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def write_report(path, model, x, y, **kwargs) -> None:
    """Write :func:`build_report` (same arguments) to ``path`` atomically, as UTF-8."""
    text = build_report(model, x, y, **kwargs)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))

"""Figures of a network: filters, activation maps, training curves, confusion matrix, mistakes,
and the attribution maps of :mod:`slidenet.viz.attribution`.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without pyplot (no
window, no global state; it renders with Agg). Save it with :func:`save_figure`, which writes
a PNG of exactly ``figsize * dpi`` pixels, atomically.
"""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.figure import Figure

from slidenet._validation import fmt_shape
from slidenet.layers.convolutional import Conv1D, Conv2D
from slidenet.utils.files import atomic_write
from slidenet.viz.attribution import (
    _as_batch,
    activation_maps,
    class_probabilities,
    feature_visualization,
    occlusion_map,
    resolve_layer,
    saliency_map,
)

__all__ = [
    "confusion_matrix",
    "figure_png",
    "plot_activations",
    "plot_confusion_matrix",
    "plot_feature_visualization",
    "plot_filters",
    "plot_history",
    "plot_most_confused",
    "plot_occlusion",
    "plot_saliency",
    "save_figure",
]

DPI = 100


# ----- saving -----------------------------------------------------------------------------------
def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, ``figsize * dpi`` pixels (no tight cropping)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path, dpi: int = DPI) -> None:
    """Write ``fig`` to ``path`` as a PNG of ``figsize * dpi`` pixels, atomically."""
    data = figure_png(fig, dpi)
    atomic_write(path, lambda f: f.write(data))


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _show(ax, image, cmap="gray", **kwargs):
    """An image (H, W), (H, W, 1) or (H, W, 3) on ``ax`` without ticks."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] != 3:
        image = image.mean(axis=-1)
    artist = ax.imshow(image, cmap=None if image.ndim == 3 else cmap, **kwargs)
    _blank(ax)
    return artist


# ----- filters ----------------------------------------------------------------------------------
def _conv_index(model, layer) -> int:
    if layer is None:
        for i, lay in enumerate(model.layers):
            if isinstance(lay, Conv2D):
                return i
        raise ValueError(f"plot_filters: model '{model.name}' has no Conv2D or Conv1D layer.")
    i = resolve_layer(model, layer)
    if not isinstance(model.layers[i], Conv2D):
        raise ValueError(
            f"plot_filters: {model.layers[i].label} has no filters; name a Conv2D or Conv1D layer."
        )
    return i


def plot_filters(model, layer=None, max_filters=32, max_channels=8, cols=8) -> Figure:
    """The kernels of a convolution layer as images.

    A first layer on 1 or 3 channels shows each filter as one picture (grey, or RGB stretched to
    [0, 1] per filter). Deeper layers show one row per filter and one column per input channel
    (the first ``max_channels``), each slice in a blue-white-red scale centred on zero, shared by
    the whole layer, so signs and sizes compare. Conv1D filters are drawn as channels x width.

    Args:
        model: a built Sequential or graph Model.
        layer: index, name or Layer (default: the first conv layer).
        max_filters: draw at most this many filters. max_channels: input channels per filter.
        cols: columns of the grid for first-layer filters.
    """
    i = _conv_index(model, layer)
    conv = model.layers[i]
    kernel = np.asarray(conv.kernel, dtype=np.float64)
    if isinstance(conv, Conv1D):  # (F, D, K) -> (1, F, D, K): one row of width F per channel
        kernel = kernel[None]
    fh, fw, d, k = kernel.shape
    n = min(k, max_filters)
    one_picture = d in (1, 3) and not isinstance(conv, Conv1D)
    title = f"{conv.label}: {n} of {k} filters, {fh}x{fw}x{d}"
    if one_picture:
        rows, cols = _grid(n, cols)
        fig = Figure(figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.6))
        axes = fig.subplots(rows, cols, squeeze=False)
        for f, ax in enumerate(axes.flat):
            if f >= n:
                ax.set_axis_off()
                continue
            w = kernel[..., f]
            if d == 3:
                lo, hi = w.min(), w.max()
                _show(ax, (w - lo) / (hi - lo) if hi > lo else np.full_like(w, 0.5))
            else:
                _show(ax, w[..., 0])
            ax.set_title(str(f), fontsize=7)
    else:
        ch = min(d, max_channels)
        fig = Figure(figsize=(0.8 * ch + 1.2, 0.8 * n + 0.6))
        axes = fig.subplots(n, ch, squeeze=False)
        limit = float(np.abs(kernel[..., :ch, :n]).max()) or 1.0
        for f in range(n):
            for c in range(ch):
                ax = axes[f, c]
                w = kernel[:, :, c, f]
                image = w.T if isinstance(conv, Conv1D) else w
                _show(ax, image, cmap="bwr", vmin=-limit, vmax=limit)
                if f == 0:
                    ax.set_title(f"in {c}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(f"filter {f}", fontsize=7)
        if ch < d:
            title += f" (first {ch} of {d} input channels)"
    fig.suptitle(title, fontsize=9)
    return fig


# ----- activation maps --------------------------------------------------------------------------
def plot_activations(model, image, max_maps=8) -> Figure:
    """The input and the activation maps of every conv and pool layer for one image.

    One row per layer: up to ``max_maps`` channels, each with its own grey scale (black = the
    map's lowest value, white = its highest). Computed layer by layer
    (:func:`slidenet.viz.activation_maps`).
    """
    layers = activation_maps(model, image)
    if not layers:
        raise ValueError(f"plot_activations: model '{model.name}' has no conv or pool layer.")
    cols = min(max_maps, max(y.shape[-1] for _, y in layers))
    rows = len(layers) + 1
    fig = Figure(figsize=(1.05 * cols + 1.6, 1.05 * rows + 0.3))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].set_axis_on()
    _show(axes[0, 0], np.asarray(image).reshape(model._input_shape))
    axes[0, 0].set_ylabel("input", fontsize=7)
    for r, (layer, maps) in enumerate(layers, start=1):
        if maps.ndim == 2:  # 1D layer: (Lo, K) -> one strip per channel
            maps = maps[None]
        for c in range(min(cols, maps.shape[-1])):
            ax = axes[r, c]
            ax.set_axis_on()
            _show(ax, maps[..., c], aspect="auto" if maps.shape[0] == 1 else "equal")
            if r == 1:
                ax.set_title(str(c), fontsize=6)
        axes[r, 0].set_ylabel(
            f"{layer.name}\n{'x'.join(map(str, maps.shape))}", fontsize=7, rotation=0, ha="right"
        )
    fig.subplots_adjust(left=0.16, right=0.99, top=0.95, bottom=0.02, wspace=0.08, hspace=0.35)
    return fig


# ----- training curves, confusion matrix, mistakes ----------------------------------------------
def plot_history(history) -> Figure:
    """Loss and accuracy per epoch (training, and validation when recorded).

    Args:
        history: a ``History`` (``model.history``, kept in model files) or its ``.history`` dict.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs.get("loss"):
        raise ValueError(
            "plot_history: the history has no 'loss' values; pass model.history after fit (or a "
            "model file saved after training)."
        )
    panels = [("loss", "loss")]
    for key in ("accuracy", "binary_accuracy", "sparse_categorical_accuracy"):
        if logs.get(key):
            panels.append((key, "accuracy"))
            break
    fig = Figure(figsize=(4.0 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for name, style in ((key, "o-"), (f"val_{key}", "s--")):
            values = logs.get(name)
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, markersize=3, label=name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, n_classes=None) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2])
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 1]])
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"confusion_matrix: y_true has {y_true.size} labels but y_pred {y_pred.size}."
        )
    if y_true.size and min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("confusion_matrix: labels must be 0, 1, ...; got a negative one.")
    top = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    n = top if n_classes is None else int(n_classes)
    if n < top:
        raise ValueError(f"confusion_matrix: label {top - 1} but n_classes={n}.")
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def plot_confusion_matrix(y_true, y_pred, class_names=None) -> Figure:
    """The confusion matrix with its counts written in; rows true, columns predicted."""
    n = None if class_names is None else len(class_names)
    counts = confusion_matrix(y_true, y_pred, n)
    n = counts.shape[0]
    names = [str(c) for c in range(n)] if class_names is None else [str(c) for c in class_names]
    side = max(3.5, 0.45 * n + 1.8)
    fig = Figure(figsize=(side + 0.8, side))
    ax = fig.subplots()
    artist = ax.imshow(counts, cmap="Blues")
    fig.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 2 else 0, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(counts) / max(1, counts.sum())
    ax.set_title(f"{counts.sum():,} images, accuracy {accuracy:.2%}", fontsize=9)
    middle = counts.max() / 2
    for (r, c), v in np.ndenumerate(counts):
        if v:
            color = "white" if v > middle else "black"
            ax.text(c, r, str(v), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    return fig


def plot_most_confused(images, y_true, probs, class_names=None, n=8) -> Figure:
    """The ``n`` misclassified images the model was most sure about, with true and predicted class.

    Args:
        images: (N, H, W, C) or (N, H, W). y_true: (N,) labels.
        probs: (N, K) model outputs (one sigmoid column is read as class 1's probability).
    """
    images = np.asarray(images)
    y_true = np.asarray(y_true).astype(np.int64)
    probs = class_probabilities(probs)
    if not len(images) == len(y_true) == len(probs):
        raise ValueError(
            f"plot_most_confused: {len(images)} images, {len(y_true)} labels and {len(probs)} "
            "outputs; they must match."
        )
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:n]
    names = class_names or [str(c) for c in range(probs.shape[1])]
    rows, cols = _grid(max(1, len(order)), 8)
    fig = Figure(figsize=(1.3 * cols + 0.2, 1.55 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    if not len(order):
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    for ax, idx in zip(axes.flat, order, strict=False):
        ax.set_axis_on()
        _show(ax, images[idx])
        p, t = predicted[idx], y_true[idx]
        ax.set_title(f"true {names[t]}\nsaid {names[p]} {probs[idx, p]:.0%}", fontsize=7)
    fig.suptitle(f"most confident mistakes: {len(order)} of {len(wrong):,} errors", fontsize=9)
    fig.subplots_adjust(top=1 - 0.45 / fig.get_size_inches()[1], hspace=0.6)
    return fig


# ----- attribution maps -------------------------------------------------------------------------
def _heat_figure(image, heat, input_shape, title, cmap, symmetric) -> Figure:
    """Image, map (with a colour bar) and the map over the image; signals (L, C) as strips."""
    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    axes = fig.subplots(1, 3)
    img = np.asarray(image).reshape(input_shape)
    if img.ndim == 2:  # a signal (L, C): one strip per channel, and the map as one strip
        img, heat = img.T, np.atleast_2d(heat)
        aspect = {"aspect": "auto"}
    else:
        aspect = {}
    _show(axes[0], img, **aspect)
    axes[0].set_title("image", fontsize=8)
    limit = float(np.abs(heat).max()) or 1.0
    scale = {"vmin": -limit, "vmax": limit} if symmetric else {"vmin": 0, "vmax": limit}
    artist = _show(axes[1], heat, cmap=cmap, **scale, **aspect)
    axes[1].set_title("map", fontsize=8)
    fig.colorbar(artist, ax=axes[1], fraction=0.046, pad=0.04)
    if aspect:
        _show(axes[2], heat, cmap=cmap, **scale, **aspect)
    else:
        _show(axes[2], img)
        _show(axes[2], heat, cmap=cmap, alpha=0.55, **scale)
    axes[2].set_title("overlay", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def _class_name(class_names, c) -> str:
    return str(c) if class_names is None else f"{class_names[c]}"


def plot_occlusion(model, image, class_index=None, class_names=None, **kwargs) -> Figure:
    """Image, occlusion map and overlay (:func:`slidenet.viz.occlusion_map`; keyword arguments
    such as ``patch``, ``stride`` and ``fill`` go to it). Red: hiding this part lowers the class
    probability (evidence for it); blue: raises it."""
    x = _as_batch(model, image, "plot_occlusion")
    probs = class_probabilities(model.predict(x))
    c = int(probs[0].argmax()) if class_index is None else class_index
    heat = occlusion_map(model, image, c, **kwargs)
    name = _class_name(class_names, c)
    title = f"occlusion: drop in P({name}) when hidden (unhidden P({name}) = {probs[0, c]:.2f})"
    return _heat_figure(x, heat, model._input_shape, title, "bwr", symmetric=True)


def plot_saliency(model, image, class_index=None, class_names=None, score="logit") -> Figure:
    """Image, gradient saliency (largest |gradient| over channels) and overlay
    (:func:`slidenet.viz.saliency_map`)."""
    x = _as_batch(model, image, "plot_saliency")
    probs = class_probabilities(model.predict(x))
    c = int(probs[0].argmax()) if class_index is None else class_index
    grad = saliency_map(model, image, c, score=score)
    heat = np.abs(grad).max(axis=-1)
    title = f"saliency: |d {score}({_class_name(class_names, c)}) / d pixel|"
    return _heat_figure(x, heat, model._input_shape, title, "inferno", symmetric=False)


def plot_feature_visualization(model, layer, filters=None, steps=40, cols=8, **kwargs) -> Figure:
    """Images made by gradient ascent to excite each of ``filters`` of ``layer`` (default: the
    first 8), with the mean activation before and after (:func:`feature_visualization`)."""
    i = resolve_layer(model, layer)
    target = model.layers[i]
    if target._out is None or len(target._out) < 1:
        raise ValueError(f"plot_feature_visualization: {target.label} is not built.")
    filters = list(range(min(8, target._out[-1]))) if filters is None else list(filters)
    if not filters:
        raise ValueError("plot_feature_visualization: filters is empty; name at least one.")
    rows, cols = _grid(len(filters), cols)
    fig = Figure(figsize=(1.3 * cols + 0.2, 1.5 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, f in zip(axes.flat, filters, strict=False):
        image, scores = feature_visualization(model, i, f, steps=steps, **kwargs)
        ax.set_axis_on()
        _show(ax, image)
        ax.set_title(f"{f}: {scores[0]:.2f}->{scores[-1]:.2f}", fontsize=7)
    fig.suptitle(
        f"{target.label} {fmt_shape(target.output_shape)}: inputs that excite each filter "
        "(mean activation before -> after)",
        fontsize=8,
    )
    return fig

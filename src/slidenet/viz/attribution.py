"""What a trained network looks at: activation maps, occlusion, saliency, feature visualisation.

Pure NumPy on a :class:`slidenet.Sequential` or a graph :class:`slidenet.Model` (one input, one
output); the pictures are drawn by :mod:`slidenet.viz.figures`.
Every function runs the layers one by one, ``for layer in model.layers: x = layer(x)``, in
inference mode (dropout off, batch-norm running statistics), so each layer's output is exactly
what that layer computes. (``model.predict`` may apply a convolution's ReLU after the following
max pool, an equivalent but faster order; its intermediate maps would not be the layer's own.)

Images are one example (H, W, C), or (H, W) for a one-channel model, with pixel values as the
model was trained on (the CLI's data sets are in [0, 1]).
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.layers.base import Layer

__all__ = [
    "activation_maps",
    "class_probabilities",
    "feature_visualization",
    "occlusion_map",
    "resolve_layer",
    "saliency_map",
]


# ----- running the layers one by one ----------------------------------------------------------
def _as_batch(model, image, who: str) -> np.ndarray:
    """One image (H, W, C) or (H, W) -> a batch (1, H, W, C) in the model's dtype."""
    if not model.built:
        raise ValueError(f"{who}: model '{model.name}' is not built; give it an input shape first.")
    want = model._input_shape
    x = np.asarray(image)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{who}: image must hold numbers, got dtype {x.dtype}.")
    if x.shape == tuple(want[:-1]) and want[-1] == 1:
        x = x[..., None]
    if x.shape != tuple(want):
        raise ValueError(
            f"{who}: image has shape {fmt_shape(x.shape)} but model '{model.name}' takes one "
            f"example of {fmt_shape(want)}; pass a single image, e.g. x_test[0]."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{who}: image contains NaN or Inf.")
    return x[None].astype(model.dtype)


def _forward(model, x, stop=None):
    """Run layers 0..stop (default all) one by one in inference mode; returns every output.

    For a graph Model, "layer i's output" is ``model.layers[i].output`` (a layer called once);
    one pass of a model with those outputs computes them all.
    """
    last = len(model.layers) - 1 if stop is None else stop
    if _is_graph(model):
        probe = _probe(model, model.layers[: last + 1])
        outputs = probe(x, training=False)
        return outputs if isinstance(outputs, list) else [outputs]
    outputs = []
    for layer in model.layers[: last + 1]:
        x = layer(x, training=False)
        outputs.append(x)
    return outputs


def _backward(model, grad, stop, from_logits=False, x=None):
    """Backpropagate ``grad`` (d score / d output of layer ``stop``) down to the input ``x``
    (after ``_forward(model, x, stop)``).

    With ``from_logits`` the gradient is taken as being with respect to layer ``stop``'s
    pre-activation (its activation's backward is skipped).
    """
    if _is_graph(model):
        probe = _probe(model, [model.layers[stop]])
        _, state = probe.forward_with_cache(x, training=False)
        return probe.backward_with_cache(grad, state, from_logits=from_logits)
    for i in range(stop, -1, -1):
        layer = model.layers[i]
        if i == stop and from_logits:
            grad = layer.backward(grad, from_logits=True)
        else:
            grad = layer.backward(grad)
    return grad


def _is_graph(model) -> bool:
    from slidenet.models.functional import Model

    return isinstance(model, Model)


def _probe(model, layers):
    """A Model from ``model``'s input to the outputs of ``layers`` (weights shared)."""
    from slidenet.models.functional import Model
    from slidenet.models.graph import layer_output

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"model '{model.name}' has {len(model.inputs)} inputs and {len(model.outputs)} "
            "outputs; activation maps and attributions need one of each."
        )
    outputs = [layer_output(layer) for layer in layers]  # a shared layer: its last call
    return Model(model.inputs[0], outputs if len(outputs) > 1 else outputs[0], name=model.name)


def resolve_layer(model, layer) -> int:
    """The index of ``layer`` in ``model.layers``: an index, a layer name or a Layer object."""
    names = [lay.name for lay in model.layers]
    if isinstance(layer, Layer):
        for i, lay in enumerate(model.layers):
            if lay is layer:
                return i
        raise ValueError(f"layer {layer.label} is not in model '{model.name}'.")
    if isinstance(layer, str):
        if layer in names:
            return names.index(layer)
        raise ValueError(
            f"model '{model.name}' has no layer named {layer!r}; its layers: {', '.join(names)}."
        )
    if isinstance(layer, int | np.integer) and not isinstance(layer, bool):
        if -len(names) <= layer < len(names):
            return int(layer) % len(names)
        raise ValueError(
            f"layer index {layer} is out of range for model '{model.name}' with "
            f"{len(names)} layers (0..{len(names) - 1})."
        )
    raise TypeError(f"layer must be an index, a name or a Layer, got {type(layer).__name__}.")


def activation_maps(model, image, kinds=("Conv", "Pooling")) -> list[tuple[Layer, np.ndarray]]:
    """The output of every conv and pool layer for one image.

    Args:
        model: a built Sequential or graph Model. image: (H, W, C) or (H, W).
        kinds: substrings of the layer class names to keep (default conv and pooling layers;
            ``()`` keeps every layer).

    Returns:
        A list of (layer, maps) in model order; maps is (Ho, Wo, K) for 2D layers, (Lo, K) for 1D.
        Global pooling layers, whose outputs have no spatial axes, are left out.
    """
    x = _as_batch(model, image, "activation_maps")
    outputs = _forward(model, x)
    keep = []
    for layer, y in zip(model.layers, outputs, strict=True):
        name = type(layer).__name__
        if (not kinds or any(k in name for k in kinds)) and y.ndim >= 3:
            keep.append((layer, y[0]))
    return keep


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs (N, K) -> per-class scores (N, K); one sigmoid output p -> (1 - p, p)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        raise ValueError(
            f"class_probabilities: expected outputs (N, classes), got {fmt_shape(outputs.shape)}."
        )
    if outputs.shape[1] == 1:
        return np.concatenate([1 - outputs, outputs], axis=1)
    return outputs


def _check_class(model, class_index, probs, who) -> int:
    n = probs.shape[1]
    if class_index is None:
        return int(np.argmax(probs[0]))
    if isinstance(class_index, bool) or not isinstance(class_index, int | np.integer):
        raise TypeError(f"{who}: class_index must be an int, got {type(class_index).__name__}.")
    if not 0 <= class_index < n:
        raise ValueError(
            f"{who}: class_index={class_index} but model '{model.name}' has {n} classes "
            f"(0..{n - 1})."
        )
    return int(class_index)


# ----- occlusion --------------------------------------------------------------------------------
def _starts(n: int, patch: int, stride: int) -> list[int]:
    """Patch positions along one axis: every ``stride`` pixels, plus the last one that fits."""
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


def occlusion_map(
    model, image, class_index=None, patch=None, stride=None, fill=None, batch_size=64
) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus 2014): how much the class probability drops when a
    grey square hides each part of the image.

    A ``patch`` x ``patch`` grey square slides over the image every ``stride``
    pixels (the last row and column of positions touch the border, so every pixel is covered).
    For each position the drop p(class | image) - p(class | occluded image) is recorded; the
    value of a pixel is the mean drop over the positions whose square covers it. Positive values
    mark evidence for the class, negative values evidence against it.

    Args:
        model: a built classifier (softmax outputs, or one sigmoid output).
        image: (H, W, C) or (H, W). class_index: the class to explain (default: the predicted one).
        patch: square side in pixels (default max(1, min(H, W) // 4)).
        stride: step in pixels (default max(1, patch // 2)).
        fill: the square's value (default: the image's mean, per channel: the paper's grey
            square on mean-subtracted inputs). A square brighter than the background can itself
            look like evidence (a light patch on a dark digit adds strokes), so keep it neutral.
        batch_size: occluded images per forward pass.

    Returns:
        (H, W) float64 map of mean probability drops.
    """
    who = "occlusion_map"
    x = _as_batch(model, image, who)
    h, w = x.shape[1:3]
    if x.ndim != 4:
        raise ValueError(f"{who}: needs an image model with input (H, W, C), got {x.shape[1:]}.")
    patch = max(1, min(h, w) // 4) if patch is None else patch
    if isinstance(patch, bool) or not isinstance(patch, int | np.integer) or not 1 <= patch:
        raise ValueError(f"{who}: patch must be a positive integer, got {patch!r}.")
    if patch > min(h, w):
        raise ValueError(
            f"{who}: patch={patch} is larger than the {h}x{w} image; use patch <= {min(h, w)}."
        )
    stride = max(1, patch // 2) if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise ValueError(f"{who}: stride must be a positive integer, got {stride!r}.")
    fill = x.mean(axis=(0, 1, 2)) if fill is None else fill
    base = class_probabilities(_forward(model, x)[-1])
    c = _check_class(model, class_index, base, who)
    positions = [(i, j) for i in _starts(h, patch, stride) for j in _starts(w, patch, stride)]
    drops = np.empty(len(positions))
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        batch = np.repeat(x, len(chunk), axis=0)
        for k, (i, j) in enumerate(chunk):
            batch[k, i : i + patch, j : j + patch, :] = fill
        probs = class_probabilities(_forward(model, batch)[-1])
        drops[start : start + len(chunk)] = base[0, c] - probs[:, c]
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (i, j), drop in zip(positions, drops, strict=True):
        total[i : i + patch, j : j + patch] += drop
        count[i : i + patch, j : j + patch] += 1
    return total / count


# ----- gradients with respect to the input ------------------------------------------------------
def saliency_map(model, image, class_index=None, score="logit") -> np.ndarray:
    """Gradient saliency (Simonyan et al. 2014): d score / d image by the backward pass.

    The class score's gradient goes through every layer's hand-written ``backward`` down to the
    input, exactly as in training but with respect to the pixels instead of the weights.

    Args:
        model: a built Sequential or graph Model. image: (H, W, C) or (H, W).
        class_index: which output to explain (default: the predicted class).
        score: ``"logit"`` (default) differentiates the class's pre-activation score when the
            last layer ends in softmax or sigmoid (its ``logits``; the gradient of a softmax
            probability also depends on every other class, the logit's does not);
            ``"probability"`` differentiates the model's output itself (for a one-unit sigmoid
            model, class 0 is 1 - p). A last layer without softmax or sigmoid is differentiated
            as it is, for both.

    Returns:
        The gradient, shaped like the model's input example (H, W, C). Pictures usually show
        its largest absolute value over channels.
    """
    who = "saliency_map"
    if score not in ("logit", "probability"):
        raise ValueError(f"{who}: score must be 'logit' or 'probability', got {score!r}.")
    x = _as_batch(model, image, who)
    out = _forward(model, x)[-1]
    if out.ndim != 2:
        raise ValueError(f"{who}: needs a classifier with outputs (N, K), got {out.shape}.")
    c = _check_class(model, class_index, class_probabilities(out), who)
    last = model.layers[-1]
    logits = getattr(last, "logits", None)
    from_logits = score == "logit" and logits is not None
    grad = np.zeros_like(out)
    if out.shape[1] == 1:  # one sigmoid output: class 1 is p (or its logit), class 0 is 1 - p
        grad[0, 0] = 1.0 if c == 1 else -1.0
    else:
        grad[0, c] = 1.0
    dx = _backward(model, grad, len(model.layers) - 1, from_logits=from_logits, x=x)
    return np.asarray(dx[0])


def _channel_objective(y: np.ndarray, filter_index: int) -> tuple[float, np.ndarray]:
    """Mean of channel ``filter_index`` of y (1, ..., K) and its gradient with respect to y."""
    grad = np.zeros_like(y)
    sl = (0, ..., filter_index)
    grad[sl] = 1.0 / y[sl].size
    return float(np.mean(y[sl])), grad


def feature_visualization(
    model, layer, filter_index, steps=40, step_size=0.05, seed=0, value_range=(0.0, 1.0)
):
    """Feature visualisation: gradient ascent on the input to excite one filter.

    Starts from grey noise (mean of ``value_range``, spread 5 % of it, seeded) and repeats
    ``x += step_size * g / rms(g)`` where g is the gradient of the mean of the filter's activation
    map with respect to the input; after each step x is clipped to ``value_range``. A filter whose
    ReLU output is zero everywhere has no gradient; for such a step the gradient of its
    pre-activation is used instead, so it can come alive.

    Args:
        model: a built Sequential or graph Model.
        layer: index, name or Layer of a layer with a channel axis
            (a conv or pool layer; Dense units also work).
        filter_index: the channel (filter) to maximise. steps: ascent steps.
        step_size: the length of one step in units of the normalised gradient.
        seed: for the starting noise. value_range: (low, high) of valid pixel values.

    Returns:
        (image, scores): the image (H, W, C) that excites the filter, and the filter's mean
        activation before each step and after the last (``steps + 1`` floats; fewer when the
        gradient vanished and the ascent stopped early).
    """
    who = "feature_visualization"
    i = resolve_layer(model, layer)
    target = model.layers[i]
    if not model.built:
        raise ValueError(f"{who}: model '{model.name}' is not built; give it an input shape first.")
    k = target._out[-1]
    if isinstance(filter_index, bool) or not isinstance(filter_index, int | np.integer):
        raise TypeError(f"{who}: filter_index must be an int, got {type(filter_index).__name__}.")
    if not 0 <= filter_index < k:
        raise ValueError(
            f"{who}: {target.label} has {k} channels; filter_index={filter_index} is not in "
            f"0..{k - 1}."
        )
    lo, hi = (float(v) for v in value_range)
    if not lo < hi:
        raise ValueError(
            f"{who}: value_range must be (low, high) with low < high, got {value_range}."
        )
    rng = np.random.default_rng(seed)
    shape = (1, *model._input_shape)
    x = ((lo + hi) / 2 + 0.05 * (hi - lo) * rng.standard_normal(shape)).astype(model.dtype)
    x = np.clip(x, lo, hi)
    can_skip_relu = getattr(target, "activation", None) == "relu"
    scores = []
    for _ in range(steps):
        y = _forward(model, x, stop=i)[-1]
        score, grad = _channel_objective(y, filter_index)
        scores.append(score)
        dead = can_skip_relu and not np.any(y[..., filter_index] > 0)
        g = _backward(model, grad, i, from_logits=dead, x=x)
        rms = float(np.sqrt(np.mean(np.square(g, dtype=np.float64))))
        if rms == 0.0:
            break
        x = np.clip(x + (step_size / rms) * g, lo, hi).astype(model.dtype)
    scores.append(_channel_objective(_forward(model, x, stop=i)[-1], filter_index)[0])
    return x[0], scores

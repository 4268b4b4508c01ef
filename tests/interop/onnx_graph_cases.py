"""Graph models (functional API) for the ONNX tests (imported by name; not a conftest.py).

* ``GRAPH_CASES``: named functional Models with branches, merges, several inputs and outputs,
  shared layers and nested Models; ``build_graph(name)`` makes one with random weights.
* ``inputs_for(model)``: random NHWC inputs in the form ``model.predict`` takes them.
* ``outputs_of(model, y)``: ``model.predict``'s result as a list, in ``model.output_names`` order.
* ``ort_run(path, xs)``: ONNX Runtime's outputs (a list) for the inputs ``xs`` (a list, in order).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx_cases import randomize

import slidenet
from slidenet import layers as L

__all__ = ["GRAPH_CASES", "build_graph", "inputs_for", "ort_run", "outputs_of"]


def _residual_add():
    x = slidenet.Input((6, 5, 3), name="image")
    h = L.Conv2D(3, 3, padding="same", use_bias=False)(x)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = L.Conv2D(3, 3, padding="same")(h)
    y = L.ReLU()(L.Add()([h, x]))
    return slidenet.Model(x, L.Dense(4)(L.Flatten()(y)), name="residual_add")


def _inception():
    x = slidenet.Input((7, 7, 2))
    b1 = L.Conv2D(3, 1, activation="relu")(x)
    b2 = L.Conv2D(4, 3, padding="same", activation="relu")(L.Conv2D(2, 1)(x))
    b3 = L.Conv2D(2, 1)(L.MaxPooling2D(3, strides=1, padding="same")(x))
    h = L.Concatenate()([b1, b2, b3])
    h = L.MaxPooling2D(2)(h)
    return slidenet.Model(x, L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(h)))


def _concat_axes():
    x = slidenet.Input((4, 4, 2))
    c = L.Conv2D(2, 3, padding="same")(x)
    rows = L.Concatenate(axis=1)([c, x])  # (8, 4, 2)
    cols = L.Concatenate(axis=-2)([x, c, x])  # (4, 12, 2)
    flat = L.Concatenate()([L.Flatten()(rows), L.Flatten()(cols)])
    return slidenet.Model(x, [L.Dense(3)(flat), rows, cols])


def _merges():
    x = slidenet.Input((5, 5, 2))
    a = L.Conv2D(3, 3, padding="same")(x)
    b = L.Conv2D(3, 1, activation="tanh")(x)
    c = L.Conv2D(3, 2, padding="same", activation="sigmoid")(x)
    merged = [
        L.Add()([a, b, c]),
        L.Subtract()([a, b]),
        L.Multiply()([a, b, c]),
        L.Average()([a, c]),
        L.Maximum()([a, b, c]),
        L.Minimum()([b, c]),
    ]
    image = L.Concatenate()(merged)
    flat = L.Dense(4)(L.Flatten()(x))  # merges of channels-last tensors too
    vec = L.Average()([flat, L.Dense(4, activation="relu")(flat), L.Dense(4)(flat)])
    vec = L.Subtract()([L.Maximum()([vec, flat]), L.Multiply()([vec, flat])])
    return slidenet.Model(x, [image, vec])


def _two_inputs():
    image = slidenet.Input((6, 6, 1), name="image")
    meta = slidenet.Input((3,), name="meta")
    h = L.GlobalMaxPooling2D()(L.Conv2D(4, 3, activation="relu")(image))
    h = L.Concatenate()([h, L.Dense(2, activation="relu")(meta)])
    return slidenet.Model([image, meta], L.Dense(3, activation="softmax")(h), name="two_inputs")


def _two_outputs():
    x = slidenet.Input((6, 6, 2))
    trunk = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    heatmap = L.Conv2D(1, 1, activation="sigmoid", name="heatmap")(trunk)
    probs = L.Dense(3, activation="softmax", name="probs")(L.Flatten()(L.MaxPooling2D(2)(trunk)))
    return slidenet.Model(x, [probs, heatmap])


def _shared():
    left = slidenet.Input((6, 6, 1), name="left")
    right = slidenet.Input((6, 6, 1), name="right")
    conv = L.Conv2D(3, 3, activation="relu", name="shared_conv")
    embed = L.Dense(4, name="shared_dense")
    e1 = embed(L.Flatten()(conv(left)))
    e2 = embed(L.Flatten()(conv(right)))
    return slidenet.Model([left, right], L.Dense(1)(L.Subtract()([e1, e2])), name="siamese")


def _nested():
    inner_in = slidenet.Input((5, 5, 2))
    h = L.Conv2D(2, 3, padding="same", name="conv")(inner_in)
    inner = slidenet.Model(inner_in, L.BatchNormalization(name="bn")(h), name="inner")
    x = slidenet.Input((5, 5, 2), name="x")
    twice = inner(inner(x))  # a nested model called twice: one set of weights
    outer = slidenet.Model(x, L.Add()([twice, x]), name="middle")
    y = L.Conv2D(2, 1, name="conv")(outer(x))  # same layer name as inside: kept apart
    return slidenet.Model(x, y, name="nested")


def _residual_block_in_graph():
    x = slidenet.Input((6, 6, 3))
    a = L.ResidualBlock(4, strides=2)(x)
    b = L.Conv2D(4, 1, strides=2)(x)
    return slidenet.Model(x, L.Maximum()([a, b]))


def _shared_residual_block():
    x = slidenet.Input((6, 6, 4))
    block = L.ResidualBlock(4)
    y = block(block(x))  # called twice: imported as shared Conv2D / BatchNormalization layers
    return slidenet.Model(x, L.Add()([y, block(x)]))


def _dict_io():
    img = slidenet.Input((4, 4, 3), name="img")
    sig = slidenet.Input((8, 2), name="sig")
    s = L.GlobalAveragePooling1D()(L.Conv1D(3, 3, padding="same")(sig))
    i = L.GlobalMaxPooling2D()(L.Conv2D(3, 2)(img))
    return slidenet.Model({"img": img, "sig": sig}, {"sum": L.Add()([s, i]), "sig_map": sig})


def _duplicate_outputs():
    x = slidenet.Input((5,), name="x")
    y = L.Dense(3, name="dense")(x)
    return slidenet.Model(x, [y, x, y])


def _chain():
    x = slidenet.Input((6, 6, 1))
    h = L.MaxPooling2D(2)(L.Conv2D(2, 3, padding="same", activation="relu")(x))
    return slidenet.Model(x, L.Dense(3)(L.Flatten()(h)))


GRAPH_CASES = {
    "residual-add": _residual_add,
    "inception-concat": _inception,
    "concat-axes": _concat_axes,
    "all-merges": _merges,
    "two-inputs": _two_inputs,
    "two-outputs": _two_outputs,
    "shared-layers": _shared,
    "nested-models": _nested,
    "residual-block-in-graph": _residual_block_in_graph,
    "shared-residual-block": _shared_residual_block,
    "dict-inputs-outputs": _dict_io,
    "duplicate-outputs": _duplicate_outputs,
    "chain": _chain,
}


def build_graph(name: str, seed: int = 0):
    return randomize(GRAPH_CASES[name](), seed)


def inputs_for(model, n: int = 3, seed: int = 1) -> list[np.ndarray]:
    """One random float32 batch per model input, in the order of ``model.inputs``."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, *t.shape[1:])).astype(np.float32) for t in model.inputs]


def predict(model, xs: list[np.ndarray]) -> list[np.ndarray]:
    """``model.predict`` on ``xs`` (given as its input structure wants), as a list."""
    struct = getattr(model, "_input_struct", "single")
    if struct == "dict":
        y = model.predict(dict(zip(model._input_names, xs, strict=True)))
    else:
        y = model.predict(xs if len(xs) > 1 else xs[0])
    return outputs_of(model, y)


def outputs_of(model, y) -> list[np.ndarray]:
    if isinstance(y, dict):
        return [y[k] for k in model.output_names]
    return list(y) if isinstance(y, list | tuple) else [y]


def ort_run(path, xs: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(session.get_inputs(), xs, strict=True)}
    return session.run(None, feeds)

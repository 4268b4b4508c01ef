"""summary() of a graph Model: Keras' table with a "Connected to" column.

Each row is a layer; "Connected to" names the tensors each of its calls took, as
``layer_name[call][output]`` (Keras' notation: ``conv2d[0][0]`` is the first output of the first
call of conv2d). Under conv and pool rows, the same output-size arithmetic as Sequential's summary
(without receptive fields: in a graph they differ from path to path).
"""

from __future__ import annotations

import re

from slidenet._validation import fmt_shape
from slidenet.layers.core import InputLayer
from slidenet.models.summary import _trainable_count, layer_details
from slidenet.ops.kernels import backend


def _calls(model) -> dict[int, list]:
    """id(layer) -> the nodes that call it in this model, in order."""
    calls: dict[int, list] = {}
    for node in model._nodes:
        calls.setdefault(id(node.layer), []).append(node)
    return calls


def _tensor_ref(tensor, calls) -> str:
    layer = tensor.node.layer
    index = next((i for i, n in enumerate(calls.get(id(layer), [])) if n is tensor.node), 0)
    return f"{layer.name}[{index}][{tensor.index}]"


def graph_summary_text(model, line_length=None) -> str:
    """The summary of a Model as text (functional: with connections; subclassed: layers only)."""
    width = line_length or 110
    cols = [int(width * 0.30), int(width * 0.22), int(width * 0.12)]
    cols.append(width - sum(cols))
    rule = "_" * width

    def row(a, b, c, d=""):
        return f" {a:<{cols[0] - 1}}{b:<{cols[1]}}{c:>{cols[2] - 1}}  {d:<{cols[3] - 2}}".rstrip()

    kind = "Functional" if model._functional else type(model).__name__
    lines = [f'Model: "{model.name}" ({kind})', rule]
    lines += [row("Layer (type)", "Output Shape", "Param #", "Connected to"), "=" * width]
    calls = _calls(model) if model._functional else {}
    total = trainable = 0
    for i, layer in enumerate(model.layers):
        kind_of = "Functional" if getattr(layer, "_functional", False) else type(layer).__name__
        name = f"{layer.name} ({kind_of})"  # a nested graph model is "Functional", as in Keras
        if not layer.built:
            lines.append(row(name, "(unbuilt)", "?"))
            continue
        params = layer.count_params()
        sources = [
            ", ".join(_tensor_ref(t, calls) for t in node.inputs)
            for node in calls.get(id(layer), [])
        ]
        shape = layer.output_shape
        shape_text = fmt_shape(shape) if not isinstance(shape, list) else str(shape)
        if len(name) > cols[0] - 2:  # a long name gets a line of its own
            lines.append(f" {name}")
            name = ""
        lines.append(row(name, shape_text, f"{params:,}", sources[0] if sources else "-"))
        lines += [row("", "", "", s) for s in sources[1:]]
        if not isinstance(layer, InputLayer) and isinstance(layer._in, tuple):
            if layer._in and all(isinstance(v, int) for v in layer._in):
                spatial = len(layer._in) - 1
                detail, _, _ = layer_details(layer, (1,) * spatial, (1,) * spatial)
                lines += [re.sub(r" \| receptive field [0-9x]+", "", d) for d in detail]
        total += params
        trainable += _trainable_count(layer)
        if i < len(model.layers) - 1:
            lines.append("")
    lines += [
        "=" * width,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Kernels: {backend()} (slidenet.ops.backend(); SLIDENET_KERNELS=numpy forces NumPy)",
        rule,
    ]
    return "\n".join(lines)

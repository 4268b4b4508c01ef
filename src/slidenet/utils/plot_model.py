"""plot_model: draw a model's graph with Graphviz, as Keras' ``keras.utils.plot_model`` does.

``model_to_dot(model)`` writes the graph in Graphviz's DOT language (plain text, no dependency);
``plot_model(model, to_file="model.png")`` renders it with Graphviz's ``dot`` program (Debian:
``apt-get install graphviz``; other systems: https://graphviz.org/download/). A ``.dot`` file name
writes the DOT text itself, which needs no Graphviz.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from slidenet.utils.files import atomic_write

FORMATS = ("png", "svg", "pdf", "dot")


def _quote(text: str) -> str:
    text = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + text + '"'


def _shape_text(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def _label(layer, show_shapes, show_layer_names, show_layer_activations) -> str:
    kind = type(layer).__name__
    title = f"{layer.name} ({kind})" if show_layer_names else kind
    activation = getattr(layer, "activation", None)
    if show_layer_activations and isinstance(activation, str) and activation != "linear":
        title += f"\nactivation: {activation}"
    if not show_shapes or not layer.built:
        return title
    shapes = layer.input_shape if not kind == "InputLayer" else None
    out = _shape_text(layer.output_shape) if layer.output_shape is not None else "?"
    if shapes is None:
        return f"{title}\noutput: {out}"
    return f"{title}\ninput: {_shape_text(shapes)}\noutput: {out}"


def _edges(model) -> list[tuple[object, object]]:
    """(source layer, target layer) pairs: every tensor flowing from one layer into another."""
    from slidenet.models.functional import Model
    from slidenet.models.graph import layer_calls

    if isinstance(model, Model) and model.inputs:
        pairs = []
        for layer in model.layers:
            for node in layer_calls(layer):
                if node in model._nodes:
                    pairs += [(t.node.layer, layer) for t in node.inputs]
        return pairs
    return list(zip(model.layers, model.layers[1:], strict=False))  # a chain


def model_to_dot(
    model, show_shapes=False, show_layer_names=True, rankdir="TB", show_layer_activations=False
) -> str:
    """The model's graph in Graphviz's DOT language: one box per layer, one arrow per tensor."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"plot_model: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}.")
    if not model.built:
        raise ValueError(f"plot_model: model '{model.name}' is not built; give it an input shape.")
    ids = {id(layer): f"n{i}" for i, layer in enumerate(model.layers)}
    lines = [
        f"digraph {_quote(model.name)} {{",
        f"  rankdir={rankdir};",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
    ]
    for layer in model.layers:
        label = _label(layer, show_shapes, show_layer_names, show_layer_activations)
        lines.append(f"  {ids[id(layer)]} [label={_quote(label)}];")
    seen = set()
    for source, target in _edges(model):
        edge = (ids.get(id(source)), ids[id(target)])
        if edge[0] is not None and edge not in seen:
            seen.add(edge)
            lines.append(f"  {edge[0]} -> {edge[1]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(
    model,
    to_file="model.png",
    show_shapes=False,
    show_layer_names=True,
    rankdir="TB",
    show_layer_activations=False,
    dpi=96,
):
    """Draw ``model`` into ``to_file`` (.png, .svg, .pdf with Graphviz; .dot as text).

    Returns the path written. Raises RuntimeError naming how to install Graphviz when its ``dot``
    program is missing (only the .dot format works without it).
    """
    path = Path(to_file)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise ValueError(
            f"plot_model: cannot write '{path.name}': use a file name ending in "
            f"{', '.join('.' + f for f in FORMATS)}."
        )
    dot_text = model_to_dot(model, show_shapes, show_layer_names, rankdir, show_layer_activations)
    if fmt == "dot":
        atomic_write(path, lambda f: f.write(dot_text.encode()))
        return path
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(
            "plot_model needs Graphviz's 'dot' program, which is not installed: "
            "apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), or see "
            "https://graphviz.org/download/. Or write to_file='model.dot' and render it elsewhere."
        )
    result = subprocess.run(
        [program, f"-T{fmt}", f"-Gdpi={int(dpi)}"],
        input=dot_text.encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"plot_model: Graphviz failed: {result.stderr.decode()[-500:]}")
    atomic_write(path, lambda f: f.write(result.stdout))
    return path

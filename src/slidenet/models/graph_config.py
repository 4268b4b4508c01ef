"""A functional Model as JSON (get_config) and back (from_config); used by model files.

The config lists the layers (class name and config, as Sequential's) and the nodes in the order
they run: each node names its layer and the tensors it took as ``[layer_name, call, output]``
(the output ``output`` of the ``call``-th call of that layer; an Input's tensor is
``[input_name, 0, 0]``). Rebuilding replays the calls on symbolic tensors, so every shape is checked
again exactly as when the model was first built.
"""

from __future__ import annotations

from slidenet.layers.core import InputLayer
from slidenet.models.graph import KerasTensor, Node


def graph_config(model) -> dict:
    calls: dict[int, list] = {}
    for node in model._nodes:
        calls.setdefault(id(node.layer), []).append(node)

    def ref(t):
        layer = t.node.layer
        index = next((i for i, n in enumerate(calls.get(id(layer), [])) if n is t.node), 0)
        return [layer.name, index, t.index]

    layers = []
    for layer in model.layers:
        layers.append({"class_name": _class_name(layer), "config": layer.get_config()})
    return {
        "class_name": "Functional",
        "name": model.name,
        "layers": layers,
        "nodes": [
            {"layer": n.layer.name, "inputs": [ref(t) for t in n.inputs], "as_list": n.as_list}
            for n in model._nodes
        ],
        "inputs": [ref(t) for t in model._inputs],
        "input_keys": model._input_names if model._input_struct == "dict" else None,
        "outputs": [ref(t) for t in model._outputs],
        "output_keys": model.output_names if model._output_struct == "dict" else None,
        "input_struct": model._input_struct,
        "output_struct": model._output_struct,
    }


def _class_name(layer) -> str:
    from slidenet.models.functional import Model

    return "Functional" if isinstance(layer, Model) else type(layer).__name__


def model_from_config(config: dict, check_layer=None):
    """Rebuild a functional Model from ``graph_config``'s dict.

    ``check_layer(layer, input_shape)`` is called before each layer is built (model files use it
    to refuse layers too large for memory before allocating them).
    """
    from slidenet.layers import LAYER_CLASSES
    from slidenet.models.functional import Model

    layers = {}
    for spec in config["layers"]:
        name = spec["class_name"]
        if name == "Functional":
            layer = model_from_config(spec["config"], check_layer)
        elif name == "Sequential":
            from slidenet.models.sequential import Sequential

            layer = Sequential.from_config(spec["config"])
        elif name in LAYER_CLASSES:
            layer = LAYER_CLASSES[name].from_config(spec["config"])
        else:
            raise ValueError(f"unknown layer type {name!r}")
        if layer.name in layers:
            raise ValueError(f"two layers are named {layer.name!r}")
        layers[layer.name] = layer
    tensors: dict[tuple[str, int], list] = {}
    for layer in layers.values():
        if isinstance(layer, InputLayer):
            layer.build(layer.shape)
            tensor = KerasTensor(layer.shape, layer.dtype, name=layer.name)
            tensor.node = Node(layer, [], False, [tensor])
            tensors[(layer.name, 0)] = [tensor]
    counts: dict[str, int] = {}

    def lookup(ref):
        name, call, index = ref[0], int(ref[1]), int(ref[2])
        if (name, call) not in tensors:
            raise ValueError(f"a node uses {name}[{call}], which is not made before it")
        return tensors[(name, call)][index]

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        inputs = [lookup(r) for r in node["inputs"]]
        if check_layer is not None and not layer.built and not node["as_list"]:
            check_layer(layer, inputs[0].example_shape)
        out = layer(inputs if node["as_list"] else inputs[0])
        call = counts.get(layer.name, 0)
        counts[layer.name] = call + 1
        tensors[(layer.name, call)] = out if isinstance(out, list) else [out]
    inputs = [lookup(r) for r in config["inputs"]]
    outputs = [lookup(r) for r in config["outputs"]]

    def structure(values, struct, keys):
        if struct == "dict":
            return dict(zip(keys, values, strict=True))
        return values if struct == "list" else values[0]

    return Model(
        structure(inputs, config["input_struct"], config.get("input_keys")),
        structure(outputs, config["output_struct"], config.get("output_keys")),
        name=config["name"],
    )

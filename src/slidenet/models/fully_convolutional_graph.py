"""to_fully_convolutional for graph Models: the same layer-by-layer conversion, node by node.

Each node of the classifier's graph is replayed on a new Input of the canvas's shape with the
converted layer (see slidenet.models.fully_convolutional): convolutions, poolings, batch norms and
merges are copied (a shared layer stays one shared copy); a Flatten passes its image map on to the
Dense that follows, which becomes an h x w convolution; a global pooling becomes an h x w pooling
with stride 1; a Dense on one position becomes a 1x1 convolution.
"""

from __future__ import annotations

from slidenet.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    MaxPooling2D,
    ResidualBlock,
)
from slidenet.layers.merge import _Merge
from slidenet.layers.pooling import _Pooling2D
from slidenet.models.fully_convolutional import (
    _ELEMENTWISE,
    WHO,
    _conv_from_dense,
    _copy,
    _unsupported,
)

_COPIED = (Conv2D, _Pooling2D, ResidualBlock, BatchNormalization, _Merge, *_ELEMENTWISE)


def _single_io(model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"{WHO}: model '{model.name}' has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; only one of each converts."
        )


def graph_stride(model) -> tuple[int, int]:
    """The product of the strides along the paths to the output (merged paths agree)."""
    _single_io(model)
    stride = {id(model.inputs[0]): (1, 1)}
    for node in model._nodes:
        sh = max(stride[id(t)][0] for t in node.inputs)
        sw = max(stride[id(t)][1] for t in node.inputs)
        layer = node.layer
        if isinstance(layer, Conv2D | _Pooling2D | ResidualBlock):
            sh, sw = sh * layer.strides[0], sw * layer.strides[1]
        for t in node.outputs:
            stride[id(t)] = (sh, sw)
    return stride[id(model.outputs[0])]


def _converted_layer(layer, flat_shape):
    """(fresh layer, weights or None to copy from ``layer``) for one classifier layer."""
    if isinstance(layer, Dense):
        if flat_shape is not None:
            return _conv_from_dense(layer, flat_shape[:2], f"{layer.name}_conv")
        if len(layer._in) in (1, 3):
            return _conv_from_dense(layer, (1, 1), f"{layer.name}_conv")
        raise _unsupported(layer, f"acts on {layer._in}; cannot convert it.")
    if isinstance(layer, GlobalMaxPooling2D | GlobalAveragePooling2D):
        cls = MaxPooling2D if isinstance(layer, GlobalMaxPooling2D) else AveragePooling2D
        return cls(layer._in[:2], strides=1, name=f"{layer.name}_pool"), []
    if isinstance(layer, _COPIED):
        shapes = layer._in if isinstance(layer, _Merge) else [layer._in]
        if not isinstance(layer, _ELEMENTWISE) and any(len(s) != 3 for s in shapes):
            raise _unsupported(layer, "does not act on an image map; only 2D image models convert.")
        return _copy(layer), None
    raise _unsupported(layer, "has no fully convolutional equivalent here.")


def convert_graph(model, shape):
    """A graph Model computing ``model`` at every window of a canvas of ``shape`` (H, W, C)."""
    from slidenet.models.functional import Model

    _single_io(model)
    canvas = Input(shape, name=model.inputs[0].name, dtype=model.dtype.name)
    tensors = {id(model.inputs[0]): canvas}
    flat = {}  # id(old tensor) -> the (h, w, d) map a Flatten made it from
    made = {}  # id(old layer) -> (new layer, weights or None, old layer): shared layers stay shared
    for node in model._nodes:
        layer = node.layer
        pending = [flat[id(t)] for t in node.inputs if id(t) in flat]
        if isinstance(layer, Flatten):
            if len(layer._in) != 3:
                raise _unsupported(layer, f"flattens {layer._in}, not an image map.")
            tensors[id(node.outputs[0])] = tensors[id(node.inputs[0])]
            flat[id(node.outputs[0])] = layer._in
            continue
        if pending and not isinstance(layer, (Dense, *_ELEMENTWISE)):
            raise _unsupported(
                layer,
                "sits between Flatten and Dense; only Dropout and activations can be moved "
                "before the convolution that replaces them.",
            )
        if id(layer) not in made:
            new, weights = _converted_layer(layer, pending[0] if pending else None)
            made[id(layer)] = (new, weights, layer)
        new = made[id(layer)][0]
        args = [tensors[id(t)] for t in node.inputs]
        tensors[id(node.outputs[0])] = new(args if node.as_list else args[0])
        if pending and isinstance(layer, _ELEMENTWISE):
            flat[id(node.outputs[0])] = pending[0]
    out = model.outputs[0]
    if id(out) in flat:
        raise ValueError(f"{WHO}: the model ends with Flatten; there is no Dense to convert.")
    fcn = Model(canvas, tensors[id(out)], name=f"{model.name}_fcn")
    for new, weights, source in made.values():
        new.set_weights(source.get_weights() if weights is None else weights)
    return fcn

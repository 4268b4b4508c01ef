"""Turn a classifier's dense head into convolutions, so it runs over a larger image in one pass.

A Dense layer after Flatten sees the whole h x w x d feature map of one window; that is exactly a
Conv2D with K = units filters of size h x w (kernel = the dense kernel reshaped to (h, w, d, K),
since Flatten is row-major NHWC). Every later Dense acts on one position: a 1x1 Conv2D. A global
pooling becomes a pooling with an h x w window and stride 1. Slid over a canvas of H x W, the new
model computes the classifier at every window offset that is a multiple of the network's stride S
(the product of the strides of its conv and pool layers) in one pass, sharing all the work the
windows have in common (OverFeat, Sermanet et al. 2014):

    output (Ho, Wo, K),  Ho = (H - h) // S + 1,  output [i, j] = classifier(canvas[i*S : i*S + h,
                                                                               j*S : j*S + w])

exactly, when the convolutions use 'valid' padding. With 'same' padding the classifier saw zeros
around each window while the scan sees the neighbouring pixels, so windows agree in their interior
and differ near their borders.

Design: slidenet models have a fixed input shape, so the converted model is built for one canvas
size, ``to_fully_convolutional(model, input_shape=(H, W, C))``; convert again for another size (it
only copies weights). Without ``input_shape`` it is built for the classifier's own input and outputs
a 1 x 1 map.
"""

from __future__ import annotations

import math

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    Input,
    MaxPooling2D,
    ResidualBlock,
)
from slidenet.layers.pooling import _Pooling2D

WHO = "to_fully_convolutional"
_ELEMENTWISE = (Activation, Dropout)  # Activation covers ReLU


def network_stride(model) -> tuple[int, int]:
    """S = (Sh, Sw): how far one step of the converted model's output moves on the canvas (the
    product of the strides of every Conv2D, pooling and ResidualBlock; along the paths of a
    graph)."""
    if _is_graph(model):
        from slidenet.models.fully_convolutional_graph import graph_stride

        return graph_stride(model)
    sh = sw = 1
    for layer in model.layers:
        if isinstance(layer, Conv2D | _Pooling2D | ResidualBlock):
            sh, sw = sh * layer.strides[0], sw * layer.strides[1]
    return sh, sw


def _is_graph(model) -> bool:
    from slidenet.models.functional import Model

    return isinstance(model, Model)


def _copy(layer):
    """A fresh, unbuilt layer with the same configuration (same name: it lives in a new model)."""
    config = layer.get_config()
    config.pop("input_shape", None)
    return type(layer).from_config(config)


def _conv_from_dense(dense, kernel_hw, name):
    conv = Conv2D(
        dense.units,
        kernel_hw,
        activation=dense.activation,
        use_bias=dense.use_bias,
        name=name,
        dtype=dense.dtype.name,
    )
    din = dense.kernel.shape[0]
    weights = [dense.kernel.reshape(*kernel_hw, din // math.prod(kernel_hw), dense.units)]
    return conv, weights + ([dense.bias] if dense.use_bias else [])


def _unsupported(layer, why):
    return ValueError(f"{WHO}: {layer.label} {why}")


def convert_layers(model):
    """The converted layer list: (fresh layer, weights to set or None to copy from ``source``,
    source layer) triples, in order."""
    out = []
    flat_shape = None  # (h, w, d) seen by a Flatten that still waits for its Dense
    for layer in model.layers:
        if isinstance(layer, Flatten):
            if len(layer._in) != 3:
                raise _unsupported(layer, f"flattens {fmt_shape(layer._in)}, not an image map.")
            flat_shape = layer._in
        elif isinstance(layer, Dense):
            if flat_shape is not None:
                conv, weights = _conv_from_dense(layer, flat_shape[:2], f"{layer.name}_conv")
                flat_shape = None
            elif len(layer._in) in (1, 3):  # after a (converted) global pooling, or per position
                conv, weights = _conv_from_dense(layer, (1, 1), f"{layer.name}_conv")
            else:
                raise _unsupported(layer, f"acts on {fmt_shape(layer._in)}; cannot convert it.")
            out.append((conv, weights, layer))
        elif isinstance(layer, GlobalMaxPooling2D | GlobalAveragePooling2D):
            cls = MaxPooling2D if isinstance(layer, GlobalMaxPooling2D) else AveragePooling2D
            out.append((cls(layer._in[:2], strides=1, name=f"{layer.name}_pool"), [], layer))
        elif flat_shape is not None and not isinstance(layer, _ELEMENTWISE):
            raise _unsupported(
                layer,
                "sits between Flatten and Dense; only Dropout and activations can be moved "
                "before the convolution that replaces them.",
            )
        elif isinstance(layer, BatchNormalization) and len(layer._in) != 3:
            raise _unsupported(layer, f"normalises {fmt_shape(layer._in)}, not an image map.")
        elif isinstance(layer, Conv2D | _Pooling2D | ResidualBlock | BatchNormalization):
            if len(layer._in) != 3:
                raise _unsupported(layer, "is one-dimensional; only 2D image models convert.")
            out.append((_copy(layer), None, layer))
        elif isinstance(layer, _ELEMENTWISE):
            out.append((_copy(layer), None, layer))
        else:
            raise _unsupported(layer, "has no fully convolutional equivalent here.")
    if flat_shape is not None:
        raise ValueError(f"{WHO}: the model ends with Flatten; there is no Dense to convert.")
    return out


def to_fully_convolutional(model, input_shape=None):
    """A new Sequential computing ``model`` at every window of a larger canvas (see the module
    docstring for the correspondence and its exactness).

    Args:
        model: a built 2D classifier: Conv2D / pooling / BatchNormalization / ResidualBlock /
            activation / Dropout layers, then Flatten + Dense or a global pooling + Dense.
        input_shape: (H, W, C) of the canvas, H >= h and W >= w of the model's input (h, w, C);
            None: the model's own input shape.

    Returns:
        A Sequential with input (H, W, C) and output (Ho, Wo, K), sharing no arrays with ``model``
        (for a graph ``Model``: a graph Model with the same branches and merges).

    >>> import slidenet as keras
    >>> L = keras.layers
    >>> clf = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3), L.MaxPooling2D(2),
    ...                         L.Flatten(), L.Dense(3, activation="softmax")])
    >>> fcn = clf.to_fully_convolutional((20, 14, 1))
    >>> fcn.output_shape, [type(layer).__name__ for layer in fcn.layers]
    ((None, 7, 4, 3), ['Conv2D', 'MaxPooling2D', 'Conv2D'])
    """
    from slidenet.models.sequential import Sequential

    if not model.built:
        raise ValueError(f"{WHO}: model '{model.name}' is not built; give it an input shape.")
    own = tuple(model._input_shape)
    if len(own) != 3:
        raise ValueError(
            f"{WHO}: model '{model.name}' takes {fmt_shape(own)} examples; only image models "
            "(H, W, C) convert."
        )
    shape = own if input_shape is None else tuple(input_shape)
    if len(shape) == 2 and own[-1] == 1:
        shape = (*shape, 1)
    if (
        len(shape) != 3
        or shape[-1] != own[-1]
        or any(not isinstance(s, int | np.integer) for s in shape)
        or shape[0] < own[0]
        or shape[1] < own[1]
    ):
        raise ValueError(
            f"{WHO}: input_shape must be (H, W, {own[-1]}) with H >= {own[0]} and W >= {own[1]} "
            f"(the classifier's input {fmt_shape(own)}), got {input_shape!r}."
        )
    if _is_graph(model):
        from slidenet.models.fully_convolutional_graph import convert_graph

        return convert_graph(model, tuple(int(s) for s in shape))
    converted = convert_layers(model)
    fcn = Sequential([Input(tuple(int(s) for s in shape))], name=f"{model.name}_fcn")
    for layer, _, _ in converted:
        fcn.add(layer)
    for layer, weights, source in converted:
        layer.set_weights(source.get_weights() if weights is None else weights)
    return fcn


def scan(model, image, stride=None, batch_size=32):
    """Slide the classifier ``model`` over ``image`` and return its outputs at every window.

    Args:
        model: a built 2D classifier (see :func:`to_fully_convolutional`), input (h, w, C).
        image: the scene, (H, W) or (H, W, C), H >= h and W >= w; uint8 is cast to float as given
            (scale it as the model was trained, e.g. / 255).
        stride: window step in pixels, an int or (sy, sx); None: the network's own stride S (one
            pass). Other steps run the converted model on the image shifted by every needed offset
            modulo S (at most Sh * Sw passes, batched) and interleave the maps.

    Returns:
        Scores (Ho, Wo, K) with Ho = (H - h) // sy + 1: ``scores[i, j] = model.predict(window)``
        for the window at rows i*sy .. i*sy + h - 1 and columns j*sx .. j*sx + w - 1 (exactly so
        with 'valid' convolutions; see :mod:`slidenet.models.fully_convolutional`).

    >>> import numpy as np, slidenet as keras
    >>> L = keras.layers
    >>> clf = keras.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3), L.MaxPooling2D(2),
    ...                         L.Flatten(), L.Dense(3, activation="softmax")])
    >>> scan(clf, np.zeros((10, 9)), stride=1).shape
    (5, 4, 3)
    """
    from slidenet._validation import as_float_array, int_tuple

    if not model.built or len(model._input_shape) != 3:
        raise ValueError(f"scan: model '{model.name}' must be a built image model (H, W, C).")
    h, w, c = model._input_shape
    img = as_float_array(image, "scan", "image")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] != c or img.shape[0] < h or img.shape[1] < w:
        raise ValueError(
            f"scan: image must be (H, W, {c}) with H >= {h} and W >= {w} (the model's input "
            f"{fmt_shape((h, w, c))}), got {fmt_shape(np.shape(image))}."
        )
    big_h, big_w = img.shape[:2]
    net = network_stride(model)
    step = net if stride is None else int_tuple(stride, 2, "scan: stride")
    fcn = to_fully_convolutional(model, img.shape)
    n_out = ((big_h - h) // step[0] + 1, (big_w - w) // step[1] + 1)
    offsets = [np.arange(n) * s for n, s in zip(n_out, step, strict=True)]  # window origins
    rems = [sorted(set((o % s).tolist())) for o, s in zip(offsets, net, strict=True)]
    shifted = []  # the image moved up/left by each remainder, zero-filled at the bottom/right
    for ry in rems[0]:
        for rx in rems[1]:
            canvas = np.zeros_like(img)
            canvas[: big_h - ry, : big_w - rx] = img[ry:, rx:]
            shifted.append(canvas)
    maps = fcn.predict(np.stack(shifted), batch_size=batch_size)
    maps = maps.reshape(len(rems[0]), len(rems[1]), *maps.shape[1:])
    oy, ox = offsets
    iy = np.searchsorted(rems[0], oy % net[0])
    ix = np.searchsorted(rems[1], ox % net[1])
    qy, qx = oy // net[0], ox // net[1]
    return maps[iy[:, None], ix[None, :], qy[:, None], qx[None, :]]

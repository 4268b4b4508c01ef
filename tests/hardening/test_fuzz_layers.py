"""Fuzz every class in slidenet.layers.LAYER_CLASSES: construction, building, forward, backward.

Random constructor arguments (some invalid), random input shapes (zero-size batches and zero
dimensions included, wrong ranks), dtypes, NaN / Inf, strided and read-only arrays. A layer either
works (output shaped as ``output_shape`` says, finite for moderate finite inputs, dx like x and
grads like the weights) or raises a documented error naming the layer.
"""

from __future__ import annotations

import numpy as np
from fuzz_support import (
    FUZZ,
    assert_finite,
    call_clean,
    float_arrays,
    is_nasty,
    odd_arrays,
    small_shapes,
)
from hypothesis import given
from hypothesis import strategies as st

from slidenet import layers as L

sizes = st.integers(-1, 4)
ACTS = st.sampled_from([None, "relu", "sigmoid", "tanh", "softmax", "linear"])
PADDING_2D = st.one_of(
    st.sampled_from(["valid", "same", "SAME", "full"]),
    st.integers(-1, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)
PADDING_1D = st.one_of(
    st.sampled_from(["valid", "same", "causal"]),
    st.integers(-1, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
)


def layer_args(name):
    """Keyword arguments for the constructor of layer class ``name`` (sometimes invalid)."""
    if name == "InputLayer":
        return st.fixed_dictionaries({"shape": small_shapes(1, 3, 0, 3)})
    if name == "Conv2D":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": st.one_of(sizes, st.tuples(sizes, sizes)),
                "strides": st.one_of(st.integers(0, 3), st.tuples(sizes, sizes)),
                "padding": PADDING_2D,
                "dilation_rate": st.integers(0, 2),
                "activation": ACTS,
                "use_bias": st.booleans(),
                "groups": st.integers(0, 3),
            }
        )
    if name == "Conv1D":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": sizes,
                "strides": st.integers(0, 3),
                "padding": PADDING_1D,
                "dilation_rate": st.integers(0, 2),
                "activation": ACTS,
            }
        )
    if name == "Dense":
        return st.fixed_dictionaries(
            {"units": sizes, "activation": ACTS, "use_bias": st.booleans()}
        )
    if name == "Reshape":
        return st.fixed_dictionaries({"target_shape": small_shapes(1, 3, -1, 4)})
    if name == "Dropout" or name.startswith("SpatialDropout"):
        return st.fixed_dictionaries(
            {"rate": st.sampled_from([0.0, 0.5, 0.9, 1.0, -0.1]), "seed": st.integers(0, 3)}
        )
    if name == "Activation":
        return st.fixed_dictionaries(
            {
                "activation": st.sampled_from(
                    [
                        "relu",
                        "sigmoid",
                        "tanh",
                        "softmax",
                        "linear",
                        "gelu",
                        "swish",
                        "silu",
                        "elu",
                        "selu",
                        "softplus",
                        "leaky_relu",
                        "hard_sigmoid",
                    ]
                )
            }
        )
    if name == "BatchNormalization":
        return st.fixed_dictionaries(
            {
                "momentum": st.sampled_from([0.0, 0.5, 0.99, 1.0, 1.5]),
                "epsilon": st.sampled_from([1e-3, 1e-7, 0.0, -1.0]),
            }
        )
    if name.endswith("Pooling2D") and not name.startswith("Global"):
        return st.fixed_dictionaries(
            {
                "pool_size": st.one_of(sizes, st.tuples(sizes, sizes)),
                "strides": st.one_of(st.none(), sizes),
                "padding": st.sampled_from(["valid", "same", "full"]),
            }
        )
    if name.endswith("Pooling1D") and not name.startswith("Global"):
        return st.fixed_dictionaries(
            {
                "pool_size": sizes,
                "strides": st.one_of(st.none(), sizes),
                "padding": st.sampled_from(["valid", "same"]),
            }
        )
    if name == "ResidualBlock":
        return st.fixed_dictionaries(
            {
                "filters": sizes,
                "kernel_size": st.integers(0, 3),
                "strides": st.integers(0, 2),
                "shortcut": st.sampled_from(["auto", "identity", "projection", "none"]),
            }
        )
    # ----- the layers of issue 16 -----------------------------------------------------------------
    acts = st.sampled_from(
        [None, "relu", "softmax", "gelu", "swish", "silu", "elu", "selu", "softplus",
         "leaky_relu", "hard_sigmoid"]
    )  # fmt: skip
    some = st.one_of(st.integers(1, 3), sizes)  # mostly valid: 8 arguments must all be
    triple = st.tuples(some, some, some)
    pad_3d = st.one_of(
        st.sampled_from(["valid", "same", "causal"]),
        st.integers(-1, 2),
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
        st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * 3),
    )
    rank = next((int(d) for d in "123" if f"{d}D" in name), 0)
    borders = {  # ZeroPadding / Cropping specs of every Keras form, some of the wrong rank
        1: st.one_of(st.integers(-1, 3), st.tuples(st.integers(-1, 3), st.integers(0, 3))),
        2: st.one_of(
            st.integers(-1, 3),
            st.tuples(st.integers(0, 3), st.integers(0, 3)),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(-1, 2))] * 2),
            st.tuples(st.integers(0, 3)),
        ),
        3: st.one_of(
            st.integers(-1, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * 3),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
        ),
    }
    factor = st.one_of(
        st.sampled_from([0.0, 0.1, 0.5, 1.0, -0.3, 1.5, "big"]),
        st.tuples(st.floats(-1.2, 1.2), st.floats(-1.2, 1.2)),
    )
    seed = st.one_of(st.none(), st.integers(-1, 3))
    interpolation = st.sampled_from(["bilinear", "nearest", "bicubic"])
    affine = {
        "fill_mode": st.sampled_from(["reflect", "wrap", "constant", "nearest", "mirror"]),
        "interpolation": interpolation,
        "seed": seed,
        "fill_value": st.sampled_from([0.0, 1.5, float("nan")]),
    }
    if name == "Conv3D":
        return st.fixed_dictionaries(
            {
                "filters": some,
                "kernel_size": st.one_of(some, triple),
                "strides": st.one_of(st.integers(0, 3), triple),
                "padding": pad_3d,
                "dilation_rate": st.one_of(st.integers(0, 2), triple),
                "groups": st.integers(0, 2),
                "activation": acts,
                "use_bias": st.booleans(),
            }
        )
    if name.endswith("Pooling3D") and not name.startswith("Global"):
        return st.fixed_dictionaries(
            {
                "pool_size": st.one_of(some, triple),
                "strides": st.one_of(st.none(), some, triple),
                "padding": st.sampled_from(["valid", "same", "full"]),
            }
        )
    if name in ("Conv2DTranspose", "Conv1DTranspose"):
        pair = st.tuples(some, some)
        pad = PADDING_2D if rank == 2 else PADDING_1D
        return st.fixed_dictionaries(
            {
                "filters": some,
                "kernel_size": st.one_of(some, pair),
                "strides": st.one_of(st.integers(0, 3), pair),
                "padding": pad,
                "output_padding": st.one_of(st.none(), st.integers(-1, 2), pair),
                "dilation_rate": st.integers(0, 2),
                "activation": acts,
                "use_bias": st.booleans(),
            }
        )
    if name in ("DepthwiseConv2D", "SeparableConv2D"):
        args = {
            "kernel_size": st.one_of(some, st.tuples(some, some)),
            "strides": st.one_of(st.integers(0, 3), st.tuples(some, some)),
            "padding": PADDING_2D,
            "depth_multiplier": some,
            "dilation_rate": st.integers(0, 2),
            "activation": acts,
            "use_bias": st.booleans(),
        }
        if name == "SeparableConv2D":
            args["filters"] = some
        return st.fixed_dictionaries(args)
    if name.startswith("UpSampling"):
        size = st.one_of(some, st.tuples(*[some] * rank), st.tuples(some, some))
        args = {"size": size}
        if rank == 2:
            args["interpolation"] = interpolation
        return st.fixed_dictionaries(args)
    if name.startswith("ZeroPadding"):
        return st.fixed_dictionaries({"padding": borders[rank]})
    if name.startswith("Cropping"):
        return st.fixed_dictionaries({"cropping": borders[rank]})
    if name == "LeakyReLU":
        return st.fixed_dictionaries(
            {"negative_slope": st.sampled_from([0.0, 0.2, 0.3, 1.0, 5.0, -0.1, True, "0.2"])}
        )
    if name == "ELU":
        return st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 0.0, -1.0, 2, None])})
    if name == "PReLU":
        return st.fixed_dictionaries(
            {
                "alpha_initializer": st.sampled_from(["zeros", "ones", "glorot_uniform"]),
                "shared_axes": st.one_of(
                    st.none(),
                    st.integers(-4, 4),
                    st.lists(st.integers(-3, 4), max_size=3),
                ),
            }
        )
    if name == "Softmax":
        return st.fixed_dictionaries(
            {"axis": st.one_of(st.integers(-4, 4), st.lists(st.integers(-3, 3), max_size=3))}
        )
    if name in ("LayerNormalization", "GroupNormalization"):
        args = {
            "epsilon": st.sampled_from([1e-3, 1e-5, 0.0, -1.0]),
            "center": st.booleans(),
            "scale": st.booleans(),
        }
        if name == "LayerNormalization":
            args["axis"] = st.one_of(
                st.integers(-4, 4), st.lists(st.integers(-3, 3), min_size=0, max_size=3)
            )
        else:
            args["groups"] = st.sampled_from([-1, 1, 2, 3, 4, 32, 0, -2])
            args["axis"] = st.one_of(st.integers(-4, 4), st.just([1, 2]))
        return st.fixed_dictionaries(args)
    if name == "Rescaling":
        values = st.one_of(
            st.sampled_from([1 / 255, 2.0, 0.0, -1.0, float("nan"), "x"]),
            st.lists(st.floats(-2, 2), min_size=1, max_size=3),
        )
        return st.fixed_dictionaries({"scale": values, "offset": values})
    if name == "Normalization":
        stats = st.one_of(
            st.none(),
            st.sampled_from([0.0, 1.0, -1.0, float("inf")]),
            st.lists(st.floats(-1, 2), min_size=1, max_size=3),
        )
        return st.fixed_dictionaries(
            {
                "axis": st.one_of(
                    st.none(), st.integers(-4, 4), st.tuples(st.integers(-3, 3), st.integers(1, 3))
                ),
                "mean": stats,
                "variance": stats,
                "invert": st.booleans(),
            }
        )
    if name in ("Resizing", "CenterCrop", "RandomCrop"):
        args = {"height": some, "width": some}
        if name == "Resizing":
            args |= {"interpolation": interpolation, "crop_to_aspect_ratio": st.booleans()}
        if name == "RandomCrop":
            args["seed"] = seed
        return st.fixed_dictionaries(args)
    if name == "RandomFlip":
        return st.fixed_dictionaries(
            {
                "mode": st.sampled_from(
                    ["horizontal", "vertical", "horizontal_and_vertical", "diagonal"]
                ),
                "seed": seed,
            }
        )
    if name == "RandomRotation":
        return st.fixed_dictionaries({"factor": factor, **affine})
    if name in ("RandomTranslation", "RandomZoom"):
        width = st.one_of(st.none(), factor) if name == "RandomZoom" else factor
        return st.fixed_dictionaries({"height_factor": factor, "width_factor": width, **affine})
    if name in ("RandomContrast", "RandomBrightness"):
        return st.fixed_dictionaries(
            {
                "factor": factor,
                "value_range": st.sampled_from([(0, 255), (0, 1), (-1, 1), (1, 1), (0,), "rgb"]),
                "seed": seed,
            }
        )
    return st.just({})


def make_layer(name, kwargs):
    """The layer, or None when the constructor refused the arguments with a clear error."""
    ok, layer = call_clean(L.LAYER_CLASSES[name], [name, "must", "padding", "shape"], **kwargs)
    return layer if ok else None


@st.composite
def layer_and_input(draw):
    name = draw(st.sampled_from(sorted(L.LAYER_CLASSES)))
    layer = make_layer(name, draw(layer_args(name)))
    shape = (draw(st.integers(0, 3)), *draw(small_shapes(0, 4, 0, 5)))
    return name, layer, shape


def _check_forward_backward(name, layer, x, training):
    ok, y = call_clean(layer, [name, layer.name], x, training=training)
    if not ok:
        return
    assert layer.built
    assert y.shape == (x.shape[0], *layer.output_shape[1:]), (name, x.shape, y.shape)
    assert y.dtype == layer.dtype
    if not is_nasty(x):
        assert_finite(y, f"{name} forward")
    dy = np.random.default_rng(0).uniform(-1, 1, y.shape).astype(y.dtype)
    kwargs = {"need_dx": True} if name in ("Conv2D", "Conv1D") else {}
    ok, dx = call_clean(layer.backward, [name, layer.name], dy, **kwargs)
    if not ok:
        return
    assert dx.shape == x.shape, (name, x.shape, dx.shape)
    assert len(layer.grads) == len(layer.weights)
    for g, w in zip(layer.grads, layer.weights, strict=True):
        assert g is None or g.shape == w.shape
    if not is_nasty(x):
        assert_finite([dx, *layer.grads], f"{name} backward")


@FUZZ
@given(layer_and_input(), st.data(), st.booleans())
def test_layers_forward_backward_on_random_shapes(case, data, training):
    name, layer, shape = case
    if layer is None:
        return
    x = data.draw(float_arrays(shape, bound=10.0))
    _check_forward_backward(name, layer, x, training)


@FUZZ
@given(layer_and_input(), st.data())
def test_layers_refuse_odd_inputs_clearly(case, data):
    name, layer, shape = case
    if layer is None:
        return
    x = data.draw(odd_arrays(shape))
    with np.errstate(all="ignore"):  # NaN in, NaN out is allowed; a crash is not
        ok, y = call_clean(layer, [name, layer.name], x)
    if ok and x.dtype.kind in "biu":
        assert y.dtype == layer.dtype


@FUZZ
@given(layer_and_input(), small_shapes(1, 5, 0, 4))
def test_layers_called_again_with_another_shape(case, other):
    name, layer, shape = case
    if layer is None:
        return
    x = np.ones(shape, np.float32)
    ok, _ = call_clean(layer, [name, layer.name], x)
    if not ok:
        return
    ok, y = call_clean(layer, [name, layer.name], np.ones(other, np.float32))
    if ok:  # only the batch size may change
        assert other[1:] == shape[1:] and y.shape[0] == other[0]


@FUZZ
@given(layer_and_input(), st.data())
def test_layers_backward_with_wrong_gradient_shape(case, data):
    name, layer, shape = case
    if layer is None:
        return
    ok, y = call_clean(layer, [name, layer.name], np.ones(shape, np.float32), training=True)
    if not ok:
        return
    wrong = data.draw(small_shapes(1, 5, 0, 4).filter(lambda s: s != y.shape))
    kwargs = {"need_dx": True} if name in ("Conv2D", "Conv1D") else {}
    call_clean(layer.backward, [name, layer.name, "dy"], np.ones(wrong, np.float32), **kwargs)

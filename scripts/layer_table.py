"""Print the README's layer table (the "## Layers: the whole catalogue" section) from slidenet.layers.LAYER_CLASSES.

Every class must have an entry in SAMPLES (how to build one) and WHAT (a few words); weights and
their shapes come from a built sample (names from ``weight_names``, symbolic shapes from SHAPES,
checked against the built sample's rank); ONNX export is tried on the sample model.
"""

import numpy as np

import slidenet
from slidenet import layers as L
from slidenet.interop import UnsupportedOnnxError, to_onnx

IMG, SIG, VOL, FLAT = (6, 6, 4), (8, 4), (4, 4, 4, 2), (6,)
SAMPLES = {  # name -> (kwargs, input shape); merge layers get two inputs
    "InputLayer": ({"shape": IMG}, None),
    "Conv2D": ({"filters": 3, "kernel_size": 3}, IMG),
    "Conv1D": ({"filters": 3, "kernel_size": 3}, SIG),
    "Conv3D": ({"filters": 3, "kernel_size": 2}, VOL),
    "MaxPooling3D": ({}, VOL),
    "AveragePooling3D": ({}, VOL),
    "GlobalMaxPooling3D": ({}, VOL),
    "GlobalAveragePooling3D": ({}, VOL),
    "UpSampling1D": ({}, SIG),
    "UpSampling2D": ({}, IMG),
    "UpSampling3D": ({}, VOL),
    "ZeroPadding1D": ({}, SIG),
    "ZeroPadding2D": ({}, IMG),
    "ZeroPadding3D": ({}, VOL),
    "Cropping1D": ({}, SIG),
    "Cropping2D": ({"cropping": 1}, IMG),
    "Cropping3D": ({}, VOL),
    "SpatialDropout1D": ({"rate": 0.5}, SIG),
    "SpatialDropout2D": ({"rate": 0.5}, IMG),
    "SpatialDropout3D": ({"rate": 0.5}, VOL),
    "Conv2DTranspose": ({"filters": 3, "kernel_size": 3, "strides": 2}, IMG),
    "Conv1DTranspose": ({"filters": 3, "kernel_size": 3, "strides": 2}, SIG),
    "DepthwiseConv2D": ({"kernel_size": 3, "depth_multiplier": 2}, IMG),
    "SeparableConv2D": ({"filters": 3, "kernel_size": 3}, IMG),
    "Dense": ({"units": 3}, FLAT),
    "Flatten": ({}, IMG),
    "Reshape": ({"target_shape": (-1,)}, IMG),
    "Dropout": ({"rate": 0.5}, IMG),
    "Activation": ({"activation": "gelu"}, IMG),
    "ReLU": ({}, IMG),
    "BatchNormalization": ({}, IMG),
    "LeakyReLU": ({}, IMG),
    "PReLU": ({"shared_axes": [1, 2]}, IMG),
    "ELU": ({}, IMG),
    "Softmax": ({}, IMG),
    "LayerNormalization": ({}, IMG),
    "GroupNormalization": ({"groups": 2}, IMG),
    "MaxPooling2D": ({}, IMG),
    "AveragePooling2D": ({}, IMG),
    "SumPooling2D": ({}, IMG),
    "MaxPooling1D": ({}, SIG),
    "AveragePooling1D": ({}, SIG),
    "GlobalMaxPooling2D": ({}, IMG),
    "GlobalAveragePooling2D": ({}, IMG),
    "GlobalMaxPooling1D": ({}, SIG),
    "GlobalAveragePooling1D": ({}, SIG),
    "ResidualBlock": ({"filters": 4}, IMG),
    "Rescaling": ({"scale": 1 / 255}, IMG),
    "Normalization": ({}, IMG),
    "Resizing": ({"height": 4, "width": 5}, IMG),
    "CenterCrop": ({"height": 4, "width": 4}, IMG),
    "RandomFlip": ({}, IMG),
    "RandomTranslation": ({"height_factor": 0.1, "width_factor": 0.1}, IMG),
    "RandomRotation": ({"factor": 0.1}, IMG),
    "RandomZoom": ({"height_factor": 0.1}, IMG),
    "RandomCrop": ({"height": 4, "width": 4}, IMG),
    "RandomContrast": ({"factor": 0.2}, IMG),
    "RandomBrightness": ({"factor": 0.2}, IMG),
    "Add": ({}, IMG),
    "Subtract": ({}, IMG),
    "Multiply": ({}, IMG),
    "Average": ({}, IMG),
    "Maximum": ({}, IMG),
    "Minimum": ({}, IMG),
    "Concatenate": ({}, IMG),
}
WHAT = {
    "InputLayer": "declares the shape of one example (`Input(shape)`)",
    "Conv2D": "2D convolution (cross-correlation) of images; `groups=` for grouped convolution",
    "Conv1D": "1D convolution along signals (`padding='causal'` too)",
    "Conv3D": "3D convolution of volumes / videos",
    "MaxPooling3D": "max of each 3D window",
    "AveragePooling3D": "mean of each 3D window",
    "GlobalMaxPooling3D": "max over all positions of a volume",
    "GlobalAveragePooling3D": "mean over all positions of a volume",
    "UpSampling1D": "repeats each step `size` times",
    "UpSampling2D": "upsamples images by integer factors (nearest or bilinear)",
    "UpSampling3D": "repeats each cell of a volume",
    "ZeroPadding1D": "zeros at the start and end of signals",
    "ZeroPadding2D": "rows and columns of zeros around images",
    "ZeroPadding3D": "zeros around volumes",
    "Cropping1D": "drops steps at the ends of signals",
    "Cropping2D": "drops rows and columns at image borders",
    "Cropping3D": "drops cells at volume borders",
    "SpatialDropout1D": "dropout of whole channels of signals (training only)",
    "SpatialDropout2D": "dropout of whole feature maps (training only)",
    "SpatialDropout3D": "dropout of whole feature volumes (training only)",
    "Conv2DTranspose": "transposed 2D convolution (learned upsampling)",
    "Conv1DTranspose": "transposed 1D convolution",
    "DepthwiseConv2D": "one set of `depth_multiplier` filters per input channel",
    "SeparableConv2D": "depthwise convolution, then a 1x1 convolution",
    "Dense": "fully connected: `act(x @ kernel + bias)` on the last axis",
    "Flatten": "(N, ...) -> (N, features), NHWC order",
    "Reshape": "reshapes each example to `target_shape`",
    "Dropout": "inverted dropout (training only)",
    "Activation": "applies an activation by name",
    "ReLU": "max(x, 0)",
    "BatchNormalization": "per-channel normalisation, batch statistics in training, moving ones at inference",
    "LeakyReLU": "x, or `negative_slope * x` below 0",
    "PReLU": "leaky ReLU with a learned slope",
    "ELU": "x, or `alpha * (exp(x) - 1)` below 0",
    "Softmax": "softmax along `axis` (one or several axes)",
    "LayerNormalization": "normalises each example over `axis`, then gamma, beta",
    "GroupNormalization": "normalises groups of channels per example, then gamma, beta",
    "MaxPooling2D": "max of each window",
    "AveragePooling2D": "mean of each window",
    "SumPooling2D": "sum of each window (beyond Keras)",
    "MaxPooling1D": "max over windows along signals",
    "AveragePooling1D": "mean over windows along signals",
    "GlobalMaxPooling2D": "max over all positions",
    "GlobalAveragePooling2D": "mean over all positions",
    "GlobalMaxPooling1D": "max over all steps",
    "GlobalAveragePooling1D": "mean over all steps",
    "ResidualBlock": "ResNet basic block: conv-BN-ReLU, conv-BN, + shortcut, ReLU (beyond Keras)",
    "Rescaling": "`x * scale + offset`",
    "Normalization": "`(x - mean) / sqrt(variance)`, statistics from `adapt(data)` or given",
    "Resizing": "resizes images (bilinear / nearest, optional aspect-ratio crop)",
    "CenterCrop": "central height x width window",
    "RandomFlip": "random flips (training only)",
    "RandomTranslation": "random shifts (training only)",
    "RandomRotation": "random rotations (training only)",
    "RandomZoom": "random zoom (training only)",
    "RandomCrop": "random window in training, centred window at inference",
    "RandomContrast": "random contrast (training only)",
    "RandomBrightness": "random brightness (training only)",
    "Add": "sum of the inputs",
    "Subtract": "difference of two inputs",
    "Multiply": "elementwise product",
    "Average": "mean of the inputs",
    "Maximum": "elementwise max",
    "Minimum": "elementwise min",
    "Concatenate": "joins the inputs along `axis`",
}
SHAPES = {  # (class, weight) -> symbolic shape (N, H, W, D input; K filters; M multiplier)
    ("Conv2D", "kernel"): "(Fh, Fw, D/groups, K)",
    ("Conv2D", "bias"): "(K,)",
    ("Conv1D", "kernel"): "(F, D, K)",
    ("Conv1D", "bias"): "(K,)",
    ("Conv3D", "kernel"): "(Fz, Fh, Fw, D, K)",
    ("Conv3D", "bias"): "(K,)",
    ("Conv2DTranspose", "kernel"): "(Fh, Fw, K, D)",
    ("Conv2DTranspose", "bias"): "(K,)",
    ("Conv1DTranspose", "kernel"): "(F, K, D)",
    ("Conv1DTranspose", "bias"): "(K,)",
    ("DepthwiseConv2D", "depthwise_kernel"): "(Fh, Fw, D, M)",
    ("DepthwiseConv2D", "bias"): "(D*M,)",
    ("SeparableConv2D", "depthwise_kernel"): "(Fh, Fw, D, M)",
    ("SeparableConv2D", "pointwise_kernel"): "(1, 1, D*M, K)",
    ("SeparableConv2D", "bias"): "(K,)",
    ("Dense", "kernel"): "(D, units)",
    ("Dense", "bias"): "(units,)",
    ("BatchNormalization", "gamma"): "(D,)",
    ("BatchNormalization", "beta"): "(D,)",
    ("BatchNormalization", "moving_mean"): "(D,)",
    ("BatchNormalization", "moving_variance"): "(D,)",
    ("PReLU", "alpha"): "one example's shape, 1 on `shared_axes` (e.g. (1, 1, D))",
    ("LayerNormalization", "gamma"): "the normalised axes' sizes ((D,) for axis=-1)",
    ("LayerNormalization", "beta"): "as gamma",
    ("GroupNormalization", "gamma"): "(D,)",
    ("GroupNormalization", "beta"): "(D,)",
    ("Normalization", "mean"): "the kept `axis` sizes ((D,) for axis=-1)",
    ("Normalization", "variance"): "as mean",
}
SYMBOLIC_RANK = {"(D,)": 1, "(K,)": 1, "(units,)": 1, "(D*M,)": 1}
MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
UNTRAINED = {"moving_mean", "moving_variance", "mean", "variance"}


def sample_model(name):
    cls = L.LAYER_CLASSES[name]
    kwargs, shape = SAMPLES[name]
    if name == "InputLayer":
        return slidenet.Sequential([cls(**kwargs), L.Flatten()]), None
    if name in MERGE:
        a, b = L.Input(shape), L.Input(shape)
        layer = cls(**kwargs)
        return slidenet.Model([a, b], layer([a, b])), layer
    layer = cls(**kwargs)
    return slidenet.Sequential([L.Input(shape), layer]), layer


def main():
    missing = set(L.LAYER_CLASSES) - set(SAMPLES) | set(L.LAYER_CLASSES) - set(WHAT)
    assert not missing, f"no sample / description for {sorted(missing)}"
    rows = ["| Keras name | What it does | Weights (shapes) | ONNX export |", "|---|---|---|---|"]
    for name in L.LAYER_CLASSES:
        model, layer = sample_model(name)
        weights = []
        if layer is not None:
            if name == "ResidualBlock":
                weights = [
                    "conv1, bn1, conv2, bn2 (+ shortcut conv, bn): Conv2D and "
                    "BatchNormalization weights"
                ]
            else:
                for w_name, w in zip(layer.weight_names, layer.get_weights(), strict=True):
                    sym = SHAPES[name, w_name]
                    if sym in SYMBOLIC_RANK:
                        assert SYMBOLIC_RANK[sym] == np.ndim(w), (name, w_name)
                    elif sym.startswith("("):
                        assert sym.count(",") + 1 == np.ndim(w), (name, w_name, sym, w.shape)
                    note = " (not trained)" if w_name in UNTRAINED else ""
                    weights.append(f"`{w_name}` {sym}{note}")
        try:
            to_onnx(model)
            onnx = "yes"
        except UnsupportedOnnxError:
            onnx = "no"
        if name.startswith("Random") and name != "RandomCrop" or "Dropout" in name:
            onnx += " (identity)" if name.startswith("Random") else " (Dropout, identity)"
        rows.append(f"| {name} | {WHAT[name]} | {'; '.join(weights) or '-'} | {onnx} |")
    aliases = sorted(
        (n, v.__name__)
        for n, v in vars(L).items()
        if isinstance(v, type) and n in L.__all__ and n != v.__name__ and n[0].isupper()
    )
    funcs = [n for n in L.__all__ if n[0].islower()]
    from slidenet.activations import FORWARD

    out = [
        "## Layers: the whole catalogue",
        "",
        f"slidenet has {len(L.LAYER_CLASSES)} layer classes with Keras 3 names and arguments "
        "(channels-last: images (N, H, W, D), signals (N, L, D), volumes (N, Z, H, W, D)). "
        "Shapes use D for the input channels, K for `filters`, M for `depth_multiplier`, "
        "F for kernel sizes; `bias` is absent with `use_bias=False`, `gamma` / `beta` with "
        '`scale=False` / `center=False`. "ONNX export" says whether `export_onnx` writes the layer '
        "(the others raise `UnsupportedOnnxError` naming the layer).",
        "",
        *rows,
        "",
        "### Activations",
        "",
        'By name (`activation="gelu"`, `Activation("gelu")`) or as functions in '
        "`slidenet.activations`: "
        + ", ".join(f"`{a}`" for a in sorted(FORWARD))
        + ". `swish` and `silu` are one function; `gelu` is the exact (erf) form by name "
        "(`slidenet.activations.gelu(x, approximate=True)` for the tanh form); `leaky_relu` by "
        "name has negative_slope 0.2 and `hard_sigmoid` is Keras 3's `relu6(x + 3) / 6`. "
        "All export to ONNX.",
        "",
        "### Keras aliases",
        "",
        ", ".join(f"`{a}` = `{b}`" for a, b in aliases) + ".",
        "",
        "Functional forms of the merge layers: " + ", ".join(f"`{f}`" for f in funcs) + ".",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(main())

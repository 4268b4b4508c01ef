"""``slidenet explain``: the arithmetic of convolution and pooling, and the sliding window drawn.

``explain conv`` and ``explain pool`` print the output size with the formula filled in, the
parameters, the multiply-adds and the receptive field; ``explain conv --image IMG --frames OUT.gif``
animates the window sliding over an image; ``explain model`` walks a model layer by layer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slidenet.cli import _common
from slidenet.cli._common import UsageError

EXAMPLES = """\
slidenet explain conv --input 32x32x3 --filters 10 --kernel 5 --stride 1 --padding 2
slidenet explain conv --input 7x7x1 --kernel 3 --stride 3
slidenet explain conv --image digit.png --kernel sobel-x --frames slide.gif
slidenet explain conv --image digit.png --kernel box:3 --frames frames/ --png
slidenet explain pool --input 28x28x32 --pool 2
slidenet explain model mnist_cnn"""


def _size_pair(text: str):
    """'5' -> 5, '5x3' -> (5, 3)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1 and parts[0] >= 1:
        return parts[0]
    if len(parts) == 2 and min(parts) >= 1:
        return tuple(parts)
    raise argparse.ArgumentTypeError(f"expected N or NxM with positive integers, got {text!r}")


def _padding(text: str):
    """'2', '1x2', 'same' or 'valid'."""
    if text.lower() in ("same", "valid"):
        return text.lower()
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) in (1, 2) and min(parts) >= 0:
        return parts[0] if len(parts) == 1 else tuple(parts)
    raise argparse.ArgumentTypeError(f"expected P, PhxPw, 'same' or 'valid', got {text!r}")


def _volume(text: str) -> tuple[int, int, int]:
    """'32x32x3' (or 32,32,3; HxW means depth 1)."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 2:
        parts.append(1)
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected HxWxD, e.g. 32x32x3, got {text!r}")
    return tuple(parts)


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "explain",
        help="the arithmetic of convolution and pooling, and the sliding window drawn",
        description=(
            "Teaching view: 'conv' and 'pool' print the output size with the formula "
            "(n - F + 2P)/S + 1 filled in, the parameters, multiply-adds and receptive field, and "
            "what to change when a filter does not fit; 'conv --image' draws the window sliding "
            "over an image; 'model' walks a model's arithmetic layer by layer."
        ),
        examples=EXAMPLES,
    )
    p.set_defaults(run=lambda args: _missing(p))
    sub = p.add_subparsers(dest="topic", metavar="TOPIC", title="topics")

    conv = sub.add_parser("conv", help="a convolution layer", parents=[_debug()])
    conv.set_defaults(parser=conv, run=run_conv)
    conv.add_argument("--input", type=_volume, metavar="HxWxD", help="input volume, e.g. 32x32x3")
    conv.add_argument(
        "--filters",
        type=_common.positive_int,
        default=1,
        metavar="K",
        help="number of filters (default 1)",
    )
    conv.add_argument(
        "--kernel",
        required=True,
        metavar="F|FhxFw|SPEC",
        help="filter size (F or FhxFw); with --image a kernel spec such as gaussian:5:1.2, "
        "box:3, sharpen, shift:0:1, sobel-x, laplacian or a text file",
    )
    conv.add_argument("--stride", type=_size_pair, default=1, metavar="S", help="default 1")
    conv.add_argument(
        "--padding",
        type=_padding,
        default=0,
        metavar="P|same|valid",
        help="zeros added on each side (default 0)",
    )
    conv.add_argument("--dilation", type=_size_pair, default=1, metavar="D", help="default 1")
    conv.add_argument("--image", metavar="IMG", help="draw the window sliding over this image")
    conv.add_argument(
        "--frames",
        metavar="OUT.gif",
        help="with --image: write an animated GIF (or a folder with --png)",
    )
    conv.add_argument("--png", action="store_true", help="write a folder of PNG frames instead")
    conv.add_argument(
        "--max-frames",
        type=_common.positive_int,
        default=60,
        help="at most this many frames; positions are sampled (default 60)",
    )
    conv.add_argument(
        "--max-size",
        type=_common.positive_int,
        default=48,
        help="downscale images larger than this first (default 48)",
    )
    conv.add_argument(
        "--boundary",
        choices=("zero", "reflect", "nearest", "wrap"),
        default="zero",
        help="padding values for --image (default zero)",
    )

    pool = sub.add_parser("pool", help="a pooling layer", parents=[_debug()])
    pool.set_defaults(parser=pool, run=run_pool)
    pool.add_argument("--input", type=_volume, required=True, metavar="HxWxD")
    pool.add_argument("--pool", type=_size_pair, default=2, metavar="F", help="default 2")
    pool.add_argument("--stride", type=_size_pair, metavar="S", help="default: the pool size")
    pool.add_argument("--padding", type=_padding, default=0, metavar="P|same|valid")
    pool.add_argument("--kind", choices=("max", "average", "sum"), default="max")

    model = sub.add_parser("model", help="a model, layer by layer", parents=[_debug()])
    model.set_defaults(parser=model, run=run_model)
    model.add_argument(
        "model",
        metavar="NAME|MODEL",
        help=f"a built-in model ({', '.join(_common.builder_names())}), FILE.py:FUNCTION, or a "
        "model file",
    )
    return p


def _debug():
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parent


def _missing(parser) -> int:
    raise UsageError("name a topic: conv, pool or model")


def run_conv(args) -> int:
    from slidenet import explain

    if args.image is None:
        if args.frames or args.png:
            raise UsageError("--frames and --png draw an image: give --image IMG too")
        if args.input is None:
            raise UsageError("give --input HxWxD (or --image IMG)")
        kernel = _size_pair_or_error(args.kernel)
        print(
            explain.explain_conv(
                args.input, args.filters, kernel, args.stride, args.padding, args.dilation
            )
        )
        return 0
    from slidenet.filters import load_image

    spec = args.kernel
    if spec.isdigit():
        spec = f"box:{spec}"
        _common.note(f"--kernel {args.kernel} with --image: using the box filter {spec}")
    k = explain.parse_kernel(spec)
    image = load_image(args.image, mode="L")
    h, w = explain.fit_size(image.shape, args.max_size)
    if (h, w) != image.shape:
        _common.note(f"{args.image} is {image.shape[0]}x{image.shape[1]}; drawn at {h}x{w}")
    padding, mode = args.padding, "valid"
    if padding == "same":
        mode = "same"
    elif padding not in (0, "valid"):
        raise UsageError("with --image, --padding is 0/valid or same")
    stride = args.stride if isinstance(args.stride, int) else None
    if stride is None or args.dilation != 1:
        raise UsageError("with --image, --stride is one number and --dilation is 1")
    print(explain.explain_conv((h, w, 1), 1, k.shape, stride, padding))
    print("kernel (laid over the image as printed, correlation):")
    for row in k:
        print("  " + " ".join(f"{v:7.3f}" for v in row))
    if args.frames is None:
        return 0
    frames = explain.render_frames(
        image,
        k,
        mode=mode,
        boundary=args.boundary,
        stride=stride,
        max_frames=args.max_frames,
        max_size=args.max_size,
    )
    files = explain.save_frames(frames, args.frames, png=args.png)
    where = Path(args.frames)
    print(
        f"wrote {len(frames)} frames to {where}"
        + (f" ({len(files)} PNG files)" if args.png else "")
    )
    return 0


def _size_pair_or_error(text: str):
    try:
        return _size_pair(text)
    except argparse.ArgumentTypeError:
        raise UsageError(
            f"--kernel {text!r}: without --image give the filter size, e.g. 5 or 5x3"
        ) from None


def run_pool(args) -> int:
    from slidenet import explain

    print(explain.explain_pool(args.input, args.pool, args.stride, args.padding, args.kind))
    return 0


def run_model(args) -> int:
    from slidenet import explain

    spec = args.model
    if Path(spec).is_file() and not spec.endswith(".py"):
        model, _ = _common.load(spec)
    else:
        _, model = _common.build_model(spec)
    print(explain.explain_model(model))
    return 0

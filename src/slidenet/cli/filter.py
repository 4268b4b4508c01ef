"""``slidenet filter``: correlate (or convolve) an image with a classic kernel and save it."""

from __future__ import annotations

import numpy as np

from slidenet.cli import _common
from slidenet.explain import KERNEL_NAMES

EXAMPLES = """\
slidenet filter photo.png --kernel gaussian:5:1.2 -o blurred.png
slidenet filter photo.png --kernel sobel-x --rescale -o edges.png
slidenet filter photo.png --kernel shift:0:3 --boundary wrap --compare -o moved.png
slidenet filter photo.png --kernel my_kernel.txt --convolve -o out.png"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "filter",
        help="filter an image with a kernel (blur, sharpen, shift, edges, your own)",
        description=(
            "Slide a kernel over an image and save the result: y[i, j] = sum k[u, v] x[i+u, j+v] "
            "(correlation, what CNN layers compute), or with --convolve the flipped kernel. Colour "
            "images are filtered per channel. Values are clipped to [0, 1] when saved, unless "
            "--rescale stretches them."
        ),
        examples=EXAMPLES,
    )
    p.add_argument("image", metavar="IMAGE", help="the image file to filter")
    p.add_argument(
        "--kernel",
        required=True,
        metavar="SPEC",
        help=f"one of {', '.join(KERNEL_NAMES.values())}, or a text file of "
        "whitespace-separated rows of weights",
    )
    p.add_argument(
        "--mode",
        choices=("same", "valid", "full"),
        default="same",
        help="output size: same as the input (default), valid or full",
    )
    p.add_argument(
        "--boundary",
        choices=("zero", "reflect", "nearest", "wrap"),
        default="zero",
        help="how the image is extended past its edges (default: zero)",
    )
    p.add_argument(
        "--convolve", action="store_true", help="convolve (flip the kernel) instead of correlating"
    )
    p.add_argument(
        "--rescale",
        action="store_true",
        help="stretch the result's min..max to 0..1 (for edge kernels)",
    )
    p.add_argument(
        "--compare", action="store_true", help="write the input and the result side by side"
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT.png", help="the image to write")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from slidenet import filters
    from slidenet.explain import parse_kernel

    kernel = parse_kernel(args.kernel)
    image = filters.load_image(args.image)
    fn = filters.convolve2d if args.convolve else filters.correlate2d
    y = fn(image, kernel, mode=args.mode, boundary=args.boundary)
    lo, hi = float(y.min()), float(y.max())
    if args.rescale:
        y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
    elif lo < -1e-6 or hi > 1 + 1e-6:
        _common.note(
            f"the result spans {lo:.3g}..{hi:.3g}; values outside 0..1 are clipped when saved "
            "(--rescale stretches them instead)"
        )
    if args.compare:
        y = _side_by_side(image, y)
    filters.save_image(args.out, y)
    kh, kw = kernel.shape
    what = "convolved" if args.convolve else "correlated"
    print(f"{what} {args.image} with a {kh}x{kw} kernel ({args.kernel}); wrote {args.out}")
    return 0


def _side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two images next to each other, top-aligned, on a black canvas of the taller height."""
    a = np.clip(np.asarray(a, dtype=np.float32), 0, 1)
    b = np.clip(np.asarray(b, dtype=np.float32), 0, 1)
    height = max(a.shape[0], b.shape[0])
    canvas = np.zeros((height, a.shape[1] + b.shape[1]) + a.shape[2:], dtype=np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    return canvas

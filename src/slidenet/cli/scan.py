"""``slidenet scan``: slide a saved classifier over a larger image and save a heatmap of one class.

The classifier's Flatten + Dense head is turned into convolutions
(:meth:`slidenet.Sequential.to_fully_convolutional`), so one pass over the scene gives the class
scores of every window at the network's stride; ``--stride`` picks another step.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from slidenet.cli import _common, _data
from slidenet.cli._common import CLIError, UsageError

EXAMPLES = """\
slidenet scan cnn.slidenet scene.png -o heatmap.png
slidenet scan cnn.slidenet scene.png --class 7 --stride 2 -o sevens.png --npy scores.npy
slidenet scan cnn.slidenet photo.jpg --invert --plain -o heatmap.png   # dark ink on paper"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "scan",
        help="slide a classifier over a larger image: a heatmap of where a class is",
        description=(
            "Run a saved image classifier on every window of a larger scene in one pass (its "
            "dense head becomes convolutions) and save a heatmap of one class's score per window, "
            "drawn at the window centres over the scene. The scene is read like 'slidenet "
            "predict' reads images (grayscale or RGB, [0, 1]) but not resized; it must be at "
            "least as large as the model's input. With 'valid' convolutions each score equals "
            "the classifier on that window; with 'same' padding windows agree away from their "
            "borders. The heatmap uses matplotlib when installed (slidenet[plot]), else Pillow."
        ),
        examples=EXAMPLES,
    )
    p.add_argument("model", metavar="MODEL", help="a model file written by train or model.save")
    p.add_argument("scene", metavar="SCENE", help="the image to scan (PNG, JPEG, ...)")
    p.add_argument("-o", "--out", required=True, metavar="OUT.png", help="the heatmap to write")
    p.add_argument(
        "--class",
        dest="cls",
        metavar="C",
        help="class index or name to map (default: the class with the highest score anywhere)",
    )
    p.add_argument(
        "--stride",
        type=_common.positive_int,
        help="window step in pixels (default: the network's own stride, one pass)",
    )
    p.add_argument(
        "--invert", action="store_true", help="use 1 - pixel (dark ink on light paper -> MNIST)"
    )
    p.add_argument("--npy", metavar="SCORES.npy", help="also save every score, (Ho, Wo, classes)")
    p.add_argument(
        "--plain", action="store_true", help="draw with Pillow even when matplotlib is installed"
    )
    p.set_defaults(run=run)
    return p


def _pick_class(spec, scores, names) -> int:
    k = scores.shape[-1]
    if spec is None:
        return int(np.unravel_index(np.argmax(scores), scores.shape)[-1])
    if spec in names:
        return names.index(spec)
    try:
        c = int(spec)
    except ValueError:
        c = -1
    if not 0 <= c < k:
        raise UsageError(f"--class {spec!r} is not a class of this model: 0..{k - 1} or a name")
    return c


def heat_canvas(score_map, scene_hw, window_hw, stride):
    """Each window's score painted over the stride x stride cell around its centre, on a canvas
    of the scene's size (NaN where no window is centred)."""
    canvas = np.full(scene_hw, np.nan)
    cells = np.kron(score_map, np.ones(stride))
    top = window_hw[0] // 2 - stride[0] // 2
    left = window_hw[1] // 2 - stride[1] // 2
    h = min(cells.shape[0], scene_hw[0] - top)
    w = min(cells.shape[1], scene_hw[1] - left)
    canvas[top : top + h, left : left + w] = cells[:h, :w]
    return canvas


def _draw_matplotlib(path, scene, heat, title):
    from matplotlib.figure import Figure

    from slidenet.utils.files import atomic_write

    fig = Figure(figsize=(6.4, 6.4 * scene.shape[0] / scene.shape[1] + 0.6), dpi=100)
    ax = fig.add_subplot()
    gray = scene.mean(axis=-1)
    ax.imshow(gray, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    im = ax.imshow(heat, cmap="inferno", alpha=0.6, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))


def _draw_pillow(path, scene, heat):
    from slidenet.filters import save_image

    gray = scene.mean(axis=-1)
    lo, hi = np.nanmin(heat), np.nanmax(heat)
    t = np.nan_to_num((heat - lo) / (hi - lo) if hi > lo else heat * 0, nan=0.0)
    rgb = np.stack([0.5 * gray + 0.5 * t, 0.5 * gray + 0.5 * t**2, 0.5 * gray], axis=-1)
    save_image(path, np.clip(rgb, 0, 1))


def run(args) -> int:
    from slidenet.applications import scan
    from slidenet.models.fully_convolutional import network_stride

    model, meta, target = _common.load_image_model(args.model)
    h, w, channels = target
    scene = _data.read_image(args.scene, channels)
    if args.invert:
        scene = 1.0 - scene
    if scene.shape[0] < h or scene.shape[1] < w:
        raise CLIError(
            f"{args.scene} is {scene.shape[0]}x{scene.shape[1]}, smaller than the model's "
            f"{h}x{w} input; scan needs a scene at least that large ('slidenet predict' resizes)"
        )
    stride = network_stride(model) if args.stride is None else (args.stride, args.stride)
    scores = scan(model, scene, stride=stride)
    names = _common.class_names(meta, scores.shape[-1])
    c = _pick_class(args.cls, scores, names)
    score_map = scores[..., c]
    heat = heat_canvas(score_map, scene.shape[:2], (h, w), stride)
    label = names[c] if names[c] == str(c) else f"{c} {names[c]}"
    i, j = np.unravel_index(np.argmax(score_map), score_map.shape)
    top, left = i * stride[0], j * stride[1]
    title = (
        f"class {label}: score of each {h}x{w} window at its centre (stride {stride[0]}); "
        f"max {score_map.max():.3f}"
    )
    if not args.plain and importlib.util.find_spec("matplotlib") is not None:
        _draw_matplotlib(args.out, scene, heat, title)
    else:
        _draw_pillow(args.out, scene, heat)
    if args.npy:
        from slidenet.utils.files import atomic_write

        atomic_write(args.npy, lambda f: np.save(f, scores, allow_pickle=False))
    print(
        f"scanned {args.scene} ({scene.shape[0]}x{scene.shape[1]}) with {h}x{w} windows at stride "
        f"{stride[0]}x{stride[1]}: {score_map.shape[0]}x{score_map.shape[1]} positions"
    )
    print(
        f"class {label}: max score {score_map.max():.4f} at the window rows {top}-{top + h - 1}, "
        f"columns {left}-{left + w - 1}"
    )
    print(f"wrote {args.out}" + (f" and {args.npy}" if args.npy else ""))
    return 0

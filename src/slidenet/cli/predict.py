"""``slidenet predict``: classify image files with a saved model; prints the top classes.

Each image is read with Pillow, converted to the model's channels (grayscale for 1, RGB for 3),
resized to the model's height x width when it differs (with a note) and scaled to [0, 1].
MNIST-style models expect light strokes on a dark background: a dark digit on white paper must
be inverted with ``--invert`` (never done silently; a note suggests it for mostly light images).
"""

from __future__ import annotations

import json

import numpy as np

from slidenet.cli import _common, _data
from slidenet.cli._common import note
from slidenet.utils.image_input import output_probabilities, to_model_input

EXAMPLES = """\
slidenet predict cnn.slidenet digit.png
slidenet predict cnn.slidenet scan1.png scan2.jpg --invert     # dark ink on white paper
slidenet predict fashion.slidenet shoe.jpg --top 5 --json"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "predict",
        help="classify image files with a saved model",
        description=(
            "Classify images with a saved model and print the most likely classes with their "
            "probabilities. Images are converted to the model's input: grayscale or RGB, resized "
            "to its size (with a note), scaled to [0, 1]. MNIST-style models expect a light digit "
            "on a dark background; use --invert for dark ink on light paper."
        ),
        examples=EXAMPLES,
    )
    p.add_argument("model", metavar="MODEL", help="a model file written by train or model.save")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--invert", action="store_true", help="use 1 - pixel (dark ink on light paper -> MNIST)"
    )
    p.add_argument(
        "--top", type=_common.positive_int, default=3, help="how many classes to show (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list, one entry per image")
    p.set_defaults(run=run)
    return p


def prepare(path, target, invert: bool) -> np.ndarray:
    """One image file as the model's input (H, W, C), float32 in [0, 1]."""
    image = _data.read_image(path, target[2])
    x, notes = to_model_input(image, target, invert, name=str(path))
    for message in notes:
        note(message)
    return x


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """The model's outputs as class probabilities (N, K)."""
    probs, notes = output_probabilities(outputs)
    for message in notes:
        note(message)
    return probs


def run(args) -> int:
    model, meta, target = _common.load_image_model(args.model)
    x = np.stack([prepare(path, target, args.invert) for path in args.images])
    probs = probabilities(model.predict(x, batch_size=64))
    names = _common.class_names(meta, probs.shape[1])
    k = min(args.top, probs.shape[1])
    results = []
    for path, p in zip(args.images, probs, strict=True):
        order = np.argsort(-p, kind="stable")[:k]
        top = [{"class": int(c), "name": names[c], "probability": float(p[c])} for c in order]
        results.append({"image": str(path), "top": top})
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for result in results:
        print(result["image"])
        for rank, t in enumerate(result["top"], 1):
            label = str(t["class"]) if t["name"] == str(t["class"]) else f"{t['class']} {t['name']}"
            print(f"  {rank}. {label:<16} {100 * t['probability']:6.2f}%")
    return 0

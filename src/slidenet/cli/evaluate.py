"""``slidenet evaluate``: loss, accuracy and per-class accuracy of a saved model on a data set."""

from __future__ import annotations

import json

import numpy as np

from slidenet.cli import _common, _data
from slidenet.cli._common import CLIError, UsageError

EXAMPLES = """\
slidenet evaluate cnn.slidenet --dataset mnist-sample
slidenet evaluate cnn.slidenet                       # the data set it was trained on
slidenet evaluate fashion.slidenet --dataset fashion-mnist --split train --json
slidenet evaluate pets.slidenet --dataset photos/"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "evaluate",
        help="loss, accuracy and per-class accuracy of a saved model",
        description=(
            "Evaluate a saved model on the test split of a data set (inference mode): the mean "
            "loss, the accuracy, and a table of the accuracy of every class."
        ),
        examples=EXAMPLES,
    )
    _common.add_saved_model_and_data(p)
    p.add_argument(
        "--batch-size", type=_common.positive_int, default=256, help="examples per forward pass"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)
    return p


def per_class(labels: np.ndarray, predicted: np.ndarray, n_classes: int):
    """[(images, correct)] for every class 0..n_classes-1."""
    return [
        (int(np.sum(labels == c)), int(np.sum((labels == c) & (predicted == c))))
        for c in range(n_classes)
    ]


def run(args) -> int:
    model, meta = _common.load(args.model)
    spec = args.dataset or meta.get("train", {}).get("dataset")
    if spec is None:
        raise UsageError(
            "the following arguments are required: --dataset (the model file does not record one)"
        )
    if model.loss is None:
        _common.compile_classifier(model)
    data = _data.load(spec, target=_common.model_input(model))
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    outputs = model.output_shape[-1]
    n_classes = max(outputs, 2) if outputs == 1 else outputs
    if data.n_classes > n_classes:
        raise CLIError(
            f"{spec} has {data.n_classes} classes but the model has only {outputs} outputs"
        )
    values = model.evaluate(x, y, batch_size=args.batch_size, verbose=0)
    loss = values[0] if isinstance(values, list) else values
    probs = model.predict(x, batch_size=args.batch_size)
    predicted = (probs[:, 0] > 0.5).astype(np.int64) if outputs == 1 else probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    names = _common.class_names(meta, n_classes)
    if data.class_names:
        names[: len(data.class_names)] = data.class_names
    rows = per_class(y, predicted, n_classes)
    if args.json:
        print(
            json.dumps(
                {
                    "model": str(args.model),
                    "dataset": spec,
                    "split": args.split,
                    "images": len(x),
                    "loss": float(loss),
                    "accuracy": accuracy,
                    "per_class": [
                        {
                            "class": c,
                            "name": names[c],
                            "images": n,
                            "correct": k,
                            "accuracy": k / n if n else None,
                        }
                        for c, (n, k) in enumerate(rows)
                    ],
                },
                indent=1,
            )
        )
        return 0
    print(f"{args.model} on {spec} ({args.split} split, {len(x):,} images)")
    print(f"loss: {loss:.4f}\naccuracy: {accuracy:.4f} ({int(np.sum(predicted == y)):,} correct)")
    width = max(5, *(len(f"{c} {n}") for c, n in enumerate(names)))
    print(f"\n{'class':<{width}}  {'images':>7}  {'correct':>7}  {'accuracy':>8}")
    for c, (n, k) in enumerate(rows):
        label = str(c) if names[c] == str(c) else f"{c} {names[c]}"
        acc = f"{k / n:.4f}" if n else "-"
        print(f"{label:<{width}}  {n:>7,}  {k:>7,}  {acc:>8}")
    return 0

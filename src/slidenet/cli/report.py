"""``slidenet report``: one self-contained HTML page that shows what a trained model does.

The page (see :mod:`slidenet.viz.report`) holds the summary with its arithmetic, the training
curves kept in the model file, test metrics, the confusion matrix, the most confident mistakes,
the filters, and activation, occlusion and saliency maps of a few test images. Every picture is
inlined, so the file opens offline in any browser. Needs matplotlib (``pip install
'slidenet[plot]'``). ``slidenet train --report PATH`` writes the same page after training.
"""

from __future__ import annotations

from pathlib import Path

from slidenet.cli import _common, _data
from slidenet.cli._common import CLIError, UsageError

EXAMPLES = """\
slidenet report cnn.slidenet --dataset mnist-sample -o report.html
slidenet report cnn.slidenet                    # the data set it was trained on -> cnn.html
slidenet report fashion.slidenet --dataset fashion-mnist --limit 2000 --examples 5"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "report",
        help="write an HTML report: curves, metrics, confusion matrix, filters, maps",
        description=(
            "Write one self-contained HTML file (pictures inlined, no network) about a saved "
            "classifier: summary and arithmetic, training curves (when the model file holds its "
            "history), test loss and accuracy per class, confusion matrix, most confident "
            "mistakes, filters, and activation, occlusion and saliency maps for a few test "
            "images. Needs matplotlib: pip install 'slidenet[plot]'."
        ),
        examples=EXAMPLES,
    )
    _common.add_saved_model_and_data(p)
    p.add_argument(
        "-o",
        "--out",
        metavar="PATH",
        help="HTML file to write (default: MODEL with the suffix .html)",
    )
    p.add_argument(
        "--limit",
        type=_common.positive_int,
        metavar="N",
        help="use only the first N images of the split (default: all)",
    )
    p.add_argument(
        "--examples",
        type=_common.non_negative_int,
        default=3,
        metavar="N",
        help="images shown with their activation, occlusion and saliency maps (default 3)",
    )
    p.add_argument("--title", help="the page title (default: 'slidenet report: MODEL NAME')")
    p.add_argument(
        "--batch-size", type=_common.positive_int, default=256, help="examples per forward pass"
    )
    p.set_defaults(run=run)
    return p


def require_viz():
    """slidenet.viz, or a CLIError that says how to install matplotlib."""
    try:
        import slidenet.viz as viz
    except ImportError as err:
        raise CLIError(str(err)) from None
    return viz


def merged_history(prior: dict, model, trained: bool) -> dict:
    """The whole history after ``slidenet train``: a resumed checkpoint's epochs, then this run's
    (when it trained; otherwise the model's history is the checkpoint's own)."""
    current = model.history.history if model.history is not None else {}
    if not trained:
        return dict(current)
    keys = dict.fromkeys([*prior, *current])
    return {k: [*prior.get(k, []), *current.get(k, [])] for k in keys}


def write(
    model,
    data,
    path,
    *,
    split="test",
    limit=None,
    examples=3,
    title=None,
    meta=None,
    history=None,
    batch_size=256,
) -> int:
    """Write the report of ``model`` on ``data`` (a CLI Dataset) to ``path``; returns the number
    of images used. Shared by ``slidenet report`` and ``slidenet train --report``."""
    write_report = require_viz().write_report
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    outputs = model.output_shape[-1]
    n_classes = 2 if outputs == 1 else outputs
    if data.n_classes > n_classes:
        raise CLIError(
            f"{data.name} has {data.n_classes} classes but the model has only {outputs} outputs"
        )
    names = _common.class_names(meta or {}, n_classes)
    if data.class_names:
        names[: len(data.class_names)] = data.class_names
    if model.loss is None:
        _common.compile_classifier(model)
    write_report(
        path,
        model,
        x,
        y,
        class_names=names,
        title=title,
        dataset=f"{data.name} ({split} split)",
        history=history,
        examples=examples,
        batch_size=batch_size,
    )
    return len(x)


def run(args) -> int:
    model, meta = _common.load(args.model)
    spec = args.dataset or meta.get("train", {}).get("dataset")
    if spec is None:
        raise UsageError(
            "the following arguments are required: --dataset (the model file does not record one)"
        )
    out = Path(args.out) if args.out else Path(args.model).with_suffix(".html")
    data = _data.load(spec, target=_common.model_input(model))
    n = write(
        model,
        data,
        out,
        split=args.split,
        limit=args.limit,
        examples=args.examples,
        title=args.title,
        meta=meta,
        batch_size=args.batch_size,
    )
    history = "with" if model.history and model.history.history.get("loss") else "without"
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; {n:,} images, {history} training curves)"
    )
    return 0

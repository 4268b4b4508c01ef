"""``slidenet summary``: the layer table of a saved model or of a model builder."""

from __future__ import annotations

from slidenet.cli import _common
from slidenet.cli._common import UsageError

EXAMPLES = """\
slidenet summary cnn.slidenet
slidenet summary --model mnist_cnn
slidenet summary --model lenet5 --input-shape 28,28,1 --classes 10
slidenet summary --model my_nets.py:small_cnn"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "summary",
        help="print the layers, output shapes and parameters of a model",
        description=(
            "Print Keras' summary table, with the output-size arithmetic of every convolution "
            "and pooling layer, for a saved model file or a model builder (--model)."
        ),
        examples=EXAMPLES,
    )
    p.add_argument("path", metavar="MODEL", nargs="?", help="a model file")
    p.add_argument(
        "--model",
        metavar="NAME|FILE.py:FUNCTION",
        help=f"a built-in model ({', '.join(_common.builder_names())}) or a builder function in "
        "a Python file (this runs that file)",
    )
    p.add_argument(
        "--input-shape",
        type=_common.shape,
        metavar="H,W,C",
        help="input shape for --model (default: the builder's own)",
    )
    p.add_argument("--classes", type=_common.positive_int, help="number of classes for --model")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    if (args.path is None) == (args.model is None):
        raise UsageError("give either a MODEL file or --model NAME, not both or neither")
    if args.path is not None:
        if args.input_shape or args.classes:
            raise UsageError("--input-shape and --classes go with --model, not a model file")
        model, _ = _common.load(args.path)
    else:
        _, model = _common.build_model(args.model, args.input_shape, args.classes)
    model.summary()
    return 0

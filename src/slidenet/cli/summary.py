"""``slidenet summary``: the layer table of a saved model or of a model builder."""

from __future__ import annotations

from slidenet.cli import _common

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
    _common.add_model_source(p)
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    model = _common.model_from_source(args)
    model.summary()
    return 0

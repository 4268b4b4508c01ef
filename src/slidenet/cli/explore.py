"""``slidenet explore``: a local web page to look inside a saved model, layer by layer.

Draw a digit (one-channel models), pick a test image of ``--dataset`` or upload an image; the
page shows every layer's output and, for a clicked unit, the arithmetic behind it. Serves on
127.0.0.1 only unless ``--host`` says otherwise (with a warning). Needs the ``explore`` extra:
``pip install 'slidenet[explore]'``.
"""

from __future__ import annotations

from slidenet.cli import _common, _data
from slidenet.cli._common import CLIError, note

EXAMPLES = """\
slidenet explore demo/mnist_cnn.slidenet --dataset mnist-sample
slidenet explore cnn.slidenet --port 8001 --no-browser
slidenet explore fashion.slidenet --dataset fashion-mnist --host 0.0.0.0   # reachable on the LAN"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "explore",
        help="open a local web page that shows every layer of a model at work",
        description=(
            "Serve a local web page for a saved image classifier: draw or pick an input and see "
            "every layer's output (activation maps, bars, class probabilities); click a unit to "
            "see its receptive field and the dot product behind it. Stop with Ctrl-C. Needs the "
            "explore extra: pip install 'slidenet[explore]'."
        ),
        examples=EXAMPLES,
    )
    p.add_argument("model", metavar="MODEL", help="a model file written by train or model.save")
    p.add_argument(
        "--dataset",
        metavar="DATASET",
        help=_data.HELP + "; its test split is offered (default: the one the model was trained "
        "on, when recorded and at hand)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; others get a warning)",
    )
    p.add_argument(
        "--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)"
    )
    p.add_argument(
        "--no-browser", action="store_true", help="print the URL but do not open a browser"
    )
    p.set_defaults(run=run)
    return p


def _port(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return value


def run(args) -> int:
    try:
        from slidenet.explore import create_app, require_extra
        from slidenet.explore.server import allowed_hosts, serve

        require_extra()
    except ImportError as err:
        raise CLIError(str(err)) from None
    model, meta, target = _common.load_image_model(args.model)
    data = None
    if args.dataset:
        data = _data.load(args.dataset, target)
    elif meta.get("train", {}).get("dataset"):  # the one it was trained on, when it is at hand
        recorded = meta["train"]["dataset"]
        try:
            data = _data.load(recorded, target)
        except (CLIError, OSError, ValueError) as err:
            note(f"not offering test images of {recorded!r}, the model's data set: {err}")
    outputs = model.output_shape[-1]
    names = _common.class_names(meta, 2 if outputs == 1 else outputs)
    if data is not None and data.class_names and len(data.class_names) <= len(names):
        names[: len(data.class_names)] = data.class_names
    try:
        app = create_app(model, data, class_names=names, allowed_hosts=allowed_hosts(args.host))
    except ValueError as err:
        raise CLIError(str(err)) from None
    serve(app, args.host, args.port, open_browser=not args.no_browser)
    return 0

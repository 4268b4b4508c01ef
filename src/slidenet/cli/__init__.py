"""The ``slidenet`` command: ``train``, ``evaluate``, ``predict`` and ``summary``.

Each command is a module here with ``add_parser(subparsers)`` and ``run(args) -> int``; ``main``
wires them together. Exit codes: 0 success, 1 a runtime error (one line
``slidenet CMD: error: ...`` on stderr; ``--debug`` shows the traceback instead), 2 a usage error,
130 interrupted (Ctrl-C).

>>> main(["--version"])  # doctest: +ELLIPSIS
slidenet ...
0
"""

from __future__ import annotations

import argparse
import importlib
import sys

from slidenet import __version__
from slidenet.cli._common import EXPECTED, Parser, UsageError, one_line

__all__ = ["COMMANDS", "build_parser", "main"]

#: Command name -> module in this package.
COMMANDS = (
    "train",
    "evaluate",
    "predict",
    "summary",
    "filter",
    "explain",
    "report",
    "export",
    "scan",
    "explore",
)

EXAMPLES = """\
slidenet train --model mnist_cnn --dataset mnist-sample --epochs 8 --out cnn.slidenet
slidenet evaluate cnn.slidenet --dataset mnist-sample
slidenet predict cnn.slidenet digit.png
slidenet scan cnn.slidenet scene.png -o heatmap.png
slidenet summary --model lenet5
slidenet filter photo.png --kernel gaussian:5:1.2 -o blurred.png
slidenet explain conv --input 32x32x3 --filters 10 --kernel 5 --padding 2
slidenet report cnn.slidenet --dataset mnist-sample -o report.html
slidenet export cnn.slidenet -o cnn.onnx
slidenet explore cnn.slidenet --dataset mnist-sample
slidenet train --help"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="slidenet",
        description="Train, evaluate and use slidenet CNNs from the command line.",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"slidenet {__version__}")
    parser.add_argument(
        "--debug", dest="debug_all", action="store_true", help="show tracebacks of errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        importlib.import_module(f"slidenet.cli.{name}").add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    """Run ``slidenet`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the sub-command's parser: "slidenet train: error: ..."
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exit_:  # --help, --version and usage errors
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"slidenet {args.command}"
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug or args.debug_all:
            raise
        message = one_line(err)
        if isinstance(err, UsageError):
            print(f"{prog}: error: {message} (see '{prog} --help')", file=sys.stderr)
            return 2
        if not isinstance(err, EXPECTED):
            message += " (run with --debug for the traceback)"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1

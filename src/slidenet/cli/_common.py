"""Shared pieces of the command line: errors, parsers, model builders and model files.

Every command module has ``add_parser(subparsers)`` and ``run(args) -> int``; the helpers here keep
them short. Messages for the user go to stderr as ``note: ...``; results go to stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
import textwrap
import zipfile
from pathlib import Path

from slidenet._validation import did_you_mean

#: Extra member of model files written by ``slidenet train``: class names and the run's settings.
#: ``slidenet.load_model`` ignores it; the CLI reads it for class names and for ``--resume``.
META_NAME = "slidenet-cli.json"


class CLIError(Exception):
    """A runtime error reported as one line ``slidenet CMD: error: ...`` with exit code 1."""


class UsageError(CLIError):
    """A wrong combination of arguments: reported like argparse's errors, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``slidenet train: error: ... (see 'slidenet train -h')``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_command(subparsers, name, *, help, description, examples):
    """A sub-command parser with an ``examples:`` epilog and the common ``--debug`` flag."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    parser.set_defaults(parser=parser)
    return parser


def note(message: str) -> None:
    """A remark for the user (stderr, so that stdout stays machine-readable)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


#: Errors whose message speaks for itself; others are shown with their type and a --debug hint.
EXPECTED = (CLIError, ValueError, OSError, ImportError, RuntimeError, ArithmeticError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (library messages may span several)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, EXPECTED):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ----- numbers and shapes given on the command line --------------------------------------------
def _number(convert, ok, wanted):
    """An argparse type: convert the text, then check it (e.g. "a positive integer")."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted.replace(" ", "_")
    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a number > 0")


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """'28' -> (28, 28); '32x24' -> (32, 24) (height x width)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, e.g. 28x28, got {text!r}")
    return sizes


def shape(text: str) -> tuple[int, ...]:
    """'28,28,1' -> (28, 28, 1)."""
    try:
        sizes = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes like 28,28,1, got {text!r}")
    return sizes


# ----- model builders ---------------------------------------------------------------------------
def builder_names() -> list[str]:
    """The model builders of :mod:`slidenet.applications` (its ``__all__``)."""
    from slidenet import applications

    return list(applications.__all__)


def resolve_builder(spec: str):
    """(display name, function) for a builder name or ``path/to/file.py:function``.

    A file is imported and run as Python: this executes the user's own code, by design.
    """
    from slidenet import applications

    path, sep, func = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return f"{Path(path).name}:{func}", _function_from_file(Path(path), func)
    if spec.endswith(".py"):
        raise CLIError(f"name the function that builds the model: {spec}:FUNCTION")
    names = builder_names()
    if spec not in names:
        raise CLIError(
            f"unknown model {spec!r}.{did_you_mean(spec, names)} Built-in models: "
            f"{', '.join(names)}; or give FILE.py:FUNCTION for your own builder."
        )
    return spec, getattr(applications, spec)


def _function_from_file(path: Path, func: str):
    if not path.is_file():
        raise CLIError(f"model file {str(path)!r} does not exist")
    module_name = f"_slidenet_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    fn = getattr(module, func, None)
    if not callable(fn):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and n[0] != "_"]
        raise CLIError(
            f"{str(path)!r} has no function {func!r}"
            + (f"; it defines: {', '.join(found)}" if found else "")
        )
    return fn


def accepts(fn, keyword: str) -> bool:
    """Whether ``fn`` takes the keyword argument ``keyword``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_model(spec, input_shape=None, classes=None):
    """Call a builder (a spec or ``resolve_builder``'s pair) with ``input_shape=`` and
    ``classes=`` where it accepts them; returns (display name, model)."""
    from slidenet.models.functional import Model
    from slidenet.models.sequential import Sequential

    name, fn = resolve_builder(spec) if isinstance(spec, str) else spec
    kwargs = {}
    if input_shape is not None and accepts(fn, "input_shape"):
        kwargs["input_shape"] = tuple(input_shape)
    if classes is not None and accepts(fn, "classes"):
        kwargs["classes"] = int(classes)
    model = fn(**kwargs)
    if not isinstance(model, Sequential | Model):
        raise CLIError(f"{name} returned {type(model).__name__}, not a slidenet model")
    if not model.built:
        if input_shape is None:
            raise CLIError(f"{name} built a model without an input shape; give it one")
        model.build(input_shape)
    return name, model


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adamax", "adagrad", "adadelta", "lion")


def compile_classifier(model, optimizer=None, lr=None) -> None:
    """Compile for integer class labels: sparse cross-entropy (binary for one output), accuracy."""
    from slidenet import optimizers

    opt = optimizers.get(optimizer or "adam")
    if lr is not None:
        opt = type(opt)(**{**opt.get_config(), "learning_rate": lr})
    binary = model.output_shape[-1] == 1
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])


def model_input(model) -> tuple[int, int, int] | None:
    """(H, W, C) of an image model, or None for other inputs."""
    shape = model.input_shape
    if shape is None or len(shape) != 4:
        return None
    return tuple(int(s) for s in shape[1:])


# ----- model files ------------------------------------------------------------------------------
def read_meta(path) -> dict:
    """The CLI's metadata of a model file (empty for files written by ``model.save``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if META_NAME not in zf.namelist():
                return {}
            meta = json.loads(zf.read(META_NAME))
    except (OSError, ValueError, zipfile.BadZipFile):
        return {}
    return meta if isinstance(meta, dict) else {}


def load(path):
    """(model, metadata) from a model file; the messages of load_model are kept."""
    import slidenet

    model = slidenet.load_model(path)
    return model, read_meta(path)


def save(model, path, meta: dict) -> None:
    """``model.save`` plus the CLI's metadata member, in one atomic write (temp file, fsync,
    rename): an interrupted save leaves the previous file intact."""
    from slidenet.models.saving import save_model

    save_model(model, path, extra_json={META_NAME: meta})


def class_names(meta: dict, n_classes: int) -> list[str]:
    """Names from the metadata when they fit the model's outputs, else '0', '1', ..."""
    names = meta.get("class_names")
    if isinstance(names, list) and len(names) == n_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(n_classes)]


def add_model_source(p) -> None:
    """MODEL (a file) or --model NAME|FILE.py:FUNCTION with --input-shape / --classes."""
    p.add_argument("path", metavar="MODEL", nargs="?", help="a model file")
    p.add_argument(
        "--model",
        metavar="NAME|FILE.py:FUNCTION",
        help=f"a built-in model ({', '.join(builder_names())}) or a builder function in "
        "a Python file (this runs that file)",
    )
    p.add_argument(
        "--input-shape",
        type=shape,
        metavar="H,W,C",
        help="input shape for --model (default: the builder's own)",
    )
    p.add_argument("--classes", type=positive_int, help="number of classes for --model")


def model_from_source(args):
    """The model that :func:`add_model_source`'s arguments name."""
    if (args.path is None) == (args.model is None):
        raise UsageError("give either a MODEL file or --model NAME, not both or neither")
    if args.path is not None:
        if args.input_shape or args.classes:
            raise UsageError("--input-shape and --classes go with --model, not a model file")
        return load(args.path)[0]
    return build_model(args.model, args.input_shape, args.classes)[1]


def load_image_model(path):
    """(model, meta, (H, W, C)) for a model file whose inputs are images; CLIError otherwise."""
    model, meta = load(path)
    target = model_input(model)
    if target is None:
        raise CLIError(f"{path} expects inputs of shape {model.input_shape}, not images (H, W, C)")
    return model, meta, target


def add_saved_model_and_data(p) -> None:
    """MODEL (a file), --dataset (default: the recorded one) and --split, for commands that run
    a saved model on a data set (evaluate, report)."""
    from slidenet.cli import _data

    p.add_argument("model", metavar="MODEL", help="a model file written by train or model.save")
    p.add_argument(
        "--dataset",
        metavar="DATASET",
        help=_data.HELP + " (default: the one the model was trained on, when recorded)",
    )
    p.add_argument(
        "--split", choices=("test", "train"), default="test", help="which split (default test)"
    )

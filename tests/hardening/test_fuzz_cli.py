"""Fuzz the command line: ``slidenet.cli.main(argv)`` with random argument lists.

argv is built from the real command and option names (read from the parser), junk words, and
values that are numbers, odd numbers, shapes, and paths to a tiny valid model, a corrupt model, an
image, an empty file, a folder and a missing file. Every run must end with an exit code: 0, 1 with a
one-line message, or 2 (usage). Never a traceback, never an exception out of ``main``, never the
"(run with --debug for the traceback)" note that marks an error the CLI did not expect.

Training, evaluation and prediction run on at most 16 examples (the methods are wrapped), the data
loaders never reach the network, and every file is written in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_support import FUZZ
from hypothesis import given
from hypothesis import strategies as st

import slidenet as sn
from slidenet.cli import build_parser, main
from slidenet.datasets import fashion_mnist, mnist
from slidenet.models.training import TrainingMixin


def _option_names():
    names, commands = set(), []
    parser = build_parser()
    for action in parser._actions:  # noqa: SLF001 - reading argparse's table is the point
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                commands.append(name)
                for a in sub._actions:  # noqa: SLF001
                    names.update(a.option_strings)
        names.update(action.option_strings)
    names.discard("--debug")  # --debug asks for tracebacks
    return sorted(commands), sorted(names)


COMMANDS, OPTIONS = _option_names()
WORDS = [
    "conv",
    "pool",
    "model",
    "mnist_cnn",
    "lenet5",
    "xo",
    "mnist-sample",
    "mnist",
    "gaussian:3:1",
]
WORDS += ["box:3", "sharpen", "identity:4", "same", "valid", "full", "zero", "wrap", "max", "avg"]
WORDS += ["0", "1", "2", "-1", "3.5", "1e999", "nan", "inf", "5x5", "5x5x1", "0x3", "abc", "", "-"]
WORDS += ["--", "-h", "--help", "=", "5,5,1", "28", "adam", "sgd", "json", "fashion-mnist"]
FILES = ["MODEL", "CORRUPT", "IMAGE", "EMPTY", "FOLDER", "MISSING", "NETS:tiny", "NETS:nothing"]

NETS = """\
import slidenet as keras


def tiny(input_shape=(5, 5, 1), classes=3):
    return keras.Sequential([keras.layers.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(classes, activation="softmax")])
"""

argv_tokens = st.lists(
    st.one_of(
        st.sampled_from(OPTIONS),
        st.sampled_from(WORDS),
        st.sampled_from(FILES),
        st.text(alphabet="abx-=:,.0123456789 ", max_size=6),
    ),
    max_size=7,
)


def _files(tmp: Path) -> dict[str, str]:
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [sn.layers.Input((5, 5, 1)), sn.layers.Flatten(), sn.layers.Dense(3, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.save(tmp / "model.slidenet")
    (tmp / "corrupt.slidenet").write_bytes((tmp / "model.slidenet").read_bytes()[:300])
    from PIL import Image

    Image.fromarray(np.arange(25, dtype=np.uint8).reshape(5, 5) * 10).save(tmp / "image.png")
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "folder").mkdir()
    (tmp / "nets.py").write_text(NETS)
    return {
        "MODEL": str(tmp / "model.slidenet"),
        "CORRUPT": str(tmp / "corrupt.slidenet"),
        "IMAGE": str(tmp / "image.png"),
        "EMPTY": str(tmp / "empty.png"),
        "FOLDER": str(tmp / "folder"),
        "MISSING": str(tmp / "missing.slidenet"),
        "NETS:tiny": f"{tmp / 'nets.py'}:tiny",
        "NETS:nothing": f"{tmp / 'nets.py'}:nothing",
    }


def _first_16(method):
    def wrapper(self, x=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = x[:16]
            if args and isinstance(args[0], np.ndarray):
                args = (args[0][:16], *args[1:])
            if isinstance(kwargs.get("y"), np.ndarray):
                kwargs["y"] = kwargs["y"][:16]
        return method(self, x, *args, **kwargs)

    return wrapper


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


CLOSED = _closed_port()  # downloads fail at once: nothing listens there


def run_main(argv, tmp):
    """(exit code, stdout + stderr) of ``main(argv)`` in ``tmp``, offline, on tiny data."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.setenv("SLIDENET_DATA", str(Path(tmp) / "cache"))
        for module in (mnist, fashion_mnist):
            mp.setattr(module, "SYSTEM_COPIES", [])
            mp.setattr(module, "MIRRORS", [CLOSED])
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            mp.delenv(var, raising=False)
        for name in ("fit", "evaluate", "predict"):
            mp.setattr(TrainingMixin, name, _first_16(getattr(TrainingMixin, name)))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(argv)
    return code, out.getvalue()


@FUZZ
@given(st.one_of(st.sampled_from(COMMANDS), st.sampled_from(WORDS)), argv_tokens)
def test_cli_never_shows_a_traceback(command, tokens):
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp))
        argv = [command, *(files.get(t, t) for t in tokens)]
        try:
            code, text = run_main(argv, tmp)
        except BaseException as err:  # noqa: BLE001
            pytest.fail(f"slidenet {argv} raised {type(err).__name__}: {err}")
    assert isinstance(code, int) and code in (0, 1, 2), (argv, code, text)
    assert "Traceback" not in text, (argv, text)
    assert "run with --debug" not in text, (argv, text)
    if code == 1:
        assert "error:" in text, (argv, text)

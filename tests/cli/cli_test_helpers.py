"""Helpers for the CLI tests (imported by name; not a conftest.py, see tests/datasets).

* ``run_cli(capsys, *argv)`` runs ``slidenet.cli.main`` in-process: (exit code, stdout, stderr).
* ``nets_file(tmp_path)`` writes a Python file of small model builders for ``--model FILE:FUNC``.
* ``digits_npz(path, ...)`` writes a Keras-format .npz from the bundled MNIST sample.
* ``isolate_data(monkeypatch, tmp_path)``: the mnist/fashion-mnist loaders see only ``tmp_path``
  (no system copies, mirrors at a closed local port), so no test touches the network.
"""

from __future__ import annotations

import socket

import numpy as np

from slidenet.cli import main
from slidenet.datasets import fashion_mnist, mnist, mnist_sample

__all__ = ["NETS", "digits_npz", "isolate_data", "nets_file", "run_cli"]

NETS = '''\
import slidenet as keras


def tiny(input_shape=(28, 28, 1), classes=2):
    """A few thousand parameters, with dropout (its random state must survive a resume)."""
    return keras.Sequential(
        [
            keras.layers.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def fixed():
    """Takes no arguments: always 16x16 RGB input and 2 classes."""
    return tiny((16, 16, 3), 2)


def not_a_model(input_shape=None, classes=None):
    return 42


def broken(input_shape=None, classes=None):
    raise RuntimeError("something inside the user's builder failed")
'''


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``slidenet ARGV`` run in this process."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def nets_file(tmp_path):
    """Write nets.py into tmp_path and return its path as a string."""
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return str(path)


def digits_npz(path, n_train=600, n_test=200, class_names=None):
    """A Keras-format .npz of the first bundled digits; returns the four arrays."""
    (x_train, y_train), (x_test, y_test) = mnist_sample.load_data()
    arrays = {
        "x_train": x_train[:n_train],
        "y_train": y_train[:n_train],
        "x_test": x_test[:n_test],
        "y_test": y_test[:n_test],
    }
    extra = {} if class_names is None else {"class_names": np.array(class_names)}
    np.savez(path, **arrays, **extra)
    return arrays


def isolate_data(monkeypatch, tmp_path):
    """The data cache in tmp_path/cache; no system copies; downloads fail at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    monkeypatch.setenv("SLIDENET_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("SLIDENET_MIRROR", raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    for module in (mnist, fashion_mnist):
        monkeypatch.setattr(module, "MIRRORS", [closed])
        monkeypatch.setattr(module, "SYSTEM_COPIES", [])
    return tmp_path / "cache"

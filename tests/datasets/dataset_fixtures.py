"""Fixtures for the data set tests: tiny IDX fixtures, a local HTTP server, and isolation.

Test modules import them all (``from dataset_fixtures import *``). This is not a conftest.py
because two conftest.py files in folders without ``__init__.py`` collide under
``--doctest-modules`` (tests/ops has one).
Importing the autouse fixture ``isolated`` makes every test of the module run with ``SLIDENET_DATA``
in ``tmp_path``, no system copies, and mirrors at a closed local port, so no test reads the
machine's data or touches the network.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from slidenet.datasets import fashion_mnist, mnist
from slidenet.datasets._mnist_like import IDX_FILES
from slidenet.datasets.utils import write_idx

__all__ = ["closed_url", "fake_split", "http_server", "isolated", "write_fixture"]

MODULES = {"mnist": mnist, "fashion_mnist": fashion_mnist}
SUBDIRS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}


def _closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_url() -> str:
    """Base URL of a local port that refuses connections."""
    return f"http://127.0.0.1:{_closed_port()}/"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, closed_url):
    """Cache in tmp_path, no system copies, no proxies, and mirrors that refuse connections."""
    monkeypatch.setenv("SLIDENET_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("SLIDENET_MIRROR", raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    for name, module in MODULES.items():
        monkeypatch.setattr(module, "MIRRORS", [f"{closed_url}{SUBDIRS[name]}/"])
        monkeypatch.setattr(module, "SYSTEM_COPIES", [])


def _fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n, dtype=np.uint8),
    )


@pytest.fixture
def fake_split():
    """``fake_split(n, seed)``: random images (n, 28, 28) uint8 and labels (n,) uint8 in 0..9."""
    return _fake_split


@pytest.fixture
def write_fixture():
    """``write_fixture(folder, gz=True, n_train=20, n_test=10)`` writes the four IDX files.

    Returns ``((x_train, y_train), (x_test, y_test))`` as written.
    """

    def write(folder: Path, gz: bool = True, n_train: int = 20, n_test: int = 10, seed: int = 0):
        folder.mkdir(parents=True, exist_ok=True)
        train, test = _fake_split(n_train, seed), _fake_split(n_test, seed + 1)
        arrays = [train[0], train[1], test[0], test[1]]
        for name, array in zip(IDX_FILES, arrays, strict=True):
            write_idx(folder / (f"{name}.gz" if gz else name), array)
        return train, test

    return write


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path / "www"`` on 127.0.0.1 (ephemeral port); yields (base_url, root, server)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""``slidenet explore``: arguments, the missing-extra message, the URL and the browser, warnings
for other hosts, and a clean stop on Ctrl-C (a real process, a real signal)."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from explore_helpers import digits_cnn

import slidenet as keras
from slidenet.cli import main

pytest.importorskip("uvicorn")


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "digits.slidenet"
    digits_cnn().save(path)
    return path


@pytest.fixture
def no_serving(monkeypatch):
    """uvicorn's Server.run returns at once (after saying it started); browsers are recorded."""
    import uvicorn

    opened = []

    def fake_run(self, sockets=None):
        self.started = True
        time.sleep(0.3)  # the browser opener polls for started

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr("webbrowser.open", opened.append)
    return opened


def test_help_names_the_options_and_the_extra(capsys):
    code, out, _ = run_cli(capsys, "explore", "--help")
    assert code == 0
    for word in ("--dataset", "--host", "--port", "--no-browser", "slidenet[explore]"):
        assert word in out
    code, out, _ = run_cli(capsys, "--help")
    assert "explore" in out


def test_missing_extra_is_one_line_naming_it(capsys, model_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    code, out, err = run_cli(capsys, "explore", model_file, "--no-browser")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "pip install 'slidenet[explore]'" in err
    assert "missing: uvicorn" in err


def test_prints_the_url_and_opens_the_browser(capsys, model_file, no_serving):
    code, out, err = run_cli(capsys, "explore", model_file, "--port", "0", "--dataset", "xo")
    assert code == 0 and err == ""
    assert out.startswith("slidenet explore: serving on http://127.0.0.1:")
    deadline = time.monotonic() + 5
    while not no_serving and time.monotonic() < deadline:
        time.sleep(0.05)
    assert no_serving and no_serving[0].startswith("http://127.0.0.1:")
    assert no_serving[0] in out


def test_the_recorded_data_set_is_the_default(capsys, tmp_path, monkeypatch):
    from slidenet.cli._common import save

    served = []
    monkeypatch.setattr("slidenet.explore.server.serve", lambda app, *a, **k: served.append(app))
    path = tmp_path / "trained.slidenet"
    save(digits_cnn(), path, {"train": {"dataset": "xo"}, "class_names": list("abcdefghij")})
    code, _, err = run_cli(capsys, "explore", path, "--no-browser")
    explorer = served[0].state.explorer
    assert code == 0 and explorer.data.name == "xo" and explorer.class_names[0] == "O"
    save(digits_cnn(), path, {"train": {"dataset": str(tmp_path / "gone.npz")}})
    code, _, err = run_cli(capsys, "explore", path, "--no-browser")
    assert code == 0 and served[1].state.explorer.data is None
    assert err.startswith("note: not offering test images of") and err.count("\n") == 1


def test_no_browser_and_a_warning_for_other_hosts(capsys, model_file, no_serving):
    code, out, err = run_cli(capsys, "explore", model_file, "--port", "0", "--host", "0.0.0.0")
    code, out, err = run_cli(
        capsys, "explore", model_file, "--port", "0", "--host", "0.0.0.0", "--no-browser"
    )
    assert code == 0 and "serving on http://127.0.0.1:" in out
    assert err.startswith("warning: listening on 0.0.0.0") and "127.0.0.1" in err
    time.sleep(0.4)
    assert len(no_serving) == 1  # from the first call only


def test_errors_are_one_line(capsys, model_file, tmp_path, no_serving):
    flat = tmp_path / "flat.slidenet"
    keras.Sequential([keras.layers.Input((10,)), keras.layers.Dense(2)]).save(flat)
    code, _, err = run_cli(capsys, "explore", flat, "--no-browser")
    assert code == 1 and "not images" in err
    assert err.startswith("slidenet explore: error:") and err.count("\n") == 1
    code, _, err = run_cli(capsys, "explore", model_file, "--dataset", "nope", "--no-browser")
    assert code == 1 and "unknown dataset 'nope'" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "explore", model_file, "--port", "70000")
    assert code == 2 and "port number" in err
    code, _, err = run_cli(capsys, "explore", tmp_path / "none.slidenet")
    assert code == 1 and err.count("\n") == 1


def test_busy_port_is_a_one_line_error(capsys, model_file):
    from slidenet.explore.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        code, _, err = run_cli(capsys, "explore", model_file, "--port", port, "--no-browser")
    finally:
        sock.close()
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err and err.count("\n") == 1


def test_ctrl_c_stops_the_server_cleanly(model_file):
    command = [sys.executable, "-m", "slidenet.cli", "explore", str(model_file)]
    with subprocess.Popen(
        [*command, "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert "serving on http://127.0.0.1:" in line
            url = line.split("serving on ")[1].split()[0]
            with urllib.request.urlopen(url + "api/model", timeout=30) as reply:
                assert json.loads(reply.read())["model"] == "digits_cnn"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130 and "slidenet explore: interrupted" in err, err
    assert "Traceback" not in err

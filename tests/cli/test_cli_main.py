"""`slidenet` itself: help with examples on every command, exit codes and one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from cli_test_helpers import nets_file, run_cli

from slidenet.cli import COMMANDS, main


def one_error_line(err, command):
    """The stderr of a failed command: exactly one line `slidenet CMD: error: ...`."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"slidenet {command}: error: "), err
    return lines[0]


def test_top_level_help_lists_every_command_with_examples(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), command
    assert "examples:\n  slidenet train" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: slidenet {command}")
    examples = out.split("examples:\n", 1)[1].splitlines()
    # every line is a runnable command (possibly under mpiexec), at least one of this command
    assert all(re.match(r"  (mpiexec -n \d+ )?slidenet \w+ ", line) for line in examples)
    assert any(line.startswith(f"  slidenet {command} ") for line in examples)
    assert "--debug" in out


def test_version_and_no_command(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and re.fullmatch(r"slidenet \d+\.\d+\.\d+\S*\n", out)
    code, _, err = run_cli(capsys)
    assert code == 2 and "usage: slidenet" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "lenet5", "--dataset", "xo", "--epochs", "0"], "argument --epochs"),
        (["train", "--model", "lenet5", "--dataset", "xo", "--validation-split", "1"], "[0, 1)"),
        (["train", "--model", "lenet5", "--dataset", "xo", "--optimizer", "adamz"], "--optimizer"),
        (["train", "--model", "lenet5"], "required: --dataset"),
        (["train", "--dataset", "xo"], "required: --model"),
        (["evaluate"], "required: MODEL"),
        (["predict", "m.slidenet"], "required: IMAGE"),
        (["summary"], "either a MODEL file or --model"),
        (["summary", "m.slidenet", "--model", "lenet5"], "either a MODEL file or --model"),
        (["train", "--model", "lenet5", "--dataset", "xo", "--bogus"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    line = one_error_line(err, argv[0])
    assert message in line and line.endswith(f"(see 'slidenet {argv[0]} --help')")
    assert out == ""


def test_unknown_command_exits_2(capsys):
    code, _, err = run_cli(capsys, "fly")
    assert code == 2 and "slidenet: error: argument COMMAND: invalid choice: 'fly'" in err


def test_unknown_model_name_suggests_the_closest(capsys):
    code, _, err = run_cli(capsys, "train", "--model", "mnist_cn", "--dataset", "xo")
    assert code == 1
    line = one_error_line(err, "train")
    assert "unknown model 'mnist_cn'. Did you mean 'mnist_cnn'?" in line
    assert "mnist_cnn, lenet5" in line


def test_runtime_errors_exit_1_with_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "missing.slidenet", "--dataset", "xo")
    assert code == 1 and "no such file" in one_error_line(err, "evaluate")
    bad = tmp_path / "bad.slidenet"
    bad.write_bytes(b"not a zip")
    code, _, err = run_cli(capsys, "summary", bad)
    assert code == 1 and "not a slidenet model file" in one_error_line(err, "summary")
    code, _, err = run_cli(capsys, "train", "--model", "lenet5", "--dataset", tmp_path / "nope")
    assert code == 1 and "unknown dataset" in one_error_line(err, "train")


def test_user_model_file_errors(capsys, tmp_path):
    nets = nets_file(tmp_path)
    cases = {
        f"{nets}:missing": "has no function 'missing'; it defines: tiny, fixed",
        f"{nets}:not_a_model": "returned int, not a slidenet model",
        f"{nets}:broken": "something inside the user's builder failed",
        nets: "name the function that builds the model",
        f"{tmp_path / 'none.py'}:f": "does not exist",
    }
    for spec, message in cases.items():
        code, _, err = run_cli(capsys, "train", "--model", spec, "--dataset", "xo")
        assert code == 1, spec
        assert message in one_error_line(err, "train"), spec


def test_debug_shows_the_traceback(capsys, tmp_path):
    missing = tmp_path / "missing.slidenet"
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["evaluate", str(missing), "--dataset", "xo", "--debug"])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "summary", str(missing)])
    nets = nets_file(tmp_path)
    with pytest.raises(RuntimeError, match="builder failed"):
        main(["train", "--model", f"{nets}:broken", "--dataset", "xo", "--debug"])


def test_unexpected_errors_point_to_debug(capsys, tmp_path, monkeypatch):
    import slidenet.cli.summary as summary_module

    def fail(args):
        raise KeyError("boom")

    monkeypatch.setattr(summary_module, "run", fail)
    code, _, err = run_cli(capsys, "summary", "--model", "lenet5")
    assert code == 1
    assert one_error_line(err, "summary").endswith(
        "KeyError: 'boom' (run with --debug for the traceback)"
    )


def test_python_dash_m_and_the_console_script():
    result = subprocess.run(
        [sys.executable, "-m", "slidenet.cli", "summary", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "examples:" in result.stdout
    (script,) = entry_points(group="console_scripts", name="slidenet")
    assert script.value == "slidenet.cli:main"
    assert script.load() is main

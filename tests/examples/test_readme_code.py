"""The README's graph-model example runs as written (every README claim is a command that works)."""

import os
import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def python_block(after_heading: str) -> str:
    text = README.read_text()
    section = text[text.index(after_heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_graph_models_section_runs(tmp_path, capsys):
    code = python_block("## Graph models: the functional API")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace = {}
        exec(compile(code, "README.md (graph models)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "Connected to" in out
    keys = "'digit_class_loss', 'is_odd_accuracy', 'is_odd_loss', 'learning_rate', 'loss'"
    assert keys in out
    assert namespace["probs"].shape == (5, 10) and namespace["odd_p"].shape == (5, 1)
    assert (tmp_path / "graph.slidenet").is_file()

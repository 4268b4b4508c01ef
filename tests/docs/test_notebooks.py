"""The tutorial notebooks run top to bottom on slidenet, and are committed without outputs.

Each notebook is executed in a fresh kernel (this interpreter, see notebook_runner.py) at its
default small size; a cell that raises fails the test with the cell and its traceback, and
anything a notebook writes to stderr (a warning, a progress bar) fails it too.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from notebook_runner import NOTEBOOKS, ROOT

EXPECTED = 9  # the lectures: docs/tutorials/01_... to 09_...


def test_the_nine_tutorials_exist_and_are_in_the_site_nav():
    assert len(NOTEBOOKS) == EXPECTED, [p.name for p in NOTEBOOKS]
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert re.match(r"\d\d_[a-z0-9_]+\.ipynb$", path.name), path.name
        assert f"tutorials/{path.name}" in nav, f"{path.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    """Outputs are made by running, never committed (strip them: Kernel > Restart & Clear, or
    `jupyter nbconvert --clear-output --inplace docs/tutorials/*.ipynb`)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name}, cell {index}"
        assert cell.get("outputs") == [], f"{where} has outputs: strip them before committing"
        assert cell.get("execution_count") is None, f"{where} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} holds widget state"


def test_the_strip_check_catches_an_output(tmp_path):
    """The check above can fail: an executed cell has outputs and a count."""
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernel})
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)
    ]
    nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "dirty.ipynb")
    with pytest.raises(AssertionError, match="has outputs"):
        test_committed_notebook_has_no_outputs(tmp_path / "dirty.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, notebooks):
    nb = notebooks.run(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a code cell did not run"
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"cell {index}: {output.get('ename')}"
            if output.output_type == "stream":
                assert output.name == "stdout", f"cell {index} wrote to stderr:\n{output.text}"
    pictures = sum(
        "image/png" in output.get("data", {}) for cell in code for output in cell.outputs
    )
    assert pictures >= 1, f"{path.name} shows no figure"

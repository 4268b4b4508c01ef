"""The README's layer table lists every layer class, and matches what scripts/layer_table.py
prints (the catalogue is generated, not typed)."""

import runpy
from pathlib import Path

from slidenet import layers as L

ROOT = Path(__file__).parents[1]


def test_readme_layer_table_lists_every_class_and_is_current():
    readme = ROOT.joinpath("README.md").read_text()
    section = readme[readme.index("## Layers: the whole catalogue") :]
    section = section[: section.index("\n## ", 1)]
    listed = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    assert set(L.LAYER_CLASSES) <= listed
    table = runpy.run_path(str(ROOT / "scripts" / "layer_table.py"))["main"]()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert all(row in section for row in rows), "run python scripts/layer_table.py and paste it"

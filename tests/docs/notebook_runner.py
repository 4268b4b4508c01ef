"""Run the tutorial notebooks (docs/tutorials/*.ipynb) top to bottom with nbclient, once a session.

The kernel is this interpreter (a ``python3`` kernelspec written to a temporary JUPYTER_PATH, which
Jupyter searches first), so the notebooks run against the slidenet under test, whatever kernels the
user has installed. Each executed copy is kept for the site test (tests/docs/test_docs_site.py),
which renders the outputs without running the notebooks a second time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: Seconds one cell may run (the longest trains a small CNN for a few epochs on 2 cores).
CELL_TIMEOUT = 300


class NotebookRunner:
    """Executes notebooks into ``out_dir`` and remembers each result and its wall time."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self.out_dir = self.work_dir / "executed"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.seconds: dict[str, float] = {}
        self._done: dict[str, object] = {}
        kernels = self.work_dir / "jupyter" / "kernels" / "python3"
        kernels.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (slidenet tests)",
            "language": "python",
        }
        (kernels / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")

    def _env(self) -> dict[str, str]:
        env = {
            "JUPYTER_PATH": str(self.work_dir / "jupyter"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
            # the inline backend (what a learner sees), not a backend the caller may have set
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": str(self.work_dir / "mplconfig"),
        }
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        return env

    def run(self, path: Path):
        """The executed notebook (nbformat node); raises nbclient's CellExecutionError on error."""
        import nbformat
        from nbclient import NotebookClient

        path = Path(path)
        if path.name in self._done:
            return self._done[path.name]
        nb = nbformat.read(path, as_version=4)
        cwd = self.work_dir / "cwd" / path.stem  # files a notebook writes land here
        cwd.mkdir(parents=True, exist_ok=True)
        saved = {k: os.environ.get(k) for k in self._env()}
        os.environ.update(self._env())
        os.environ.pop("SLIDENET_TUTORIAL_FULL", None)
        try:
            client = NotebookClient(
                nb,
                timeout=CELL_TIMEOUT,
                kernel_name="python3",
                resources={"metadata": {"path": str(cwd)}},
            )
            start = time.perf_counter()
            client.execute()
            self.seconds[path.name] = time.perf_counter() - start
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        nbformat.write(nb, self.out_dir / path.name)
        self._done[path.name] = nb
        return nb

"""Op tests: seed a generator, and optionally print the error table.

ops_helpers is importable because pytest puts this directory (it has no __init__.py) on sys.path
when it loads this conftest; torch_oracle because pyproject.toml sets pythonpath = ["tests"].
"""

import os

import numpy as np
import pytest
from ops_helpers import ERRORS


@pytest.fixture
def rng():
    """A fresh, seeded generator per test: every test sees the same numbers on every run."""
    return np.random.default_rng(1234)


def pytest_terminal_summary(terminalreporter):
    """With SLIDENET_OPS_ERRORS=1, list the largest errors per (op, check) seen in this run."""
    if not os.environ.get("SLIDENET_OPS_ERRORS") or not ERRORS:
        return
    terminalreporter.section("largest differences per op (abs, rel)")
    for (op, check), (abs_err, rel_err) in sorted(ERRORS.items()):
        terminalreporter.write_line(f"{op:32s} {check:12s} abs {abs_err:9.2e}  rel {rel_err:9.2e}")

"""One notebook runner per session, shared by the notebook tests and the site test."""

from __future__ import annotations

import pytest
from notebook_runner import NotebookRunner


@pytest.fixture(scope="session")
def notebooks(tmp_path_factory):
    runner = NotebookRunner(tmp_path_factory.mktemp("notebooks"))
    yield runner
    if runner.seconds:
        times = ", ".join(f"{name} {s:.1f}s" for name, s in sorted(runner.seconds.items()))
        print(f"\nnotebook execution times: {times}")

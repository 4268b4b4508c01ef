"""utils.memory (glibc malloc kept for the next step) and utils.blas (OpenBLAS thread count)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from slidenet.utils import blas, memory


def test_reuse_freed_memory_runs_once_and_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(memory, "_state", {"done": False})
    monkeypatch.setenv("SLIDENET_KEEP_FREED_MEMORY", "0")
    assert memory.reuse_freed_memory() is False
    monkeypatch.setenv("SLIDENET_KEEP_FREED_MEMORY", "1")
    assert memory.reuse_freed_memory() is False  # decided once per process
    monkeypatch.setattr(memory, "_state", {"done": False})
    tuned = memory.reuse_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tuned is True
    assert memory.reuse_freed_memory() is tuned
    a = np.ones((1000, 1000))  # allocations still work
    assert a.sum() == 1e6


def test_blas_thread_count_is_found_with_numpys_openblas():
    config = np.show_config(mode="dicts")
    name = config.get("Build Dependencies", {}).get("blas", {}).get("name", "")
    if "openblas" not in name:
        pytest.skip(f"NumPy uses {name or 'an unknown BLAS'}, not OpenBLAS")
    before = blas.get_num_threads()
    assert before is not None and before >= 1
    with blas.blas_threads(1):
        assert blas.get_num_threads() == 1
        np.ones((64, 64)) @ np.ones((64, 64))
    assert blas.get_num_threads() == before

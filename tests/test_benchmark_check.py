"""The benchmark's correctness check: the slidenet and torch nets it times are one function."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import compare_torch  # noqa: E402


@pytest.mark.parametrize("name", ["lenet5", "mnist_cnn"])
def test_benchmark_nets_compute_the_same_function(name):
    # probabilities and every weight gradient, slidenet float32 against torch float64
    assert compare_torch.check_same_function(name, batch=2) < 1e-4

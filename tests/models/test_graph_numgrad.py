"""float64 central differences through whole graph models: loss = sum(r * model(x)).

The same cases as the PyTorch oracle (graph_cases.py): every merge layer in a model, fan-out,
shared layers (Dense, 1x1 and 3x3 convs, a nested model and a nested Sequential called twice),
nested models, an Inception module and a ResNet stage (batch norm in training and in inference
mode), ResidualBlock in a graph. For each input and every weight tensor of every layer, random
entries are perturbed by +-eps and the slope compared with ``model.backward(r)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from graph_cases import CASES, WITH_BN
from graph_torch import finite_difference_errors

import slidenet as keras
from slidenet import layers as L

TOL = 1e-6
RUNS = [(name, False) for name in CASES] + [(name, True) for name in WITH_BN]


@pytest.mark.parametrize(("name", "training"), RUNS)
def test_model_gradients_match_central_differences(name, training):
    model, _, xs = CASES[name]("float64")
    errors = finite_difference_errors(model, [x.astype(np.float64) for x in xs], training)
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"{name}: relative errors above {TOL}: {bad}"
    assert len(errors) > len(xs)  # weights were checked, not only the inputs


def test_differences_catch_a_wrong_gradient():
    """The check is not vacuous: a Dense whose kernel gradient is off by 1 % fails it."""

    class Off(L.Dense):
        def backward(self, dy, from_logits=False):
            dx = super().backward(dy, from_logits)
            self.grads[0] = self.grads[0] * 1.01
            return dx

    x = keras.Input((3,), dtype="float64")
    model = keras.Model(x, Off(2, dtype="float64")(L.Dense(4, dtype="float64")(x)))
    xs = [np.random.default_rng(0).standard_normal((4, 3))]
    errors = finite_difference_errors(model, xs)
    assert errors["off/kernel"] > 100 * TOL
    assert all(v < TOL for k, v in errors.items() if k != "off/kernel")

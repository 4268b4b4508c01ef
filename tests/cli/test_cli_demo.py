"""The `make demo` routine (slidenet.demo): accuracy on a reduced budget, files and hint."""

from __future__ import annotations

import numpy as np
from cli_test_helpers import run_cli

import slidenet
from slidenet import demo


def test_demo_training_reaches_95_percent_on_a_reduced_budget():
    """Two of the demo's epochs: >= 95 % on the 1,000 held-out test digits."""
    result = demo.train_demo(epochs=2, verbose=0)
    assert result.epochs == 2 and result.train_size == 4000
    assert result.accuracy >= 0.95, result
    assert result.model.count_params() == 3_274_634
    assert result.model.epoch == 2


def test_demo_is_seeded():
    a = demo.train_demo(epochs=1, train_size=64, verbose=0)
    b = demo.train_demo(epochs=1, train_size=64, verbose=0)
    c = demo.train_demo(epochs=1, train_size=64, seed=1, verbose=0)
    pairs = zip(a.model.get_weights(), b.model.get_weights(), strict=True)
    assert all(np.array_equal(x, y) for x, y in pairs)
    assert not np.array_equal(a.model.get_weights()[0], c.model.get_weights()[0])


def test_demo_main_saves_the_model_and_digits_and_says_how_to_predict(tmp_path, capsys):
    out = tmp_path / "demo" / "mnist_cnn.slidenet"
    assert demo.main(["--epochs", "1", "--train-size", "100", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Test accuracy on the 1,000 held-out digits:" in text
    digits = sorted((tmp_path / "demo" / "digits").glob("digit_*.png"))
    assert len(digits) == 3
    assert f"slidenet predict {out} " in text and all(str(d) in text for d in digits)
    assert slidenet.load_model(out).epoch == 1
    code, _, err = run_cli(capsys, "predict", out, *digits)
    assert code == 0, err

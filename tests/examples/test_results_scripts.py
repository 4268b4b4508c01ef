"""The scripts behind README's "Results on real data" run their smallest configuration.

examples/relu_vs_tanh.py, benchmarks/time_to_accuracy.py and the longer-run recipe options of the
examples (cosine schedule, label smoothing, a validation split) on 64 bundled MNIST digits standing
in for Fashion-MNIST; the full runs take minutes to an hour and are outside ``make test``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(folder, name, monkeypatch):
    """Import ROOT/<folder>/<name>.py as a module (its folder on sys.path)."""
    monkeypatch.syspath_prepend(str(ROOT / folder))
    spec = importlib.util.spec_from_file_location(
        f"slidenet_results_{name}", ROOT / folder / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fake_fashion(tmp_path_factory):
    """A Keras-format .npz standing in for Fashion-MNIST: 64 + 64 bundled MNIST digits."""
    from slidenet.datasets import mnist_sample

    (x_train, y_train), (x_test, y_test) = mnist_sample.load_data()
    path = tmp_path_factory.mktemp("fashion") / "fashion.npz"
    np.savez(
        path, x_train=x_train[:64], y_train=y_train[:64], x_test=x_test[:64], y_test=y_test[:64]
    )
    return path


def test_relu_vs_tanh_smallest_run_writes_the_plot(fake_fashion, tmp_path, monkeypatch, capsys):
    module = load("examples", "relu_vs_tanh", monkeypatch)
    plot = tmp_path / "relu_vs_tanh.png"
    argv = ["--train", "64", "--epochs", "1", "--seeds", "0", "--points", "2"]
    argv += [
        "--lrs",
        "0.01",
        "0.05",
        "--select-epochs",
        "1",
        "--threshold",
        "0.95",
        "--data",
        str(fake_fashion),
        "--plot",
        str(plot),
        "--no-check",
    ]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("choosing relu's rate") == 2 and "learning rates: ReLU" in out
    assert "seed 0 relu:" in out and "seed 0 tanh:" in out
    assert plot.stat().st_size > 1000


def test_relu_vs_tanh_check_fails_when_the_threshold_is_never_reached(
    fake_fashion, monkeypatch, capsys
):
    module = load("examples", "relu_vs_tanh", monkeypatch)
    argv = ["--train", "64", "--epochs", "1", "--seeds", "0", "--threshold", "0"]
    argv += ["--lr-relu", "0.01", "--lr-tanh", "0.01"]
    assert module.main([*argv, "--data", str(fake_fashion), "--plot", ""]) == 1
    assert "did not reach 0 % training error" in capsys.readouterr().out


def test_relu_vs_tanh_first_crossing_interpolates(monkeypatch):
    module = load("examples", "relu_vs_tanh", monkeypatch)
    xs, errors = np.array([0.0, 1.0, 2.0]), np.array([0.9, 0.3, 0.1])
    assert module.first_crossing(xs, errors, 0.2) == pytest.approx(1.5)
    assert module.first_crossing(xs, errors, 0.3) == pytest.approx(1.0)
    assert module.first_crossing(xs, errors, 0.05) is None
    assert (
        module.four_layer_cnn("tanh").count_params() == module.four_layer_cnn("relu").count_params()
    )


def test_example_recipe_options_run(fake_fashion, monkeypatch, capsys):
    """Cosine schedule with warm-up, label smoothing, flips and shifts, a validation split."""
    module = load("examples", "fashion_mnist_bn", monkeypatch)
    argv = ["--limit", "64", "--epochs", "2", "--no-check", "--data", str(fake_fashion)]
    argv += ["--schedule", "cosine", "--warmup", "0.5", "--label-smoothing", "0.1"]
    argv += ["--augment", "--shift", "1", "--validation", "10", "--batch-size", "16"]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("val acc") == 2 and "s CPU)" in out
    assert "54 training examples" in out  # 64 less the 10 held out
    assert "epoch 2/2: lr 0 " in out  # the cosine ends at zero


def test_time_to_accuracy_copies_the_weights_exactly(monkeypatch):
    torch = pytest.importorskip("torch")
    module = load("benchmarks", "time_to_accuracy", monkeypatch)
    model = module.initial_model(seed=3)
    net = module.torch_net(module.torch_state(model))
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    ours = model.predict(x, verbose=0)
    from torch_oracle import to_nchw, to_numpy  # float64, contiguous NCHW (tests/torch_oracle.py)

    with torch.no_grad():
        theirs = to_numpy(torch.softmax(net.double()(to_nchw(x, grad=False)), 1))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_time_to_accuracy_trainers_follow_one_recipe(fake_fashion, monkeypatch):
    """One epoch of 64 images in each framework: the same batches, the same loss to float32
    rounding (the first step starts from the same weights)."""
    pytest.importorskip("torch")
    module = load("benchmarks", "time_to_accuracy", monkeypatch)
    args = module.make_parser().parse_args(["--batch-size", "16", "--data", str(fake_fashion)])
    data = module.load_data(args.data, None)
    results = {}
    for name, make in (("slidenet", module.slidenet_trainer), ("torch", module.torch_trainer)):
        train_epoch, evaluate = make(args, data)
        results[name] = (*train_epoch(0, 1e-3), evaluate())
    (loss_a, acc_a, test_a), (loss_b, acc_b, test_b) = results["slidenet"], results["torch"]
    assert loss_a == pytest.approx(loss_b, rel=1e-3)
    assert abs(acc_a - acc_b) <= 2 / 64 and abs(test_a - test_b) <= 2 / 64


def test_time_to_accuracy_summary_and_check(monkeypatch, capsys):
    module = load("benchmarks", "time_to_accuracy", monkeypatch)
    args = module.make_parser().parse_args(["--epochs", "2"])

    def curve(accs, seconds):
        rows = [{"epoch": 0, "wall": 0.0, "cpu": 0.0, "test_acc": 0.1}]
        for i, acc in enumerate(accs, 1):
            rows.append({"epoch": i, "wall": seconds * i, "cpu": seconds * i, "test_acc": acc})
        return rows

    curves = {"slidenet": curve([0.905, 0.92], 10), "torch": curve([0.90, 0.918], 20)}
    assert module.summary(curves, args) == []
    out = capsys.readouterr().out
    assert "time to 90 % test accuracy: slidenet epoch 1, 10 s wall" in out
    assert "torch / slidenet wall time 2.00, CPU time 2.00" in out
    curves["torch"][2]["test_acc"] = 0.85
    assert any("curves differ" in f for f in module.summary(curves, args))


@pytest.mark.skipif(sys.platform != "linux", reason="spawned workers; timed on Linux")
def test_time_to_accuracy_command_runs(fake_fashion, tmp_path):
    pytest.importorskip("torch")
    plot = tmp_path / "tta.png"
    command = [sys.executable, str(ROOT / "benchmarks" / "time_to_accuracy.py")]
    command += ["--limit", "64", "--epochs", "1", "--data", str(fake_fashion)]
    command += ["--plot", str(plot), "--no-check"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "epoch 1 slidenet:" in done.stdout and "epoch 1 torch" in done.stdout
    assert "(before training: 0.00)" in done.stdout
    assert plot.exists()

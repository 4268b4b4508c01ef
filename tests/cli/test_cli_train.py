"""`slidenet train`: data sets, checkpoints every epoch, bit-for-bit resume, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from cli_test_helpers import digits_npz, isolate_data, nets_file, run_cli

import slidenet
from slidenet.cli import _common
from slidenet.cli import train as train_cmd
from slidenet.datasets import xo
from slidenet.datasets._mnist_like import IDX_FILES
from slidenet.datasets.utils import write_idx
from slidenet.filters import save_image


def train(capsys, *argv):
    code, out, err = run_cli(capsys, "train", *argv)
    assert code == 0, err
    return out, err


def assert_same_state(a, b):
    """Weights, optimizer state and epoch identical, bit for bit."""
    assert a.epoch == b.epoch
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    va, vb = a.optimizer.variables(), b.optimizer.variables()
    assert len(va) == len(vb) > 0
    assert all(np.array_equal(x, y) for x, y in zip(va, vb, strict=True))
    assert a.optimizer.iterations == b.optimizer.iterations


def test_train_writes_a_checkpoint_every_epoch(capsys, tmp_path, monkeypatch):
    saves = []
    original = _common.save

    def recording_save(model, path, meta):
        original(model, path, meta)
        saves.append((path.name, model.epoch))

    monkeypatch.setattr(_common, "save", recording_save)
    nets = nets_file(tmp_path)
    out_file = tmp_path / "xo.slidenet"
    out, err = train(
        capsys, "--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "3", "--out", out_file
    )
    assert saves == [("xo.slidenet", 1), ("xo.slidenet", 2), ("xo.slidenet", 3)]
    assert "tiny (" in out and "xo: 1,000 training and 200 test images of 28x28x1, 2 classes" in out
    assert re.search(r"^test: loss \d\.\d{4} - accuracy \d\.\d{4} \(200 images\)$", out, re.M)
    assert "Epoch 3/3" in err and "img/s" in err  # the progress bar
    model = slidenet.load_model(out_file)
    assert model.epoch == 3 and len(model.history.history["loss"]) == 3
    meta = _common.read_meta(out_file)
    assert meta["class_names"] == ["O", "X"]
    assert meta["train"]["dataset"] == "xo" and meta["train"]["epochs"] == 3


def test_separate_checkpoint_file_and_default_out_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nets = nets_file(tmp_path)
    train(capsys, "--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "1", "--verbose", "0")
    assert slidenet.load_model(tmp_path / "tiny.slidenet").epoch == 1
    train(
        capsys,
        *("--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "2", "--verbose", "0"),
        *("--out", "final.slidenet", "--checkpoint", "ckpt.slidenet"),
    )
    final, ckpt = slidenet.load_model("final.slidenet"), slidenet.load_model("ckpt.slidenet")
    assert_same_state(final, ckpt)


@pytest.mark.parametrize("split", ["0", "0.2"])
def test_resume_is_bit_for_bit_the_uninterrupted_run(capsys, tmp_path, split):
    nets = nets_file(tmp_path)
    common = (
        *("--model", f"{nets}:tiny", "--dataset", "xo", "--batch-size", "50"),
        *("--seed", "3", "--verbose", "0", "--validation-split", split, "--lr", "0.003"),
    )
    straight, part = tmp_path / "straight.slidenet", tmp_path / "part.slidenet"
    train(capsys, *common, "--epochs", "2", "--out", straight)
    train(capsys, *common, "--epochs", "1", "--out", part)
    one = slidenet.load_model(part)
    assert one.epoch == 1
    # everything but the epoch count comes from the checkpoint
    train(capsys, "--resume", part, "--epochs", "2", "--verbose", "0")
    a, b = slidenet.load_model(straight), slidenet.load_model(part)
    assert_same_state(a, b)
    assert not np.array_equal(one.get_weights()[0], b.get_weights()[0])  # it did train
    assert a.history.history == b.history.history  # both epochs, from both runs
    assert len(b.history.history["loss"]) == 2
    assert a.optimizer.learning_rate == b.optimizer.learning_rate == 0.003


def test_resume_settings_and_notes(capsys, tmp_path):
    nets = nets_file(tmp_path)
    ckpt = tmp_path / "m.slidenet"
    train(capsys, "--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "1", "--out", ckpt)
    code, out, err = run_cli(capsys, "train", "--resume", ckpt, "--model", "lenet5", "--lr", "1")
    assert code == 0
    assert "ignoring ['--model', '--lr']" in err
    assert "epochs 2..1" not in out and "has 1 epochs already; give --epochs > 1" in err
    assert re.search(r"^test: loss .* \(200 images\)$", out, re.M)
    assert slidenet.load_model(ckpt).epoch == 1
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "missing.slidenet")
    assert code == 1 and "no checkpoint at" in err


def test_resume_of_a_plain_model_file_needs_a_dataset(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = slidenet.applications.lenet5((28, 28, 1), classes=2)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.save(tmp_path / "plain.slidenet")
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "plain.slidenet")
    assert code == 2 and "--dataset (the checkpoint does not record one)" in err
    out, _ = train(
        capsys,
        *("--resume", tmp_path / "plain.slidenet", "--dataset", "xo", "--epochs", "1"),
        *("--verbose", "0"),
    )
    assert slidenet.load_model(tmp_path / "plain.slidenet").epoch == 1  # --out is --resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.slidenet"]


def test_npz_dataset_with_class_names(capsys, tmp_path):
    data = tmp_path / "digits.npz"
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    digits_npz(data, n_train=300, n_test=100, class_names=names)
    nets = nets_file(tmp_path)
    out, _ = train(
        capsys,
        *("--model", f"{nets}:tiny", "--dataset", data, "--epochs", "1", "--verbose", "0"),
        *("--out", tmp_path / "d.slidenet"),
    )
    assert "300 training and 100 test images of 28x28x1, 10 classes" in out
    assert _common.read_meta(tmp_path / "d.slidenet")["class_names"] == names
    assert slidenet.load_model(tmp_path / "d.slidenet").output_shape == (None, 10)


def test_bad_npz_files(capsys, tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 8, 8), np.uint8))
    code, _, err = run_cli(
        capsys, "train", "--model", "lenet5", "--dataset", tmp_path / "partial.npz"
    )
    assert code == 1 and "lacks y_train, x_test, y_test" in err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    code, _, err = run_cli(capsys, "train", "--model", "lenet5", "--dataset", tmp_path / "junk.npz")
    assert code == 1 and "cannot read" in err and len(err.strip().splitlines()) == 1
    np.savez(
        tmp_path / "floats.npz",
        x_train=np.full((4, 8, 8), 300.0),
        y_train=np.zeros(4, np.int64),
        x_test=np.zeros((2, 8, 8)),
        y_test=np.zeros(2, np.int64),
    )
    code, _, err = run_cli(
        capsys, "train", "--model", "lenet5", "--dataset", tmp_path / "floats.npz"
    )
    assert code == 1 and "expected [0, 1] or [0, 255]" in err


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_and_fashion_mnist_from_the_local_cache(capsys, tmp_path, monkeypatch, name):
    cache = isolate_data(monkeypatch, tmp_path)
    arrays = digits_npz(tmp_path / "d.npz", n_train=200, n_test=50)
    folder = cache / name
    folder.mkdir(parents=True)
    for file, key in zip(IDX_FILES, ("x_train", "y_train", "x_test", "y_test"), strict=True):
        write_idx(folder / file, arrays[key])
    nets = nets_file(tmp_path)
    out, _ = train(
        capsys,
        *("--model", f"{nets}:tiny", "--dataset", name, "--epochs", "1", "--verbose", "0"),
        *("--out", tmp_path / "m.slidenet"),
    )
    assert f"{name}: 200 training and 50 test images of 28x28x1, 10 classes" in out
    names = _common.read_meta(tmp_path / "m.slidenet")["class_names"]
    assert names == (None if name == "mnist" else list(slidenet.datasets.fashion_mnist.CLASS_NAMES))


def test_mnist_missing_offline_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    cache = isolate_data(monkeypatch, tmp_path)
    code, _, err = run_cli(capsys, "train", "--model", "lenet5", "--dataset", "mnist")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("slidenet train: error: mnist.load_data: the MNIST data set is not")
    assert str(cache / "mnist") in line


def _xo_images(n, size, seed):
    labels = np.arange(n) % 2
    return xo.render(labels, size=size, noise=0.0, seed=seed), labels


def write_image_folder(root, per_class=10, size=20, odd_size=None, rgb=False):
    """root/O/*.png and root/X/*.png; the first image of each class at odd_size if given."""
    images, labels = _xo_images(2 * per_class, size, seed=1)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / ("O" if label == 0 else "X")
        folder.mkdir(parents=True, exist_ok=True)
        if odd_size and i < 2:
            image = _xo_images(2, odd_size, seed=2)[0][label]
        if rgb:
            image = np.stack([image, image * 0.5, 1 - image], axis=-1)
        save_image(folder / f"img{i:03d}.png", image)


def test_folder_dataset_holds_out_every_fifth_image(capsys, tmp_path):
    write_image_folder(tmp_path / "shapes", per_class=10, size=20, odd_size=33)
    (tmp_path / "shapes" / "O" / "notes.txt").write_text("not an image")
    nets = nets_file(tmp_path)
    out, err = train(
        capsys,
        *("--model", f"{nets}:tiny", "--dataset", tmp_path / "shapes", "--epochs", "1"),
        *("--verbose", "0", "--out", tmp_path / "s.slidenet"),
    )
    assert "16 training and 4 test images of 20x20x1, 2 classes" in out
    assert "holding out every 5th image of each class" in err
    assert "resized 2 of 20 images to 20x20 (the most common size)" in err
    assert _common.read_meta(tmp_path / "s.slidenet")["class_names"] == ["O", "X"]
    assert slidenet.load_model(tmp_path / "s.slidenet").input_shape == (None, 20, 20, 1)


def test_folder_with_train_and_test_rgb_and_image_size(capsys, tmp_path):
    write_image_folder(tmp_path / "set" / "train", per_class=6, size=24, rgb=True)
    write_image_folder(tmp_path / "set" / "test", per_class=2, size=24, rgb=True)
    nets = nets_file(tmp_path)
    out, err = train(
        capsys,
        *("--model", f"{nets}:tiny", "--dataset", tmp_path / "set", "--epochs", "1"),
        *("--verbose", "0", "--image-size", "16", "--out", tmp_path / "rgb.slidenet"),
    )
    assert "12 training and 4 test images of 16x16x3, 2 classes" in out
    assert "resized 16 of 16 images to 16x16 (--image-size)" in err
    assert "holding out" not in err
    # a builder with its own fixed input (16x16x3): the folder is converted to it
    write_image_folder(tmp_path / "gray", per_class=5, size=20)
    out, err = train(
        capsys,
        *("--model", f"{nets}:fixed", "--dataset", tmp_path / "gray", "--epochs", "1"),
        *("--verbose", "0", "--out", tmp_path / "fixed.slidenet"),
    )
    assert "8 training and 2 test images of 16x16x3" in out
    assert (
        err.count("resized") == 1 and "resized 10 of 10 images to 16x16 (the model's input)" in err
    )


def test_folder_errors(capsys, tmp_path):
    (tmp_path / "one" / "only").mkdir(parents=True)
    save_image(tmp_path / "one" / "only" / "a.png", np.zeros((8, 8)))
    code, _, err = run_cli(capsys, "train", "--model", "lenet5", "--dataset", tmp_path / "one")
    assert code == 1 and "needs at least two sub-folders of images" in err


def test_ctrl_c_leaves_a_loadable_checkpoint_and_resume_matches(capsys, tmp_path):
    nets = nets_file(tmp_path)
    ckpt = tmp_path / "run.slidenet"
    args = [
        *("--model", f"{nets}:tiny", "--dataset", "xo", "--batch-size", "20", "--seed", "5"),
        *("--out", str(ckpt)),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "slidenet.cli", "train", *args, "--epochs", "1000"],  # with a bar
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # a parent that ignores SIGINT (e.g. a background job) would pass that on
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    match = re.fullmatch(
        r"slidenet train: interrupted (?:during epoch \d+|at the end of epoch \d+); "
        r"(\S+) holds (\d+) finished epoch\(s\); resume with: slidenet train --resume (\S+)",
        hint,
    )
    assert match, err
    assert match[1] == match[3] == str(ckpt)
    assert "Traceback" not in err
    model = slidenet.load_model(ckpt)
    done = int(match[2])
    assert model.epoch == done >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # resuming the interrupted run for one more epoch equals a straight run of done + 1 epochs
    train(capsys, "--resume", ckpt, "--epochs", done + 1, "--verbose", "0")
    straight = tmp_path / "straight.slidenet"
    train(capsys, *args[:-2], "--out", straight, "--epochs", done + 1, "--verbose", "0")
    assert_same_state(slidenet.load_model(ckpt), slidenet.load_model(straight))


def test_interrupt_inside_the_epoch_end_save_saves_again(capsys, tmp_path, monkeypatch):
    """Ctrl-C while the checkpoint is being written: the boundary state is still saved."""
    nets = nets_file(tmp_path)
    original, calls = _common.save, []

    def interrupted_save(model, path, meta):
        calls.append(model.epoch)
        if len(calls) == 2:  # the save of epoch 2 is interrupted half way
            raise KeyboardInterrupt
        original(model, path, meta)

    monkeypatch.setattr(train_cmd._common, "save", interrupted_save)
    code, _, err = run_cli(
        capsys,
        *("train", "--model", f"{nets}:tiny", "--dataset", "xo", "--epochs", "5"),
        *("--verbose", "0", "--out", tmp_path / "i.slidenet"),
    )
    assert code == 130
    assert "interrupted at the end of epoch 2; " in err and "holds 2 finished epoch(s)" in err
    assert calls == [1, 2, 2]
    assert slidenet.load_model(tmp_path / "i.slidenet").epoch == 2
    with zipfile.ZipFile(tmp_path / "i.slidenet") as zf:
        assert _common.META_NAME in zf.namelist()


def test_interrupt_before_the_first_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nets = nets_file(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(slidenet.models.Sequential, "_train_step", interrupted)
    code, _, err = run_cli(
        capsys, "train", "--model", f"{nets}:tiny", "--dataset", "xo", "--verbose", "0"
    )
    assert code == 130
    assert err.strip() == (
        "slidenet train: interrupted during epoch 1; no epoch finished, nothing was saved"
    )

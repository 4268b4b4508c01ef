"""The TensorBoard callback writes real event files without TensorFlow: read back here with the
tensorboard package's own readers (CRC-checked TFRecords of Event protocol buffers): scalars,
histograms and images with the right values and steps."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

import slidenet as sn
from slidenet.callbacks import LambdaCallback, TensorBoard
from slidenet.callbacks import _events as ev

tensorboard = pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import plugin_event_accumulator  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow  # noqa: E402

KEEP_ALL = {"scalars": 0, "histograms": 0, "images": 0, "compressedHistograms": 0, "tensors": 0}


def load(folder):
    acc = EventAccumulator(os.fspath(folder), size_guidance=KEEP_ALL)
    acc.Reload()
    return acc


# ----- the encoding -------------------------------------------------------------------------------
def test_crc32c_known_values_and_tensorboards_own():
    assert ev.crc32c(b"") == 0
    assert ev.crc32c(b"123456789") == 0xE3069283
    assert ev.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 (iSCSI) test vectors
    assert ev.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert ev.crc32c(bytes(range(32))) == 0x46DD794E
    rng = np.random.default_rng(0)
    for n in (1, 7, 100, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert ev.masked_crc32c(data) == pywrap_tensorflow.masked_crc32c(data)


def test_varints_and_records():
    assert ev._varint(1) == b"\x01" and ev._varint(300) == b"\xac\x02"
    assert ev._varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes
    framed = ev.record(b"abc")
    assert framed[:8] == (3).to_bytes(8, "little") and framed[12:15] == b"abc"
    assert len(framed) == 8 + 4 + 3 + 4


def test_png_and_filter_grid():
    pytest.importorskip("PIL")
    from PIL import Image

    rng = np.random.default_rng(1)
    for pixels in (
        rng.integers(0, 256, (5, 7), np.uint8),
        rng.integers(0, 256, (4, 3, 3), np.uint8),
    ):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(ev.png(pixels)))), pixels)
    kernel = rng.normal(size=(3, 2, 1, 4))
    grid = ev.filter_grid(kernel, tile=6)  # factor 2: tiles 6 x 4, gaps of 1
    assert grid.shape == (6, 4 * 5 - 1)
    want = np.round((kernel - kernel.min()) / np.ptp(kernel) * 255)
    np.testing.assert_array_equal(grid[::2, 5:9:2], want[:, :, 0, 1])  # the second filter
    assert grid.min() == 0 and grid.max() == 255
    assert ev.filter_grid(rng.normal(size=(2, 2, 3, 5))).shape[-1] == 3  # RGB for 3 channels


# ----- a real run ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs of a small CNN with validation, histograms every epoch, images and batch logs
    every 2 batches; records what the model held when TensorBoard wrote."""
    log_dir = tmp_path_factory.mktemp("tb")
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [
            sn.layers.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1)),
            sn.layers.Flatten(),
            sn.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(sn.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6, 6, 1)), np.arange(20) % 2
    seen = {"batch": [], "weights": [], "iterations": []}

    def batch_end(batch, logs):
        seen["batch"].append(dict(logs))

    def epoch_end(epoch, logs):
        seen["weights"].append(model.get_weights())
        seen["iterations"].append(model.optimizer.iterations)

    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=4,  # 4 batches per epoch after the split
        validation_split=0.2,
        verbose=0,
        callbacks=[
            LambdaCallback(on_train_batch_end=batch_end, on_epoch_end=epoch_end),
            TensorBoard(log_dir, histogram_freq=1, write_images=True, update_freq=2),
        ],
    )
    return log_dir, model, history.history, seen


def test_the_files_are_tfrecords_of_events(run):
    log_dir = run[0]
    assert sorted(os.listdir(log_dir)) == ["train", "validation"]
    for sub in ("train", "validation"):
        (name,) = os.listdir(log_dir / sub)
        assert name.startswith("events.out.tfevents.") and name.endswith(".v2")
        events = list(EventFileLoader(os.fspath(log_dir / sub / name)).Load())  # checks CRCs
        assert events[0].file_version == "brain.Event:2"
        times = [e.wall_time for e in events]
        assert times == sorted(times)


def test_epoch_scalars(run):
    log_dir, model, history, seen = run
    train, val = load(log_dir / "train"), load(log_dir / "validation")
    for key in ("loss", "accuracy", "learning_rate"):
        events = train.Scalars(f"epoch_{key}")
        assert [e.step for e in events] == [0, 1, 2]
        np.testing.assert_allclose([e.value for e in events], history[key], rtol=1e-6)
    for key in ("loss", "accuracy"):
        events = val.Scalars(f"epoch_{key}")
        assert [e.step for e in events] == [0, 1, 2]
        np.testing.assert_allclose([e.value for e in events], history[f"val_{key}"], rtol=1e-6)
        by_step = val.Scalars(f"evaluation_{key}_vs_iterations")
        assert [e.step for e in by_step] == seen["iterations"] == [4, 8, 12]
        np.testing.assert_allclose([e.value for e in by_step], history[f"val_{key}"], rtol=1e-6)
    assert "epoch_val_loss" not in train.Tags()["scalars"]


def test_batch_scalars_every_update_freq_batches(run):
    log_dir, _, _, seen = run
    events = load(log_dir / "train").Scalars("batch_loss")
    assert [e.step for e in events] == [2, 4, 6, 8, 10, 12]  # batches counted from 1 over fit
    want = [seen["batch"][step - 1]["loss"] for step in (2, 4, 6, 8, 10, 12)]
    np.testing.assert_allclose([e.value for e in events], want, rtol=1e-6)


def test_weight_histograms(run):
    log_dir, model, _, seen = run
    acc = load(log_dir / "train")
    names = [f"{layer.name}/{w}/histogram" for layer in model.layers for w in layer.weight_names]
    assert sorted(acc.Tags()["histograms"]) == sorted(names)
    for epoch in range(3):
        for tag, w in zip(names, seen["weights"][epoch], strict=True):
            h = acc.Histograms(tag)[epoch]
            assert h.step == epoch
            v = h.histogram_value
            w = w.astype(np.float64).ravel()
            assert (v.min, v.max, v.num) == (w.min(), w.max(), w.size)
            assert v.sum == pytest.approx(w.sum(), rel=1e-12, abs=1e-12)
            assert v.sum_squares == pytest.approx(np.dot(w, w), rel=1e-12)
            if w.min() < w.max():
                counts, edges = np.histogram(w, bins=30, range=(w.min(), w.max()))
                np.testing.assert_array_equal(v.bucket, counts)
                np.testing.assert_array_equal(v.bucket_limit, edges[1:])
            else:  # biases that are all equal: one bucket
                assert (v.bucket, v.bucket_limit) == ([w.size], [w.max()])


def test_filter_image(run):
    pytest.importorskip("PIL")
    from PIL import Image

    log_dir, model, _, seen = run
    conv = model.layers[0]
    images = load(log_dir / "train").Images(f"{conv.name}/kernel/image")
    assert [im.step for im in images] == [0, 1, 2]
    for epoch, im in enumerate(images):
        pixels = np.asarray(Image.open(io.BytesIO(im.encoded_image_string)))
        want = ev.filter_grid(seen["weights"][epoch][0])
        assert (im.height, im.width) == want.shape
        np.testing.assert_array_equal(pixels, want)


def test_tensorboards_own_loader_migrates_everything(run):
    """The loader behind the TensorBoard UI converts legacy summaries to its plugins' tensors."""
    acc = plugin_event_accumulator.EventAccumulator(os.fspath(run[0] / "train"))
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert "epoch_loss" in tags and f"{run[1].layers[0].name}/kernel/image" in tags
    assert acc.SummaryMetadata("epoch_loss").plugin_data.plugin_name == "scalars"
    hist = f"{run[1].layers[2].name}/kernel/histogram"
    assert acc.SummaryMetadata(hist).plugin_data.plugin_name == "histograms"


def test_histogram_frequency_and_epoch_only_logs(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 3))
    sn.utils.set_random_seed(0)
    model = sn.Sequential([sn.layers.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse")
    model.fit(x, x[:, :1], epochs=5, verbose=0, callbacks=[TensorBoard(tmp_path, histogram_freq=2)])
    acc = load(tmp_path / "train")
    tag = f"{model.layers[0].name}/kernel/histogram"
    assert [h.step for h in acc.Histograms(tag)] == [0, 2, 4]
    assert not any(t.startswith("batch_") for t in acc.Tags()["scalars"])
    assert acc.Tags()["images"] == []  # write_images=False
    assert not (tmp_path / "validation").exists()


def test_argument_checks():
    with pytest.raises(ValueError, match=r"profiling and embeddings are not available"):
        TensorBoard(profile_batch=2)
    with pytest.raises(ValueError, match=r"update_freq must be 'epoch', 'batch'"):
        TensorBoard(update_freq="sometimes")
    with pytest.raises(ValueError, match=r"histogram_freq must be"):
        TensorBoard(histogram_freq=-1)
    assert TensorBoard(update_freq="batch").update_freq == 1

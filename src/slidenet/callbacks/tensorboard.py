"""The TensorBoard callback: real TensorBoard event files, written without TensorFlow.

``tensorboard --logdir logs`` then shows, as for Keras: under the run ``train``, the scalars
``epoch_loss``, ``epoch_<metric>``, ``epoch_learning_rate`` (step: the epoch, from 0), with
``update_freq`` the ``batch_<key>`` scalars (step: the batch count since fit began), weight
histograms ``<layer>/<weight>/histogram`` every ``histogram_freq`` epochs, and with
``write_images`` the first Conv2D layer's filters as an image ``<layer>/kernel/image``; under
``validation``, ``epoch_<key>`` of the ``val_`` logs and ``evaluation_<key>_vs_iterations``
(step: the optimizer's step count). The encoding is in :mod:`slidenet.callbacks._events`.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

import numpy as np

from slidenet.callbacks import _events
from slidenet.callbacks.base import Callback

_FILE_IDS = itertools.count()


class EventFileWriter:
    """Appends TFRecord-framed ``Event`` protocol buffers to a new ``events.out.tfevents.*``
    file in ``folder`` (created on the first write, which is the ``brain.Event:2`` version
    record). Each event is flushed as it is written."""

    def __init__(self, folder):
        self.folder, self.path, self._file = os.fspath(folder), None, None

    def _open(self):
        os.makedirs(self.folder, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}."
            f"{next(_FILE_IDS)}.v2"
        )
        self.path = os.path.join(self.folder, name)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._write(_events.event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, data):
        self._file.write(_events.record(data))
        self._file.flush()

    def write(self, step, values):
        """One event at ``step`` holding the encoded ``Summary.Value`` s ``values``."""
        if not values:
            return
        if self._file is None:
            self._open()
        self._write(_events.event(time.time(), int(step), values=values))

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _scalars(logs, prefix):
    """``Summary.Value`` s for the numbers in ``logs`` (per-class lists are left out)."""
    out = []
    for name, value in logs.items():
        if np.ndim(value) == 0 and isinstance(value, int | float | np.number):
            out.append(_events.scalar_value(prefix + name, float(value)))
    return out


class TensorBoard(Callback):
    """Write logs for TensorBoard (Keras 3's arguments).

    Args:
        log_dir: the folder; ``train`` and ``validation`` subfolders hold the event files.
        histogram_freq: write weight histograms every this many epochs (0: never).
        write_graph: accepted for Keras compatibility; no graph is written.
        write_images: with histograms, also write the first Conv2D layer's filters as an image
            (one row of tiles per input channel, or one RGB row for 3 channels).
        write_steps_per_second: also log ``steps_per_second``.
        update_freq: "epoch", "batch" (= 1), or write the batch logs every this many batches.
        profile_batch, embeddings_freq: must stay 0 (no profiler, no embedding projector).
    """

    def __init__(
        self,
        log_dir="logs",
        histogram_freq=0,
        write_graph=True,
        write_images=False,
        write_steps_per_second=False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq=0,
        embeddings_metadata=None,
    ):
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int):
            raise ValueError(
                f"TensorBoard: histogram_freq must be an integer >= 0, got {histogram_freq!r}."
            )
        if histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be >= 0, got {histogram_freq}.")
        freq = 1 if update_freq == "batch" else update_freq
        if freq != "epoch" and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
            raise ValueError(
                f"TensorBoard: update_freq must be 'epoch', 'batch' or a number of batches >= 1, "
                f"got {update_freq!r}."
            )
        if profile_batch or embeddings_freq:
            raise ValueError(
                "TensorBoard: profiling and embeddings are not available in slidenet; leave "
                f"profile_batch=0 and embeddings_freq=0 (got {profile_batch!r}, "
                f"{embeddings_freq!r})."
            )
        self.log_dir, self.histogram_freq = os.fspath(log_dir), histogram_freq
        self.write_graph, self.write_images = write_graph, bool(write_images)
        self.write_steps_per_second, self.update_freq = bool(write_steps_per_second), freq
        self.embeddings_metadata = embeddings_metadata
        self._writers = {}

    def set_model(self, model):
        super().set_model(model)
        self._close_writers()

    def _writer(self, run):
        if run not in self._writers:
            self._writers[run] = EventFileWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._epoch_iterations, self._epoch_start = 0, time.time()

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_iterations = self._iterations()
        self._epoch_start = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        self._batch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        values = _scalars(logs or {}, "batch_")
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start, 1e-9)
            values.append(_events.scalar_value("batch_steps_per_second", 1.0 / elapsed))
        self._writer("train").write(self._global_train_batch, values)

    def _iterations(self):
        return int(getattr(self.model.optimizer, "iterations", 0) or 0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            train["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._epoch_start, 1e-9)
            train["steps_per_second"] = (self._iterations() - self._epoch_iterations) / elapsed
        self._writer("train").write(epoch, _scalars(train, "epoch_"))
        if val:
            writer = self._writer("validation")
            writer.write(epoch, _scalars(val, "epoch_"))
            writer.write(
                self._iterations(),
                [
                    _events.scalar_value(f"evaluation_{k}_vs_iterations", v)
                    for k, v in val.items()
                    if np.ndim(v) == 0
                ],
            )
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)

    def _log_weights(self, epoch):
        from slidenet.layers import Conv2D

        values, image = [], None
        for layer in self.model.layers:
            for name, w in zip(layer.weight_names, layer.weights, strict=True):
                if np.size(w):
                    values.append(_events.histogram_value(f"{layer.name}/{name}/histogram", w))
            if self.write_images and image is None and isinstance(layer, Conv2D):
                grid = _events.filter_grid(layer.kernel)
                image = _events.image_value(f"{layer.name}/kernel/image", grid)
        self._writer("train").write(epoch, values + ([image] if image else []))

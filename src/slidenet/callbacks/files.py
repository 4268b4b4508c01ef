"""Callbacks that write files: CSVLogger (one row per epoch) and BackupAndRestore (the whole
training state each epoch, so that an interrupted fit continues where it stopped)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from slidenet.callbacks.base import Callback


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: a header row ``epoch,<keys sorted>`` and one row
    per epoch (``epoch`` counts from 0, as in Keras). Each row is written with a single write,
    flushed and synced, so a crash leaves whole rows. ``append=True`` adds to an existing file
    (without a second header); values with one entry per class are written as "[a, b, ...]".
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys, self._file, self._header = None, None, True

    def on_train_begin(self, logs=None):
        self._header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                self._header = not f.readline()
        self.on_train_end()  # a file left open by an interrupted fit
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.sep, lineterminator="\n")
        if self._header:
            writer.writerow(["epoch", *self.keys])
            self._header = False
        writer.writerow([epoch, *(_cell(logs.get(k, "NA")) for k in self.keys)])
        self._file.write(buf.getvalue())
        self._file.flush()
        os.fsync(self._file.fileno())

    def on_train_end(self, logs=None):
        if self._file is not None and not self._file.closed:
            self._file.close()


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray) and np.ndim(value) > 0:
        return "[" + ", ".join(str(v) for v in np.ravel(value)) + "]"
    return value


class BackupAndRestore(Callback):
    """Back up the whole training state after every epoch (or every ``save_freq`` batches) and,
    when fit is called again with the same ``backup_dir`` after an interruption, restore it and
    continue from the epoch after the last backup.

    The backup is a model file (``backup_dir/latest.slidenet``, written atomically by
    ``model.save``): weights, optimizer state and step count, learning rate, the epoch, the
    random generators of shuffling and dropout, and the history. So a run killed after an epoch
    and resumed ends with the same weights, bit for bit, as one never interrupted (with
    ``save_freq="epoch"``; with a number of batches, the interrupted epoch restarts from its
    beginning with the weights of the last backup, as in Keras). The model must be the one that
    made the backup, compiled the same way.

    Args:
        backup_dir: a folder for the backup, used by nothing else.
        save_freq: "epoch", or back up every this many batches.
        double_checkpoint: also keep the previous backup (``_latest.slidenet``) and fall back
            on it when the latest cannot be read.
        delete_checkpoint: delete the backup when fit ends (our files only; the folder too if
            that leaves it empty). Keras deletes the whole folder.
    """

    def __init__(
        self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True
    ):
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir is empty; give a folder.")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                f"BackupAndRestore: save_freq must be 'epoch' or a number of batches >= 1, got "
                f"{save_freq!r}."
            )
        self.backup_dir, self.save_freq = Path(backup_dir), save_freq
        self.double_checkpoint, self.delete_checkpoint = bool(double_checkpoint), delete_checkpoint
        self._path = self.backup_dir / "latest.slidenet"
        self._previous = self.backup_dir / "_latest.slidenet"
        self._resume_epoch, self._batches = None, 0

    def on_train_begin(self, logs=None):
        from slidenet.models.saving import ModelFileError, load_model

        self._resume_epoch, self._batches = None, 0
        candidates = [self._path] + ([self._previous] if self.double_checkpoint else [])
        for path in candidates:
            if not path.exists():
                continue
            try:
                loaded = load_model(path)
            except (ModelFileError, OSError):
                if path == candidates[-1]:
                    raise
                continue
            self._restore(loaded, path)
            return

    def _restore(self, loaded, path):
        model = self.model
        try:
            model.set_weights(loaded.get_weights())
        except ValueError as e:
            raise ValueError(
                f"BackupAndRestore: the backup '{path}' was made by a different model ({e}); "
                "remove it or use another backup_dir."
            ) from None
        opt, src = model.optimizer, loaded.optimizer
        if opt is not None and src is not None:
            state = src.variables()
            opt.set_variables(state, len(state) // max(len(src.slot_names), 1))
            opt.iterations = src.iterations
            lr = src.get_config().get("learning_rate")
            if isinstance(lr, int | float) and not isinstance(
                opt.get_config().get("learning_rate"), dict
            ):
                opt.learning_rate = lr  # set by a LearningRateScheduler or ReduceLROnPlateau
        model._rng = loaded._rng
        for mine, theirs in zip(model.layers, loaded.layers, strict=False):
            if getattr(theirs, "rng", None) is not None:
                mine.rng = theirs.rng
        model.epoch = loaded.epoch
        history = loaded.history.history if loaded.history is not None else {}
        model._prior_history = {k: list(v[: loaded.epoch]) for k, v in history.items()}
        model._initial_epoch = self._resume_epoch = loaded.epoch  # fit continues from here

    def on_epoch_begin(self, epoch, logs=None):
        if self._resume_epoch is not None and epoch < self._resume_epoch:
            raise RuntimeError(
                f"BackupAndRestore: restored the state after epoch {self._resume_epoch} but fit "
                f"runs epoch {epoch + 1}; this fit does not continue from model._initial_epoch."
            )
        self._resume_epoch = None

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save()

    def _save(self):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        if self.double_checkpoint and self._path.exists():
            os.replace(self._path, self._previous)
        self.model.save(self._path)

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint:
            return
        for path in (self._path, self._previous):
            path.unlink(missing_ok=True)
        try:
            self.backup_dir.rmdir()
        except OSError:  # not empty (other files), or already gone
            pass

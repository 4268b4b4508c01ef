"""Keras 3 callbacks beyond the basics: ReduceLROnPlateau (Keras' rules step by step), CSVLogger,
TerminateOnNaN, LambdaCallback and BackupAndRestore (a fit killed in a subprocess and resumed
ends bit for bit where an uninterrupted one does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slidenet as sn
from slidenet.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y


def tiny_model(trainable=True, lr=0.1):
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [sn.layers.Dense(3, activation="softmax", input_shape=(4,), trainable=trainable)]
    )
    model.compile(sn.optimizers.SGD(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class FakeModel:
    """What ReduceLROnPlateau touches: an optimizer with a settable learning rate."""

    def __init__(self, lr=1.0):
        self.optimizer = sn.optimizers.SGD(lr)


def run_plateau(callback, values, lr=1.0, monitor="val_loss"):
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        rates.append(model.optimizer.learning_rate)
    return rates


# ----- ReduceLROnPlateau --------------------------------------------------------------------------
def test_plateau_patience_factor_and_cooldown():
    """Keras' counters: after 2 epochs without improvement halve the rate, then 1 epoch of
    cooldown (which resets the wait) before counting again."""
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1)
    assert run_plateau(cb, [1.0] * 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_plateau_improvements_reset_the_wait_and_min_delta_counts():
    cb = ReduceLROnPlateau(factor=0.5, patience=2)
    # 0.9 improves; 0.89995 is within min_delta 1e-4: not an improvement
    assert run_plateau(cb, [1.0, 1.0, 0.9, 0.89995, 0.9, 0.95]) == [1, 1, 1, 1, 0.5, 0.5]
    cb = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.0)
    assert run_plateau(cb, [1.0, 0.99995, 0.99995]) == [1.0, 1.0, 0.5]


def test_plateau_min_lr_and_mode_max(capsys):
    cb = ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1, min_lr=0.005, verbose=1)
    rates = run_plateau(cb, [0.5, 0.6, 0.6, 0.55, 0.6], lr=0.1, monitor="val_accuracy")
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.005, 0.005])
    assert "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.01" in capsys.readouterr().out
    cb = ReduceLROnPlateau(monitor="score", mode="max", factor=0.5, patience=1)
    assert run_plateau(cb, [1, 2, 2, 3], monitor="score") == [1, 1, 0.5, 0.5]


def test_plateau_in_fit():
    """A frozen model's loss never improves after the first epoch."""
    x, y = data()
    model = tiny_model(trainable=False, lr=0.1)
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[cb])
    # the logged rate is the one used during the epoch
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.025)


def test_plateau_checks():
    with pytest.raises(ValueError, match=r"does not support a factor >= 1\.0"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'min' or 'max'"):
        ReduceLROnPlateau(mode="up")
    x, y = data()
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: monitor 'val_loss' is not in"):
        tiny_model().fit(x, y, verbose=0, callbacks=[ReduceLROnPlateau()])


# ----- CSVLogger ----------------------------------------------------------------------------------
def read_rows(path, sep=","):
    return [line.split(sep) for line in path.read_text().splitlines()]


def test_csv_logger_header_and_one_row_per_epoch(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    rows_seen = []

    def after_epoch(epoch, logs):  # each epoch's row is on disk when the epoch ends
        rows_seen.append(len(path.read_text().splitlines()))

    history = tiny_model().fit(
        x,
        y,
        epochs=3,
        verbose=0,
        validation_split=0.25,
        callbacks=[CSVLogger(path), LambdaCallback(on_epoch_end=after_epoch)],
    )
    rows = read_rows(path)
    keys = ["accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    assert rows[0] == ["epoch", *keys]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for i, key in enumerate(keys, 1):
        assert [float(r[i]) for r in rows[1:]] == history.history[key]  # exact: repr of floats
    assert rows_seen == [2, 3, 4]


def test_csv_logger_append_and_separator(tmp_path):
    x, y = data()
    path = tmp_path / "log.tsv"
    model = tiny_model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[CSVLogger(path, "\t", True)])
    rows = read_rows(path, "\t")
    assert rows[0] == ["epoch", "accuracy", "learning_rate", "loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]  # one header only
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, "\t")])  # overwrites
    assert len(read_rows(path, "\t")) == 2


# ----- TerminateOnNaN -----------------------------------------------------------------------------
def overflow_at_epoch_1(model):
    """Weights whose outputs overflow float32 from epoch 1 on: the loss becomes inf."""

    def blow_up(epoch, logs):
        if epoch == 1:
            model.set_weights([np.full((4, 1), 1e20, np.float32), np.zeros(1, np.float32)])

    return LambdaCallback(on_epoch_begin=blow_up)


def mse_model():
    sn.utils.set_random_seed(0)
    model = sn.Sequential([sn.layers.Dense(1, input_shape=(4,))])
    model.compile(sn.optimizers.SGD(0.01), "mse")
    return model


def test_without_terminate_on_nan_fit_raises():
    x, y = data()
    model = mse_model()
    with pytest.raises(FloatingPointError, match=r"loss became inf at epoch 2, batch 1"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[overflow_at_epoch_1(model)])


def test_terminate_on_nan_stops_gracefully(capsys):
    x, y = data()
    model = mse_model()
    ended = []
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=5,
        verbose=0,
        callbacks=[
            overflow_at_epoch_1(model),
            TerminateOnNaN(),
            LambdaCallback(on_train_end=lambda logs: ended.append(True)),
        ],
    )
    assert len(history.history["loss"]) == 1 and model.epoch == 1  # no end for epoch 2
    assert model.stop_training and ended == [True]
    assert model.get_weights()[0][0, 0] == np.float32(1e20)  # the batch was not applied
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_can_raise_at_once():
    x, y = data()
    model = mse_model()
    ended = []
    with pytest.raises(RuntimeError, match=r"Batch 0: invalid loss inf"):
        model.fit(
            x,
            y,
            epochs=3,
            verbose=0,
            callbacks=[
                overflow_at_epoch_1(model),
                TerminateOnNaN(raise_error=True),
                LambdaCallback(on_train_end=lambda logs: ended.append(True)),
            ],
        )
    assert ended == []  # on_train_end was skipped


# ----- LambdaCallback and the base class ----------------------------------------------------------
def test_lambda_callback_hooks_and_arguments():
    x, y = data()
    events = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: events.append(("batch_begin", batch)),
        on_batch_end=lambda batch, logs: events.append(("batch_end", batch, sorted(logs))),
        on_epoch_end=lambda epoch, logs: events.append(("epoch_end", epoch, logs["loss"])),
        on_train_end=lambda logs: events.append(("train_end", logs)),
    )
    history = tiny_model().fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[cb])
    assert events == [
        ("train_begin", {}),
        ("epoch_begin", 0, {}),
        ("batch_begin", 0),
        ("batch_end", 0, ["accuracy", "loss"]),
        ("batch_begin", 1),
        ("batch_end", 1, ["accuracy", "loss"]),
        ("epoch_end", 0, history.history["loss"][0]),
        ("train_end", {}),
    ]


def test_lambda_callback_checks():
    with pytest.raises(TypeError, match=r"unknown hook\(s\) \['on_epoch_middle'\]"):
        LambdaCallback(on_epoch_middle=print)
    ends = []
    LambdaCallback(on_test_end=ends.append).on_test_end()  # Keras' other hooks as keywords
    assert ends == [{}]
    with pytest.raises(TypeError, match=r"on_epoch_end must be a function"):
        LambdaCallback(on_epoch_end=3)


def test_on_batch_hooks_are_the_train_batch_hooks():
    seen = []

    class Old(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch))

    x, y = data()
    tiny_model().fit(x, y, batch_size=10, verbose=0, callbacks=[Old()])
    assert seen == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


# ----- BackupAndRestore ---------------------------------------------------------------------------
BUILD = textwrap.dedent(
    """
    import numpy as np
    import slidenet as sn

    def build():
        sn.utils.set_random_seed(0)
        model = sn.Sequential([
            sn.layers.Dense(8, activation="relu", input_shape=(4,)),
            sn.layers.Dropout(0.3),
            sn.layers.Dense(3, activation="softmax"),
        ])
        model.compile(sn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
        return model, x, y

    FIT = dict(epochs=4, batch_size=8, validation_split=0.2, verbose=0)
    """
)
KILLED = BUILD + textwrap.dedent(
    """
    import os, signal, sys
    from slidenet.callbacks import BackupAndRestore, Callback

    class Kill(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # after the backup of epoch 2 (listed first)
                os.kill(os.getpid(), signal.SIGKILL)

    model, x, y = build()
    model.fit(x, y, callbacks=[BackupAndRestore(sys.argv[1]), Kill()], **FIT)
    """
)


def built():
    namespace = {}
    exec(BUILD, namespace)  # the same definitions the subprocess runs
    return namespace["build"](), namespace["FIT"]


def test_a_killed_fit_resumes_bit_for_bit(tmp_path):
    backup = tmp_path / "backup"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(backup)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (backup / "latest.slidenet").is_file()

    (model, x, y), fit = built()
    uninterrupted = model.fit(x, y, **fit).history
    want = model.get_weights()

    (resumed, x, y), fit = built()
    history = resumed.fit(x, y, callbacks=[BackupAndRestore(backup)], **fit).history
    for got, w in zip(resumed.get_weights(), want, strict=True):
        np.testing.assert_array_equal(
            got, w
        )  # bit for bit: weights, Adam state, shuffling, dropout
    assert resumed.optimizer.iterations == model.optimizer.iterations
    assert resumed.epoch == 4
    assert history["loss"] == uninterrupted["loss"][2:]  # only epochs 3 and 4 ran
    assert history["val_accuracy"] == uninterrupted["val_accuracy"][2:]
    assert not backup.exists()  # deleted at the end (delete_checkpoint=True)


def test_an_exception_then_a_resume_in_the_same_process(tmp_path):
    class Interrupt(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("Interrupting!")

    (model, x, y), fit = built()
    want = model.fit(x, y, **fit).history
    (model, x, y), fit = built()
    backup = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(x, y, callbacks=[backup, Interrupt()], **fit)
    stopper = EarlyStopping(monitor="loss", patience=10)
    history = model.fit(x, y, callbacks=[backup, stopper], **fit).history
    assert history["loss"] == want["loss"][2:]
    assert stopper.best == min(want["loss"])  # the restored epochs were replayed
    assert (tmp_path / "b" / "latest.slidenet").is_file()  # kept
    assert sn.load_model(tmp_path / "b" / "latest.slidenet").epoch == 4


def test_batch_frequency_double_checkpoint_and_a_different_model(tmp_path):
    x, y = data()
    model = tiny_model()
    seen = []
    backup = BackupAndRestore(tmp_path / "b", save_freq=3, double_checkpoint=True)
    latest = tmp_path / "b" / "latest.slidenet"
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=5,  # 4 batches per epoch: backups after batches 3, 6 (epoch 2, batch 2)
        verbose=0,
        callbacks=[
            backup,
            LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(latest.exists())),
        ],
    )
    assert seen == [False, False, True, True, True, True, True, True]
    assert not latest.exists()
    # a corrupt latest backup: the previous one is used
    keep = BackupAndRestore(tmp_path / "c", double_checkpoint=True, delete_checkpoint=False)
    model.fit(x, y, epochs=2, batch_size=5, verbose=0, callbacks=[keep])
    (tmp_path / "c" / "latest.slidenet").write_bytes(b"not a model")
    fresh = tiny_model()
    resume = BackupAndRestore(tmp_path / "c", double_checkpoint=True)
    fresh.fit(x, y, epochs=3, verbose=0, callbacks=[resume])
    assert fresh.epoch == 3 and len(fresh.history.history["loss"]) == 2  # resumed after epoch 1
    # a backup of another model is refused
    kept = BackupAndRestore(tmp_path / "d", delete_checkpoint=False)
    model.fit(x, y, verbose=0, callbacks=[kept])
    other = sn.Sequential([sn.layers.Dense(2, input_shape=(4,))])
    other.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"BackupAndRestore: the backup .* different model"):
        other.fit(x, np.zeros((20, 2)), verbose=0, callbacks=[BackupAndRestore(tmp_path / "d")])


def test_backup_checks():
    with pytest.raises(ValueError, match=r"backup_dir is empty"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match=r"save_freq must be 'epoch' or a number of batches"):
        BackupAndRestore("b", save_freq="batch")
    assert os.fspath(BackupAndRestore("b").backup_dir) == "b"

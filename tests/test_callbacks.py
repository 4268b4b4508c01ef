"""Callbacks driven by a real (tiny) fit: History, LearningRateScheduler, EarlyStopping,
ModelCheckpoint and the progress display."""

from __future__ import annotations

import numpy as np
import pytest

import slidenet as sn
from slidenet.callbacks import (
    Callback,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
)


def data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y


def tiny_model(trainable=True, optimizer=None):
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [sn.layers.Dense(3, activation="softmax", input_shape=(4,), trainable=trainable)]
    )
    model.compile(
        optimizer or sn.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


class WeightsRecorder(Callback):
    """Records the weights at each epoch end."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(self.model.get_weights())


class WeightsPerEpoch(WeightsRecorder):
    """For a frozen model (trainable=False): set its weights at the start of each epoch from a
    list, which scripts the monitored values exactly."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_weights(self.plan[epoch])


def ranked_plan(model, ranks, x_val, y_val, seed=0):
    """Weights for each epoch such that the validation losses are ordered as ``ranks`` says
    (rank 0 = the lowest loss). Returns (plan, losses of the plan's epochs)."""
    rng = np.random.default_rng(seed)
    n = max(ranks) + 1
    candidates = [[rng.normal(size=w.shape) * 2 for w in model.get_weights()] for _ in range(n)]
    losses = []
    for weights in candidates:
        model.set_weights(weights)
        losses.append(model.evaluate(x_val, y_val, verbose=0)[0])
    order = np.argsort(losses)
    assert np.all(np.diff(np.sort(losses)) > 1e-4)  # well separated
    plan = [candidates[order[r]] for r in ranks]
    return plan, [losses[order[r]] for r in ranks]


# ----- History ------------------------------------------------------------------------------------
def test_history_keys_and_lengths():
    x, y = data()
    model = tiny_model()
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    assert isinstance(history, History)
    assert model.history is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.epoch == [0, 1, 2]
    assert all(isinstance(v, float) for v in history.history["loss"])
    assert all(0 <= a <= 1 for a in history.history["val_accuracy"])
    assert history.history["learning_rate"] == [0.1, 0.1, 0.1]
    # the training loss went down on this easy problem
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_history_val_values_are_the_evaluation_of_the_held_out_part():
    x, y = data()
    model = tiny_model()
    history = model.fit(
        x, y, epochs=1, batch_size=5, validation_split=0.25, shuffle=False, verbose=0
    )
    val_loss, val_acc = model.evaluate(x[15:], y[15:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(val_acc)


def test_history_without_validation_has_no_val_keys():
    x, y = data()
    history = tiny_model().fit(x, y, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "learning_rate"}


# ----- LearningRateScheduler ---------------------------------------------------------------------
def test_scheduler_of_the_epoch():
    x, y = data()
    model = tiny_model()
    seen = []

    class Spy(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    history = model.fit(
        x,
        y,
        epochs=4,
        batch_size=10,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch: 0.01 * 0.6**epoch), Spy()],
    )
    want = [0.01 * 0.6**e for e in range(4)]
    assert history.history["learning_rate"] == pytest.approx(want, rel=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(want[-1])
    # the optimizer used the scheduled rate for every batch of the epoch (2 batches per epoch)
    assert seen == pytest.approx([lr for lr in want for _ in range(2)], rel=1e-12)


def test_scheduler_of_epoch_and_lr():
    x, y = data()
    model = tiny_model(optimizer=sn.optimizers.SGD(0.01))
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return lr if epoch == 0 else lr * 0.6

    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[LearningRateScheduler(schedule)])
    want = [0.01 * 0.6**e for e in range(4)]
    assert history.history["learning_rate"] == pytest.approx(want, rel=1e-12)
    assert [c[0] for c in calls] == [0, 1, 2, 3]
    assert [c[1] for c in calls] == pytest.approx([0.01, *want[:-1]], rel=1e-12)


def test_scheduler_changes_the_training():
    """Same data and start, a schedule with a 10x smaller rate moves the weights less."""
    x, y = data()
    start = tiny_model().get_weights()
    moved = []
    for schedule in (lambda e: 0.1, lambda e: 0.01):
        model = tiny_model()
        model.fit(
            x,
            y,
            epochs=1,
            batch_size=20,
            shuffle=False,
            verbose=0,
            callbacks=[LearningRateScheduler(schedule)],
        )
        moved.append(np.abs(model.get_weights()[0] - start[0]).max())
    assert moved[1] == pytest.approx(moved[0] / 10, rel=1e-4)


def test_scheduler_with_initial_epoch_and_verbose(capsys):
    x, y = data()
    model = tiny_model()
    history = model.fit(
        x,
        y,
        epochs=4,
        initial_epoch=2,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda e: 0.5 / (e + 1), verbose=1)],
    )
    assert history.history["learning_rate"] == pytest.approx([0.5 / 3, 0.5 / 4])
    out = capsys.readouterr().out
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.166667" in out
    assert "Epoch 4:" in out


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_scheduler_refuses_bad_rates(bad):
    x, y = data()
    with pytest.raises(ValueError, match=r"schedule\(0\) returned .*it must be > 0"):
        tiny_model().fit(x, y, verbose=0, callbacks=[LearningRateScheduler(lambda e: bad)])


def test_scheduler_needs_a_function():
    with pytest.raises(TypeError, match="schedule must be a function"):
        LearningRateScheduler(0.1)


# ----- EarlyStopping -----------------------------------------------------------------------------
@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_after_patience_epochs_without_improvement(patience):
    """A frozen model's loss never improves after epoch 1: Keras stops after `patience` more epochs
    (patience 0 behaves as 1)."""
    x, y = data()
    model = tiny_model(trainable=False)
    stopper = EarlyStopping(monitor="loss", patience=patience)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stopper])
    assert len(history.history["loss"]) == 1 + max(patience, 1)
    assert stopper.stopped_epoch == max(patience, 1)
    assert model.epoch == 1 + max(patience, 1)


def test_early_stopping_does_not_stop_while_improving():
    x, y = data()
    history = tiny_model().fit(
        x, y, epochs=5, verbose=0, callbacks=[EarlyStopping(monitor="loss", patience=0)]
    )
    assert len(history.history["loss"]) == 5


def test_early_stopping_patience_counts_from_the_last_improvement():
    x, y = data()
    model = tiny_model(trainable=False)
    x_val, y_val = x[15:], y[15:]
    # epoch:  0  1  2  3  4  5  6  7  8
    # better: y  y  n  y  n  n  -> stop after epoch 5 with patience 2
    plan, losses = ranked_plan(model, [5, 3, 4, 1, 6, 2, 7, 8, 0], x_val, y_val)
    history = model.fit(
        x[:15],
        y[:15],
        epochs=len(plan),
        verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[WeightsPerEpoch(plan), EarlyStopping(patience=2)],
    )
    assert len(history.history["val_loss"]) == 6
    np.testing.assert_allclose(history.history["val_loss"], losses[:6], rtol=1e-6)


def test_early_stopping_min_delta():
    """Improvements smaller than min_delta do not count."""
    x, y = data()
    model = tiny_model()
    history = model.fit(
        x,
        y,
        epochs=6,
        verbose=0,
        callbacks=[EarlyStopping(monitor="loss", min_delta=10.0, patience=1)],
    )
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_restore_best_weights(restore):
    x, y = data()
    model = tiny_model(trainable=False)
    x_val, y_val = x[15:], y[15:]
    # best at epoch 1, then two epochs without improvement: stop after epoch 3 (patience 2)
    plan, losses = ranked_plan(model, [2, 0, 3, 4, 1, 5], x_val, y_val)
    stopper = EarlyStopping(patience=2, restore_best_weights=restore)
    history = model.fit(
        x[:15],
        y[:15],
        epochs=len(plan),
        verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[WeightsPerEpoch(plan), stopper],
    )
    assert len(history.history["val_loss"]) == 4
    assert stopper.best == pytest.approx(losses[1], rel=1e-6)
    want = plan[1] if restore else plan[3]
    for got, w in zip(model.get_weights(), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-6)
    assert model.evaluate(x_val, y_val, verbose=0)[0] == pytest.approx(
        losses[1] if restore else losses[3], rel=1e-5
    )


def test_early_stopping_restores_best_weights_when_training_runs_to_the_end():
    """Keras 3: the best weights come back at the end of training even without a stop."""
    x, y = data()
    model = tiny_model(trainable=False)
    x_val, y_val = x[15:], y[15:]
    plan, _ = ranked_plan(model, [1, 0, 2], x_val, y_val)
    stopper = EarlyStopping(patience=5, restore_best_weights=True)
    model.fit(
        x[:15],
        y[:15],
        epochs=3,
        verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[WeightsPerEpoch(plan), stopper],
    )
    assert stopper.stopped_epoch == 0 and model.epoch == 3
    for got, w in zip(model.get_weights(), plan[1], strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-6)


class FakeModel:
    stop_training = False

    def get_weights(self):
        return []


@pytest.mark.parametrize(
    "monitor, mode, values, stops_at",
    [
        ("val_accuracy", "auto", [0.5, 0.7, 0.6], 2),  # accuracies are maximised
        ("val_accuracy", "auto", [0.5, 0.7, 0.8, 0.9], None),
        ("val_loss", "auto", [0.5, 0.7, 0.6], 1),  # losses are minimised
        ("val_loss", "auto", [0.9, 0.7, 0.6, 0.5], None),
        ("val_loss", "max", [0.5, 0.7, 0.6], 2),
        ("accuracy", "min", [0.5, 0.4, 0.45], 2),
    ],
)
def test_early_stopping_direction(monitor, mode, values, stops_at):
    model = FakeModel()
    stopper = EarlyStopping(monitor=monitor, mode=mode, patience=0)
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, value in enumerate(values):
        stopper.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    assert (epoch if model.stop_training else None) == stops_at


def test_early_stopping_unknown_monitor():
    x, y = data()
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_loss' is not in the logs"):
        tiny_model().fit(x, y, verbose=0, callbacks=[EarlyStopping()])


# ----- ModelCheckpoint ---------------------------------------------------------------------------
def test_checkpoint_every_epoch(tmp_path):
    x, y = data()
    model = tiny_model()
    recorder = WeightsRecorder()
    pattern = tmp_path / "model-{epoch:02d}.keras"
    model.fit(x, y, epochs=3, verbose=0, callbacks=[recorder, ModelCheckpoint(pattern)])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["model-01.keras", "model-02.keras", "model-03.keras"]
    for epoch in range(3):
        loaded = sn.load_model(tmp_path / f"model-{epoch + 1:02d}.keras")
        for got, want in zip(loaded.get_weights(), recorder.seen[epoch], strict=True):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(recorder.seen[0][0], recorder.seen[2][0])


def test_checkpoint_with_log_values_in_the_name(tmp_path):
    x, y = data()
    history = tiny_model().fit(
        x,
        y,
        epochs=2,
        verbose=0,
        validation_split=0.25,
        callbacks=[ModelCheckpoint(tmp_path / "m{epoch}-{val_loss:.3f}.keras")],
    )
    want = {f"m{e + 1}-{v:.3f}.keras" for e, v in enumerate(history.history["val_loss"])}
    assert {p.name for p in tmp_path.iterdir()} == want


def test_checkpoint_save_best_only(tmp_path):
    x, y = data()
    model = tiny_model(trainable=False)
    x_val, y_val = x[15:], y[15:]
    # val_loss improves at epochs 1, 3 and 5 (1-based) only
    plan, _ = ranked_plan(model, [2, 3, 1, 4, 0], x_val, y_val)
    fixed = tmp_path / "best.keras"
    model.fit(
        x[:15],
        y[:15],
        epochs=len(plan),
        verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[
            WeightsPerEpoch(plan),
            ModelCheckpoint(tmp_path / "e{epoch:02d}.keras", save_best_only=True),
            ModelCheckpoint(fixed, save_best_only=True),
        ],
    )
    assert sorted(p.name for p in tmp_path.glob("e*.keras")) == [
        "e01.keras",
        "e03.keras",
        "e05.keras",
    ]
    for got, want in zip(sn.load_model(fixed).get_weights(), plan[4], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(sn.load_model(tmp_path / "e03.keras").get_weights(), plan[2], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_checkpoint_save_best_only_needs_its_monitor(tmp_path):
    x, y = data()
    with pytest.raises(ValueError, match=r"ModelCheckpoint: monitor 'val_loss' is not in the logs"):
        tiny_model().fit(
            x, y, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "m.keras", save_best_only=True)]
        )


# ----- progress display and hooks ----------------------------------------------------------------
def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = data()
    tiny_model().fit(x, y, epochs=3, verbose=2, validation_split=0.25)
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f"Epoch {i + 1}/3")
        assert "loss:" in line and "accuracy:" in line and "val_loss:" in line
        assert "learning_rate" not in line


def test_verbose_0_prints_nothing(capsys):
    x, y = data()
    tiny_model().fit(x, y, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_1_runs_with_a_progress_bar(capsys):
    x, y = data()
    history = tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=1)
    assert len(history.history["loss"]) == 2
    captured = capsys.readouterr()
    assert "Epoch 1/2" in captured.err + captured.out
    assert "Epoch 2/2" in captured.err + captured.out


def test_hooks_are_called_in_order():
    x, y = data()
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_train_batch_begin(self, batch, logs=None):
            events.append(f"batch_begin {batch}")

        def on_train_batch_end(self, batch, logs=None):
            assert "loss" in logs
            events.append(f"batch_end {batch}")

        def on_epoch_end(self, epoch, logs=None):
            assert set(logs) >= {"loss", "accuracy", "learning_rate"}
            events.append(f"epoch_end {epoch}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    recorder = Recorder()
    model = tiny_model()
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[recorder])
    assert recorder.model is model
    batches = ["batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1"]
    assert events == [
        "train_begin",
        "epoch_begin 0",
        *batches,
        "epoch_end 0",
        "epoch_begin 1",
        *batches,
        "epoch_end 1",
        "train_end",
    ]


def test_a_callback_can_stop_training():
    x, y = data()

    class StopAfterTwo(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = tiny_model().fit(x, y, epochs=10, verbose=0, callbacks=[StopAfterTwo()])
    assert len(history.history["loss"]) == 2

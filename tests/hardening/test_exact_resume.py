"""Exact resume: a training run SIGKILLed at random moments and resumed from its last checkpoint
(per epoch, written atomically) ends with the same bits as a run that was never interrupted:
weights, BatchNorm statistics, Adam's slots and step count, the learning-rate schedule, the
shuffling, dropout and augmentation (RandomFlip, RandomTranslation) generators and the history."""

import numpy as np
import pytest
from hardening_workers import EPOCHS, run_worker

import slidenet as keras


def assert_identical(a, b, where):
    assert a.epoch == b.epoch == EPOCHS, where
    for i, (u, v) in enumerate(zip(a.get_weights(), b.get_weights(), strict=True)):
        assert u.dtype == v.dtype == np.float32
        assert np.array_equal(u, v), f"{where}: weight {i} differs"
    for i, (u, v) in enumerate(zip(a.optimizer.variables(), b.optimizer.variables(), strict=True)):
        assert np.array_equal(u, v), f"{where}: optimizer slot {i} differs"
    assert a.optimizer.iterations == b.optimizer.iterations, where
    assert a.optimizer.learning_rate == b.optimizer.learning_rate, where
    assert a._rng.bit_generator.state == b._rng.bit_generator.state, where
    dropout = [layer.rng.bit_generator.state for layer in a.layers if hasattr(layer, "rng")]
    assert dropout == [layer.rng.bit_generator.state for layer in b.layers if hasattr(layer, "rng")]
    assert a.history.history == b.history.history, where
    assert len(a.history.history["val_loss"]) == EPOCHS


@pytest.mark.parametrize(("mode", "trials"), [("fit", 8), ("cli", 4)])
def test_sigkilled_training_resumes_bit_for_bit(tmp_path, mode, trials):
    report = run_worker("resume-trials", tmp_path, trials, 11, mode, timeout=180)
    reference = keras.load_model(tmp_path / "reference" / "final.slidenet")
    assert reference.optimizer.iterations == EPOCHS * 12  # 192 training examples, batch 16
    if mode == "fit":  # the two-argument schedule multiplied the rate by 0.8 every epoch
        assert reference.optimizer.learning_rate == pytest.approx(0.01 * 0.8**EPOCHS)
    kills, resumed_mid_run = 0, 0
    for trial, info in enumerate(report["trials"]):
        final = keras.load_model(tmp_path / f"trial-{trial}" / "final.slidenet")
        assert_identical(reference, final, f"trial {trial} ({info})")
        kills += info["kills"]
        resumed_mid_run += sum(0 < (e or 0) < EPOCHS for e in info["resumed_from"])
    # the test is not vacuous: runs were killed, and resumed from checkpoints mid-run
    assert kills >= trials // 2 and resumed_mid_run >= 2, report


def small_run(seed=4):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.layers.Dense(8, activation="relu", input_shape=(5,)), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.SGD(0.05), "mse")
    rng = np.random.default_rng(0)
    return model, rng.random((40, 5), np.float32), rng.random((40, 2), np.float32)


def test_early_stopping_resumes_where_the_uninterrupted_run_stops(tmp_path):
    def stopper():  # nothing counts as an improvement after the first epoch: stop after 3
        return keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=2)

    straight, x, y = small_run()
    straight.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[stopper()])
    assert straight.epoch == 3
    part, x, y = small_run()
    ckpt = keras.callbacks.ModelCheckpoint(tmp_path / "c.slidenet", monitor="loss")
    part.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ckpt])
    resumed = keras.load_model(tmp_path / "c.slidenet")
    resumed.fit(x, y, batch_size=8, epochs=10, initial_epoch=2, verbose=0, callbacks=[stopper()])
    assert resumed.epoch == 3  # a fresh EarlyStopping would have trained to epoch 5
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_save_best_only_remembers_the_best_before_the_checkpoint(tmp_path):
    model, x, y = small_run()
    path = tmp_path / "best.slidenet"
    best = keras.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[best])
    losses = model.history.history["loss"]
    resumed = keras.load_model(path)
    again = keras.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    resumed.fit(
        x,
        y,
        batch_size=8,
        epochs=resumed.epoch,
        initial_epoch=resumed.epoch,
        verbose=0,
        callbacks=[again],
    )
    assert again.best == min(losses[: resumed.epoch])  # not None: a worse epoch won't overwrite

"""Stateful metrics in fit / evaluate / train_on_batch: an epoch's AUC or precision is computed
over all of its examples (not averaged over batches), each epoch and each validation pass starts
afresh, and a metric object given for several outputs gets one state per output.

Needs the fit changes described with slidenet.metrics.BatchUpdate (metrics_mod.batch_value in
_metric_values, BatchUpdate in _accumulate, log_value in _means and _result)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import slidenet as sn
from slidenet.callbacks import CSVLogger, EarlyStopping, LambdaCallback
from slidenet.callbacks.monitor import _direction
from slidenet.metrics import AUC, F1Score, Precision, Recall


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.8 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def frozen(metrics, weights=None):
    """Dense(1, sigmoid) that does not train: its outputs stay fixed during fit."""
    sn.utils.set_random_seed(0)
    model = sn.Sequential(
        [sn.layers.Dense(1, activation="sigmoid", input_shape=(3,), trainable=False)]
    )
    model.compile(sn.optimizers.SGD(0.1), "binary_crossentropy", metrics=metrics)
    if weights is not None:
        model.set_weights(weights)
    return model


def fresh(metric, y, p):
    m = type(metric).from_config(metric.get_config())
    return m(y, p)


def test_epoch_values_cover_all_examples_not_a_mean_of_batches():
    x, y = data()
    model = frozen([AUC(), "precision", Recall(thresholds=0.4)])
    history = model.fit(x, y, epochs=2, batch_size=5, shuffle=True, verbose=0)
    p = model.predict(x)
    want_auc, want_prec = AUC()(y, p), Precision()(y, p)
    assert history.history["auc"] == pytest.approx([want_auc] * 2, rel=1e-12)
    assert history.history["precision"] == pytest.approx([want_prec] * 2, rel=1e-12)
    assert history.history["recall"] == pytest.approx([Recall(thresholds=0.4)(y, p)] * 2)
    batch_mean = np.mean([AUC()(y[i : i + 5], p[i : i + 5]) for i in range(0, 24, 5)])
    assert abs(batch_mean - want_auc) > 1e-3  # what averaging per batch would have logged


def test_batch_logs_are_running_values_and_evaluate_agrees():
    x, y = data()
    model = frozen([AUC()])
    seen = []
    model.fit(
        x,
        y,
        batch_size=8,
        shuffle=False,
        verbose=0,
        validation_data=(x[:10], y[:10]),
        callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["auc"]))],
    )
    p = model.predict(x)
    assert seen == pytest.approx([AUC()(y[:n], p[:n]) for n in (8, 16, 24)], rel=1e-12)
    assert model.history.history["val_auc"] == pytest.approx([AUC()(y[:10], p[:10])])
    loss, auc = model.evaluate(x, y, batch_size=7, verbose=0)
    assert auc == pytest.approx(AUC()(y, p), rel=1e-12)
    # a second evaluate starts afresh
    assert model.evaluate(x[:10], y[:10], verbose=0)[1] == pytest.approx(AUC()(y[:10], p[:10]))


def test_each_epoch_starts_afresh():
    x, y = data()
    rng = np.random.default_rng(1)
    plan = [[rng.normal(size=(3, 1)), np.zeros(1)] for _ in range(3)]
    model = frozen([AUC(), Precision()])
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=6,
        verbose=0,
        callbacks=[LambdaCallback(on_epoch_begin=lambda e, logs: model.set_weights(plan[e]))],
    )
    for epoch, weights in enumerate(plan):
        model.set_weights(weights)
        p = model.predict(x)
        assert history.history["auc"][epoch] == pytest.approx(AUC()(y, p), rel=1e-12)
        assert history.history["precision"][epoch] == pytest.approx(Precision()(y, p))


def test_train_and_test_on_batch_report_the_batch_alone():
    x, y = data()
    model = frozen([AUC()])
    p = model.predict(x)
    model.train_on_batch(x[:12], y[:12])
    loss, auc = model.train_on_batch(x[12:], y[12:])
    assert auc == pytest.approx(AUC()(y[12:], p[12:]))
    assert model.test_on_batch(x[:12], y[:12])[1] == pytest.approx(AUC()(y[:12], p[:12]))


def test_one_metric_object_for_two_outputs_gets_a_state_each():
    sn.utils.set_random_seed(0)
    inp = sn.Input((3,))
    a = sn.layers.Dense(1, activation="sigmoid", name="a", trainable=False)(inp)
    b = sn.layers.Dense(1, activation="sigmoid", name="b", trainable=False)(inp)
    model = sn.Model(inp, [a, b])
    shared = AUC()
    model.compile("sgd", ["binary_crossentropy", "binary_crossentropy"], metrics=[shared])
    x, y = data()
    y2 = 1 - y
    history = model.fit(x, [y, y2], batch_size=5, verbose=0)
    pa, pb = model.predict(x)
    assert history.history["a_auc"] == pytest.approx([AUC()(y, pa)], rel=1e-12)
    assert history.history["b_auc"] == pytest.approx([AUC()(y2, pb)], rel=1e-12)


def test_per_class_values_are_lists_in_history_files_and_csv(tmp_path):
    rng = np.random.default_rng(2)
    x, labels = rng.normal(size=(20, 3)), np.arange(20) % 3
    sn.utils.set_random_seed(0)
    model = sn.Sequential([sn.layers.Dense(3, activation="softmax", input_shape=(3,))])
    model.compile("sgd", "categorical_crossentropy", metrics=[F1Score()])
    y = np.eye(3)[labels]
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(tmp_path / "log.csv")])
    values = history.history["f1_score"]
    assert all(isinstance(v, list) and len(v) == 3 for v in values)
    model.save(tmp_path / "m.slidenet")  # the history (with lists) is JSON in the file
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.slidenet") as zf:
        saved = json.loads(zf.read("slidenet.json"))["training"]["history"]["f1_score"]
    np.testing.assert_allclose(saved, values, rtol=1e-15)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,f1_score,")
    assert rows[1].startswith('0,"[')


def test_auto_mode_reads_the_direction_of_metric_objects():
    model = frozen([AUC(), Precision(name="prec"), "accuracy"])
    model.fit(*data(), verbose=0)  # resolves the metrics
    assert _direction("auto", "val_auc", model) == "max"
    assert _direction("auto", "prec", model) == "max"
    assert _direction("auto", "val_accuracy", model) == "max"
    assert _direction("auto", "val_loss", model) == "min"
    assert _direction("auto", "mystery", model) == "min"
    stopper = EarlyStopping(monitor="val_auc")
    stopper.set_model(model)
    stopper.on_train_begin()
    assert stopper.best == -np.inf

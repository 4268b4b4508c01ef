"""Keras 3 metrics beyond accuracy: top-k accuracy, Precision, Recall, AUC (Keras' thresholds and
interpolation), F1Score / FBetaScore and MeanIoU, against closed forms on small hand examples
(several from Keras' own documentation); their state accumulates over batches and resets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slidenet import metrics
from slidenet.metrics import (
    AUC,
    F1Score,
    FBetaScore,
    MeanIoU,
    Precision,
    Recall,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)

SCORES = np.array(
    [
        [0.1, 0.5, 0.4],  # label 2: 2nd highest
        [0.3, 0.3, 0.4],  # label 0: tied 2nd (counts as rank 2)
        [0.6, 0.3, 0.1],  # label 2: 3rd
        [0.2, 0.7, 0.1],  # label 1: 1st
    ]
)
LABELS = np.array([2, 0, 2, 1])


# ----- top-k accuracy -----------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "want"), [(1, 0.25), (2, 0.75), (3, 1.0), (5, 1.0)])
def test_top_k_accuracy(k, want):
    assert metrics.sparse_top_k_categorical_accuracy(LABELS, SCORES, k=k) == want
    assert metrics.top_k_categorical_accuracy(np.eye(3)[LABELS], SCORES, k=k) == want
    assert SparseTopKCategoricalAccuracy(k=k)(LABELS, SCORES) == want
    assert TopKCategoricalAccuracy(k=k)(np.eye(3)[LABELS], SCORES) == want


def test_top_k_accumulates_with_sample_weights():
    m = SparseTopKCategoricalAccuracy(k=2)
    assert m.name == "sparse_top_k_categorical_accuracy"
    m.update_state(LABELS[:2], SCORES[:2])  # hit, hit
    m.update_state(LABELS[2:], SCORES[2:], sample_weight=[3.0, 1.0])  # miss (x3), hit
    assert m.result() == pytest.approx((1 + 1 + 0 + 1) / (1 + 1 + 3 + 1))
    m.reset_state()
    assert m.result() == 0.0


def test_top_k_checks():
    with pytest.raises(ValueError, match=r"k must be a positive integer"):
        TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match=r"3 labels for 4 rows"):
        metrics.sparse_top_k_categorical_accuracy(LABELS[:3], SCORES)


# ----- precision and recall -----------------------------------------------------------------------
Y = np.array([0, 1, 1, 1, 0, 0, 1])
P = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.55, 0.7])
# at 0.5: predicted positive 0, 1, 3, 5, 6 -> tp 3 (1, 3, 6), fp 2 (0, 5), fn 1 (2)


def test_precision_and_recall_at_one_half():
    assert Precision()(Y, P) == pytest.approx(3 / 5)
    assert Recall()(Y, P) == pytest.approx(3 / 4)
    p = Precision()
    assert p.name == "precision" and Recall().name == "recall"
    assert isinstance(p(Y, P), float)


def test_several_thresholds_give_one_value_each():
    # at 0.75: positive 0, 1 -> tp 1, fp 1, fn 3; at 0.25: all but 4 -> tp 4, fp 2, fn 0
    got = Precision(thresholds=[0.25, 0.5, 0.75])(Y, P)
    np.testing.assert_allclose(got, [4 / 6, 3 / 5, 1 / 2])
    np.testing.assert_allclose(Recall(thresholds=[0.25, 0.5, 0.75])(Y, P), [1, 3 / 4, 1 / 4])


def test_counts_accumulate_over_batches_and_reset():
    p = Precision()
    for part in (slice(0, 3), slice(3, 7)):
        p.update_state(Y[part], P[part])
    assert p.result() == pytest.approx(3 / 5)
    # not the mean of the batches' precisions (2/2 and 1/3)
    assert p.result() != pytest.approx((1 + 1 / 3) / 2)
    p.reset_state()
    assert p.result() == 0.0  # nothing predicted positive: 0, not NaN


def test_precision_with_weights_class_id_and_top_k():
    w = np.array([1, 1, 1, 2, 1, 3, 1])  # tp 1 + 2 + 1, fp 1 + 3
    assert Precision()(Y, P, sample_weight=w) == pytest.approx(4 / 8)
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.4, 0.35, 0.25]])
    onehot = np.eye(3)[[0, 2, 1]]
    # class 1: predicted (> 0.5) in row 1 only, true in row 2 -> precision 0, recall 0
    assert Precision(class_id=1)(onehot, scores) == 0.0
    assert Recall(class_id=0)(onehot, scores) == 1.0
    # top_k=1: each row's highest score counts as predicted (any value): rows 0 (right), 1, 2
    assert Precision(top_k=1)(onehot, scores) == pytest.approx(1 / 3)
    assert Recall(top_k=1)(onehot, scores) == pytest.approx(1 / 3)
    assert Recall(top_k=2)(onehot, scores) == 1.0  # every label among its row's top two
    # integer labels against (N, K) scores are one-hot encoded
    assert Precision(top_k=1)([0, 2, 1], scores) == pytest.approx(1 / 3)


def test_threshold_checks():
    with pytest.raises(ValueError, match=r"threshold values must be in \[0, 1\]"):
        Precision(thresholds=1.5)
    with pytest.raises(ValueError, match=r"do not fit predictions"):
        Recall()([1, 0, 1], np.zeros((2, 1)))


# ----- AUC ----------------------------------------------------------------------------------------
def test_auc_keras_documentation_example():
    """Keras' docstring: thresholds [-1e-7, 0.5, 1 + 1e-7], tp [2, 1, 0], fp [2, 0, 0]; recall
    [1, 0.5, 0], fp rate [1, 0, 0]; heights [0.75, 0.25], widths [1, 0] -> 0.75."""
    m = AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    np.testing.assert_array_equal(m.true_positives, [2, 1, 0])
    np.testing.assert_array_equal(m.false_positives, [2, 0, 0])
    np.testing.assert_array_equal(m.true_negatives, [0, 2, 2])
    np.testing.assert_array_equal(m.false_negatives, [0, 1, 2])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)
    assert m.thresholds == pytest.approx([-1e-7, 0.5, 1 + 1e-7])


@pytest.mark.parametrize(("method", "want"), [("minoring", 0.5), ("majoring", 1.0)])
def test_auc_riemann_sums(method, want):
    m = AUC(num_thresholds=3, summation_method=method)
    assert m([0, 0, 1, 1], [0, 0.5, 0.3, 0.9]) == pytest.approx(want)


def test_pr_auc_interpolation_by_hand():
    """Davis & Goadrich between thresholds: tp [2, 1, 0], p = tp + fp = [4, 1, 0]; slopes
    [1/3, 1], intercepts [2/3, 0]; increments (1/3)(1 + (2/3) log 4) / 2 and 1 (1 + 0) / 2."""
    m = AUC(num_thresholds=3, curve="PR")
    want = (1 / 3) * (1 + (2 / 3) * math.log(4)) / 2 + 0.5
    assert m([0, 0, 1, 1], [0, 0.5, 0.3, 0.9]) == pytest.approx(want, rel=1e-12)
    # majoring on the PR curve: precision [0.5, 1, 0] against recall [1, 0.5, 0]
    m = AUC(num_thresholds=3, curve="PR", summation_method="majoring")
    assert m([0, 0, 1, 1], [0, 0.5, 0.3, 0.9]) == pytest.approx(0.5 * 1 + 0.5 * 1)


def mann_whitney(y, s):
    """The exact ROC AUC: P(score of a positive > score of a negative), ties counting 1/2."""
    pos, neg = s[y == 1], s[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


def test_roc_auc_is_the_exact_auc_when_thresholds_separate_the_scores():
    """Scores on a grid between the thresholds k/1000: every operating point of the ROC curve is
    reached, so the trapezoidal rule is exact (ties between examples included)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = (np.round(rng.beta(2, 2, 300) * 999 + y * 60).clip(0, 998) + 0.5) / 1000
    m = AUC(num_thresholds=1001)
    for part in np.array_split(np.arange(300), 7):  # in batches
        m.update_state(y[part], s[part])
    assert m.result() == pytest.approx(mann_whitney(y, s), rel=1e-12)
    assert 0.5 < m.result() < 1
    # explicit thresholds (not evenly spread) take the other counting path: same counts
    uneven = AUC(thresholds=[0.2, 0.35, 0.5, 0.9])
    default_path = AUC(num_thresholds=5)
    np.testing.assert_array_equal(
        _counts(uneven, y, s), _counts(AUC(thresholds=[0.2, 0.35, 0.5, 0.9]), y, s, slow=True)
    )
    assert default_path(y, s) == pytest.approx(AUC(thresholds=[0.25, 0.5, 0.75])(y, s))


def _counts(m, y, s, slow=False):
    if slow:
        t = np.asarray(m.thresholds)
        return (s[None, :] > t[:, None]) @ (y == 1).astype(float)
    m.update_state(y, s)
    return m.true_positives


def test_auc_extremes_multi_label_and_logits():
    y = np.array([0, 0, 1, 1])
    assert AUC()(y, [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert AUC()(y, [0.9, 0.8, 0.2, 0.1]) == pytest.approx(0.0)
    scores = np.array([[0.1, 0.0], [0.2, 0.5], [0.8, 0.3], [0.9, 0.9]])
    # column 0: perfect (1.0); column 1 is the documentation example (0.75)
    assert AUC(num_thresholds=3, multi_label=True)(np.c_[y, y], scores) == pytest.approx(0.875)
    weighted = AUC(num_thresholds=3, multi_label=True, label_weights=[1, 3])
    assert weighted(np.c_[y, y], scores) == pytest.approx((1 + 3 * 0.75) / 4)
    flat = AUC(num_thresholds=3)(np.c_[y, y], scores)  # every output one example
    assert flat == pytest.approx(AUC(num_thresholds=3)(np.r_[y, y], scores.T.ravel()))
    logits = np.log(scores[:, 1] / (1 - scores[:, 1] + 1e-300) + 1e-300)
    assert AUC(num_thresholds=3, from_logits=True)(y, logits) == pytest.approx(0.75)


def test_auc_checks():
    with pytest.raises(ValueError, match=r"num_thresholds must be an integer > 1"):
        AUC(num_thresholds=1)
    with pytest.raises(ValueError, match=r"curve must be 'ROC' or 'PR'"):
        AUC(curve="DET")
    with pytest.raises(ValueError, match=r"num_labels is needed only when multi_label"):
        AUC(num_labels=3)


# ----- F-scores -----------------------------------------------------------------------------------
YT = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
YP = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
# predicted (> 0.5): [[0, 1, 1], [0, 1, 1], [1, 1, 0]]
# per class: tp [1, 2, 1], fp [0, 1, 1], fn [2, 0, 0]


def f(p, r, beta=1.0):
    return (1 + beta**2) * p * r / (beta**2 * p + r)


def test_f1_per_class_keras_documentation_example():
    got = F1Score(threshold=0.5)(YT, YP)
    np.testing.assert_allclose(got, [0.5, 0.8, 2 / 3], rtol=1e-6)  # Keras: [0.5, 0.8, 0.6666667]


@pytest.mark.parametrize(
    ("average", "want"),
    [
        ("micro", f(4 / 6, 4 / 6)),
        ("macro", (0.5 + 0.8 + 2 / 3) / 3),
        ("weighted", (3 * 0.5 + 2 * 0.8 + 1 * 2 / 3) / 6),  # weights: true examples per class
    ],
)
def test_f1_averages(average, want):
    got = F1Score(average=average, threshold=0.5)(YT, YP)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-6)


def test_fbeta_and_argmax_threshold_and_batches():
    got = FBetaScore(beta=2.0, threshold=0.5)(YT, YP)
    np.testing.assert_allclose(got, [f(1, 1 / 3, 2), f(2 / 3, 1, 2), f(1 / 2, 1, 2)], rtol=1e-6)
    # threshold None: each row's largest score (row 1 has two: both count)
    # predicted [[0, 0, 1], [0, 1, 1], [0, 1, 0]] -> tp [0, 1, 1], fp [0, 1, 1], fn [3, 1, 0]
    m = F1Score()
    m.update_state(YT[:2], YP[:2])
    m.update_state(YT[2:], YP[2:])
    np.testing.assert_allclose(m.result(), [0.0, f(0.5, 0.5), f(0.5, 1)], rtol=1e-6, atol=1e-6)
    # sparse labels against (N, K) scores are one-hot encoded
    np.testing.assert_allclose(F1Score()([2, 1, 1], YP), F1Score()(np.eye(3)[[2, 1, 1]], YP))


def test_f_score_checks():
    with pytest.raises(ValueError, match=r"average must be None, 'micro', 'macro' or 'weighted'"):
        F1Score(average="mean")
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\] or None"):
        F1Score(threshold=0.0)
    with pytest.raises(ValueError, match=r"beta must be a number > 0"):
        FBetaScore(beta=0)


# ----- MeanIoU ------------------------------------------------------------------------------------
def test_mean_iou_keras_documentation_example():
    m = MeanIoU(num_classes=2)
    assert m([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(1 / 3, rel=1e-6)  # cm [[1, 1], [1, 1]]
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.3, 0.1])
    # cm [[0.3, 0.3], [0.3, 0.1]]: iou [0.3 / 0.9, 0.1 / 0.7]
    assert m.result() == pytest.approx((0.3 / 0.9 + 0.1 / 0.7) / 2, rel=1e-6)
    assert m.name == "mean_io_u"


def test_mean_iou_over_batches_with_scores_absent_classes_and_ignore_class():
    scores = np.array([[[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]], [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]]])
    labels = np.array([[0, 1], [1, 1]])  # predicted [[0, 1], [1, 0]]
    m = MeanIoU(num_classes=3, sparse_y_pred=False)
    m.update_state(labels[:1], scores[:1])
    m.update_state(labels[1:], scores[1:])
    # class 0: tp 1, fp 1; class 1: tp 2, fn 1; class 2 absent from both: left out of the mean
    assert m.result() == pytest.approx((1 / 2 + 2 / 3) / 2, rel=1e-6)
    ignoring = MeanIoU(num_classes=3, sparse_y_pred=False, ignore_class=0)
    assert ignoring(labels, scores) == pytest.approx((0 / 1 + 2 / 3) / 2, rel=1e-6)


def test_mean_iou_refuses_scores_as_ids():
    with pytest.raises(ValueError, match=r"sparse_y_pred=False"):
        MeanIoU(num_classes=3)([0, 1], np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]]))
    with pytest.raises(ValueError, match=r"class ids outside 0\.\.1"):
        MeanIoU(num_classes=2)([0, 2], [0, 1])


# ----- names and configs --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("auc", AUC),
        ("AUC", AUC),
        ("precision", Precision),
        ("recall", Recall),
        ("f1_score", F1Score),
    ],
)
def test_stateful_names_give_new_objects(name, cls):
    log_name, m = metrics.resolve(name, "binary_crossentropy", (None, 1))
    assert type(m) is cls and log_name == name.lower() == m.name
    assert metrics.resolve(name, "binary_crossentropy", (None, 1))[1] is not m


def test_metric_objects_and_classes_resolve_to_their_names():
    auc = AUC(name="my_auc")
    assert metrics.resolve(auc, "mse", (None, 1)) == ("my_auc", auc)
    name, m = metrics.resolve(Recall, "mse", (None, 1))
    assert name == "recall" and isinstance(m, Recall)
    assert metrics.get("top_k_categorical_accuracy") is metrics.top_k_categorical_accuracy
    assert isinstance(metrics.get("auc"), AUC) and isinstance(metrics.get("Recall"), Recall)


@pytest.mark.parametrize(
    "metric",
    [
        AUC(num_thresholds=7, curve="PR", multi_label=True, label_weights=[1.0, 2.0]),
        AUC(thresholds=[0.3, 0.6]),
        Precision(thresholds=[0.2, 0.7], class_id=1),
        Recall(top_k=2),
        F1Score(average="macro", threshold=0.4),
        FBetaScore(beta=0.5),
        MeanIoU(num_classes=4, ignore_class=0, sparse_y_pred=False),
        TopKCategoricalAccuracy(k=3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_serialize_round_trip(metric):
    back = metrics.deserialize(metrics.serialize(metric))
    assert type(back) is type(metric) and back.get_config() == metric.get_config()


def test_fit_helpers():
    auc, acc = AUC(), metrics.binary_accuracy
    y, p = np.array([1, 0]), np.array([[0.9], [0.2]])
    assert metrics.batch_value(acc, y, p) == 1.0
    update = metrics.batch_value(auc, y, p)  # applied where fit adds up the batches
    assert isinstance(update, metrics.BatchUpdate) and auc.true_positives.sum() == 0
    assert update.apply(fresh=True) is auc and auc.result() == pytest.approx(1.0)
    metrics.batch_value(auc, [1, 0], np.array([[0.1], [0.8]])).apply(fresh=False)
    assert auc.result() == pytest.approx(0.5)  # both batches: 2 of the 4 pairs ordered right
    metrics.batch_value(auc, [1, 0], np.array([[0.1], [0.8]])).apply(fresh=True)
    assert auc.result() == pytest.approx(0.0)  # a new pass: this batch alone
    assert metrics.log_value(auc) == pytest.approx(0.0)
    assert metrics.log_value(metrics.batch_value(auc, y, p)) == pytest.approx(1.0)  # alone
    f1 = F1Score()
    f1.update_state(YT, YP)
    logged = metrics.log_value(f1)  # one value per class: a list (JSON for the model file)
    assert isinstance(logged, list) and logged == pytest.approx(f1.result().tolist())
    metrics.reset_states([[("auc", auc)], [("acc", acc)]])
    assert auc.true_positives.sum() == 0
    shared = Precision()
    rows = metrics.distinct([[("precision", shared)], [("precision", shared)]])
    assert rows[0][0][1] is shared and rows[1][0][1] is not shared
    assert rows[1][0][1].get_config() == shared.get_config()

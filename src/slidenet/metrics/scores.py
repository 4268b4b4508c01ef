"""F-scores per class (FBetaScore, F1Score) and the mean intersection-over-union (MeanIoU),
accumulated over batches as Keras does."""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.metrics.accuracy import _arrays
from slidenet.metrics.base import EPSILON, Metric, sample_weights, scalar_or_array
from slidenet.metrics.confusion import aligned

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """F-beta score (1 + beta^2) P R / (beta^2 P + R) of (N, classes) predictions, per class.

    Scores above ``threshold`` are predicted positive; with threshold=None the largest score of
    each row is (unless it is 0). ``average``: None gives one score per class, "micro" pools
    the counts of all classes, "macro" averages the per-class scores and "weighted" averages
    them weighted by each class's number of true examples. Keras adds 1e-7 to denominators;
    so does this class.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        who = type(self).__name__
        if average not in _AVERAGES:
            raise ValueError(
                f"{who}: average must be None, 'micro', 'macro' or 'weighted', got {average!r}."
            )
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta > 0:
            raise ValueError(f"{who}: beta must be a number > 0, got {beta!r}.")
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold <= 1
        ):
            raise ValueError(f"{who}: threshold must be in (0, 1] or None, got {threshold!r}.")
        super().__init__(name, dtype)
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self.axis = None if average == "micro" else 0
        self.reset_state()

    def reset_state(self):
        self.true_positives = self.false_positives = None
        self.false_negatives = self.intermediate_weights = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p = aligned(y_true, y_pred, self.name)
        if p.ndim != 2:
            raise ValueError(
                f"{self.name}: expects predictions (N, classes), got {fmt_shape(p.shape)}."
            )
        if self.threshold is None:
            top = p.max(axis=-1, keepdims=True)
            predicted = (p >= top) & (np.abs(p) > 1e-9)
        else:
            predicted = p > self.threshold
        predicted = predicted.astype(np.float64)
        w = sample_weights(sample_weight, p.shape[:1], self.name)[:, None]
        parts = (predicted * t, predicted * (1 - t), (1 - predicted) * t, t)
        sums = [np.sum(v * w, axis=self.axis) for v in parts]
        if self.true_positives is None:
            self.true_positives, self.false_positives = sums[0], sums[1]
            self.false_negatives, self.intermediate_weights = sums[2], sums[3]
            return
        if np.shape(sums[0]) != np.shape(self.true_positives):
            raise ValueError(
                f"{self.name}: got {p.shape[1]} classes after {np.size(self.true_positives)}."
            )
        self.true_positives = self.true_positives + sums[0]
        self.false_positives = self.false_positives + sums[1]
        self.false_negatives = self.false_negatives + sums[2]
        self.intermediate_weights = self.intermediate_weights + sums[3]

    def result(self):
        if self.true_positives is None:
            return 0.0
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        b2 = self.beta**2
        f = (1 + b2) * precision * recall / (b2 * precision + recall + EPSILON)
        if self.average == "weighted":
            weights = self.intermediate_weights / (np.sum(self.intermediate_weights) + EPSILON)
            f = np.sum(f * weights)
        elif self.average is not None:
            f = np.mean(f)
        return scalar_or_array(f)

    def get_config(self):
        config = {"average": self.average, "beta": self.beta, "threshold": self.threshold}
        return {**super().get_config(), **config}


class F1Score(FBetaScore):
    """F1 score 2 P R / (P + R): FBetaScore with beta=1."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


class MeanIoU(Metric):
    """Mean intersection-over-union tp / (tp + fp + fn) over the classes seen, from a confusion
    matrix accumulated over batches (rows: true class, columns: predicted class).

    As in Keras, predictions are class ids by default; pass ``sparse_y_pred=False`` for scores
    (N, ..., classes), whose argmax is taken (``sparse_y_true=False`` for one-hot targets).
    Unlike Keras, scores given where ids are expected are refused rather than truncated.
    Examples whose true class is ``ignore_class`` are left out.
    """

    def __init__(
        self,
        num_classes,
        name=None,
        dtype=None,
        ignore_class=None,
        sparse_y_true=True,
        sparse_y_pred=True,
        axis=-1,
    ):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"MeanIoU: num_classes must be an integer >= 1, got {num_classes!r}.")
        super().__init__(name, dtype)
        self.num_classes, self.ignore_class = num_classes, ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.reset_state()

    def reset_state(self):
        self.total_cm = np.zeros((self.num_classes, self.num_classes))

    def _ids(self, a, sparse, what):
        if not sparse:
            return np.argmax(a, axis=self.axis).ravel()
        a = a.ravel()
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise ValueError(
                f"{self.name}: {what} holds fractions, not class ids; pass "
                f"sparse_{what}=False to take the argmax of scores."
            )
        return a.astype(np.int64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _arrays(y_true, y_pred, self.name)
        t = self._ids(y_true, self.sparse_y_true, "y_true")
        p = self._ids(y_pred, self.sparse_y_pred, "y_pred")
        if t.size != p.size:
            raise ValueError(
                f"{self.name}: {t.size} true class ids for {p.size} predicted ones (y_pred "
                f"{fmt_shape(y_pred.shape)}); for scores (N, ..., classes) pass "
                "sparse_y_pred=False."
            )
        w = sample_weights(sample_weight, y_true.shape, self.name).ravel()
        if w.size != t.size:
            w = sample_weights(sample_weight, t.shape, self.name)
        if self.ignore_class is not None:
            keep = t != self.ignore_class
            t, p, w = t[keep], p[keep], w[keep]
        c = self.num_classes
        for what, ids in (("y_true", t), ("y_pred", p)):
            if ids.size and (ids.min() < 0 or ids.max() >= c):
                raise ValueError(f"{self.name}: {what} has class ids outside 0..{c - 1}.")
        self.total_cm += np.bincount(t * c + p, w, minlength=c * c).reshape(c, c)

    def result(self):
        tp = np.diag(self.total_cm)
        denominator = self.total_cm.sum(axis=0) + self.total_cm.sum(axis=1) - tp
        valid = np.sum(denominator > 1e-9)
        return float(np.sum(tp / (denominator + EPSILON)) / (valid + EPSILON))

    def get_config(self):
        config = {
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }
        return {**super().get_config(), **config}

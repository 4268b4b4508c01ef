"""Metrics from counts of true/false positives/negatives at thresholds: Precision, Recall and
AUC (Keras' definitions, interpolation included). The counts accumulate over batches."""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.metrics.accuracy import _arrays
from slidenet.metrics.base import EPSILON, Metric, sample_weights, scalar_or_array

NEG_INF = -1e10  # Keras' threshold for "any score" with top_k


def aligned(y_true, y_pred, who):
    """(targets, scores) as float64 arrays of the scores' shape. Targets with one value per
    output are reshaped; integer labels with one per row of (N, ..., K) scores are one-hot
    encoded (a slidenet convenience: fit passes sparse labels as they are)."""
    y_true, y_pred = _arrays(y_true, y_pred, who)
    y_pred = y_pred.astype(np.float64)
    if y_true.size == y_pred.size:
        return y_true.reshape(y_pred.shape).astype(np.float64), y_pred
    k = y_pred.shape[-1]
    if y_pred.ndim >= 2 and k > 1 and y_true.size * k == y_pred.size:
        labels = y_true.reshape(y_pred.shape[:-1])
        if labels.size and (
            np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() >= k
        ):
            raise ValueError(f"{who}: integer labels must lie in 0..{k - 1}.")
        return np.eye(k)[labels.astype(np.int64)], y_pred
    raise ValueError(
        f"{who}: targets {fmt_shape(y_true.shape)} do not fit predictions "
        f"{fmt_shape(y_pred.shape)}; give one target per output or one integer label per row."
    )


def _divide(a, b):
    """a / b, and 0 where b is 0 (Keras' divide_no_nan)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _filter_top_k(x, k):
    """Keep the k largest scores of each row (the first of equal ones), the rest to NEG_INF."""
    keep = np.zeros(x.shape, bool)
    top = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    np.put_along_axis(keep, top, True, axis=-1)
    return np.where(keep, x, NEG_INF)


def _thresholds(thresholds, default, who) -> list[float]:
    if thresholds is None:
        return [default]
    values = [thresholds] if np.ndim(thresholds) == 0 else list(np.asarray(thresholds).ravel())
    if not values or any(not 0 <= float(t) <= 1 for t in values):
        raise ValueError(f"{who}: threshold values must be in [0, 1], got {thresholds!r}.")
    return [float(t) for t in values]


class _ThresholdCounts(Metric):
    """True positives, false positives and false negatives at each threshold: a score above
    the threshold predicts positive; a target other than 0 is positive."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        who = type(self).__name__
        for what, v in (("top_k", top_k), ("class_id", class_id)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | np.integer)):
                raise ValueError(f"{who}: {what} must be an integer or None, got {v!r}.")
        if top_k is not None and top_k < 1 or class_id is not None and class_id < 0:
            raise ValueError(f"{who}: top_k must be >= 1 and class_id >= 0.")
        super().__init__(name, dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = _thresholds(thresholds, 0.5 if top_k is None else NEG_INF, who)
        self.reset_state()

    def reset_state(self):
        n = len(self.thresholds)
        self.true_positives, self.false_positives = np.zeros(n), np.zeros(n)
        self.false_negatives = np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p = aligned(y_true, y_pred, self.name)
        w = sample_weights(sample_weight, p.shape, self.name)
        if self.top_k is not None:
            p = _filter_top_k(p, self.top_k)
        if self.class_id is not None:
            if p.ndim < 2 or self.class_id >= p.shape[-1]:
                raise ValueError(
                    f"{self.name}: class_id={self.class_id} needs predictions (N, classes) with "
                    f"more than {self.class_id} classes, got {fmt_shape(p.shape)}."
                )
            t, p, w = t[..., self.class_id], p[..., self.class_id], w[..., self.class_id]
        positive, w, p = t.ravel() != 0, w.ravel(), p.ravel()
        above = p[None, :] > np.asarray(self.thresholds)[:, None]
        self.true_positives += (above & positive) @ w
        self.false_positives += (above & ~positive) @ w
        self.false_negatives += (~above & positive) @ w

    def _result(self, values):
        return scalar_or_array(values[0] if len(values) == 1 else values)

    def get_config(self):
        config = {"thresholds": self.init_thresholds, "top_k": self.top_k}
        return {**super().get_config(), **config, "class_id": self.class_id}


class Precision(_ThresholdCounts):
    """Precision tp / (tp + fp) over every example seen (0 when nothing was predicted
    positive); one value per threshold when several are given. ``top_k`` counts only the k
    highest scores of each row as predictions, ``class_id`` looks at that class alone."""

    def result(self):
        return self._result(
            _divide(self.true_positives, self.true_positives + self.false_positives)
        )


class Recall(_ThresholdCounts):
    """Recall tp / (tp + fn) over every example seen (0 when there were no positives)."""

    def result(self):
        return self._result(
            _divide(self.true_positives, self.true_positives + self.false_negatives)
        )


_CURVES = ("ROC", "PR")
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from counts at ``num_thresholds``
    thresholds spread evenly over [0, 1] (plus -1e-7 and 1 + 1e-7 at the ends), as Keras.

    ``summation_method="interpolation"`` uses the trapezoidal rule for ROC and Davis &
    Goadrich's interpolation for PR; "minoring" / "majoring" use the lower / upper Riemann sum.
    With ``multi_label=True`` each column of (N, labels) scores gets its own curve and the
    result is their mean (weighted by ``label_weights``); otherwise every output is one example.
    ``from_logits=True`` applies the sigmoid to the scores first.
    """

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        super().__init__(name, dtype)
        if str(curve).upper() not in _CURVES:
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}.")
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(
                f"AUC: summation_method must be one of {', '.join(_SUMMATIONS)}, got "
                f"{summation_method!r}."
            )
        self.curve, self.summation_method = str(curve).upper(), str(summation_method).lower()
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_thresholds(thresholds, None, "AUC"))
            self.num_thresholds = len(inner) + 2
            ends = np.array([0.0, *inner, 1.0])
            self._evenly = len(ends) >= 3 and np.allclose(
                ends, np.arange(len(ends)) / (len(ends) - 1), atol=EPSILON
            )
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int):
                raise ValueError(
                    f"AUC: num_thresholds must be an integer > 1, got {num_thresholds!r}."
                )
            if num_thresholds <= 1:
                raise ValueError(
                    f"AUC: num_thresholds must be an integer > 1, got {num_thresholds}."
                )
            self.num_thresholds = num_thresholds
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - EPSILON, *inner, 1.0 + EPSILON])
        self.multi_label, self.from_logits = bool(multi_label), bool(from_logits)
        if num_labels is not None and not self.multi_label:
            raise ValueError("AUC: num_labels is needed only when multi_label=True.")
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, float)
        if self.label_weights is not None and np.any(self.label_weights < 0):
            raise ValueError("AUC: label_weights must be >= 0.")
        self.reset_state()

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, the two end points included."""
        return list(self._thresholds)

    def reset_state(self):
        labels = self.num_labels if self.multi_label else None
        shape = (self.num_thresholds,) + ((labels,) if labels else ())
        if self.multi_label and not labels:
            self.true_positives = self.false_positives = None
            self.true_negatives = self.false_negatives = None
            return
        self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
        self.true_negatives, self.false_negatives = np.zeros(shape), np.zeros(shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p = aligned(y_true, y_pred, self.name)
        w = sample_weights(sample_weight, p.shape, self.name)
        if self.from_logits:
            p = 0.5 * (1 + np.tanh(p / 2))  # the sigmoid, without overflow
        if self.multi_label:
            if p.ndim != 2:
                raise ValueError(
                    f"{self.name}: multi_label=True needs scores (N, labels), got "
                    f"{fmt_shape(p.shape)}."
                )
            if self.num_labels is None:
                self.num_labels = p.shape[1]
                self.reset_state()
            if p.shape[1] != self.num_labels:
                raise ValueError(
                    f"{self.name}: expected {self.num_labels} labels, got {p.shape[1]}."
                )
        elif self.label_weights is not None:
            w = w * np.broadcast_to(self.label_weights, p.shape)
        p = np.clip(p, 0.0, 1.0)
        if not self.multi_label:
            t, p, w = t.reshape(-1, 1), p.reshape(-1, 1), w.reshape(-1, 1)
        pos, neg = (t != 0) * w, (t == 0) * w  # (examples, labels)
        tp, fp = self._counts(p, pos), self._counts(p, neg)
        if not self.multi_label:
            tp, fp = tp[:, 0], fp[:, 0]
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += pos.sum(axis=0).reshape(tp.shape[1:]) - tp
        self.true_negatives += neg.sum(axis=0).reshape(fp.shape[1:]) - fp

    def _counts(self, p, weights):
        """Sum of ``weights`` of the scores above each threshold: (thresholds, labels)."""
        n_t, n_labels = self.num_thresholds, p.shape[1]
        if self._evenly:  # Keras' bucketing: score p is above threshold i iff p (T-1) > i
            bucket = np.maximum(np.ceil(p * (n_t - 1)) - 1, 0).astype(np.int64)
            flat = bucket + n_t * np.arange(n_labels)[None, :]
            per = np.bincount(flat.ravel(), weights.ravel(), minlength=n_t * n_labels)
            per = per.reshape(n_labels, n_t).T
            return np.cumsum(per[::-1], axis=0)[::-1]
        above = p[None, :, :] > self._thresholds[:, None, None]
        return np.einsum("tnl,nl->tl", above, weights)

    def result(self):
        if self.true_positives is None:
            return 0.0
        tp, fp, tn, fn = (
            self.true_positives,
            self.false_positives,
            self.true_negatives,
            self.false_negatives,
        )
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolated_pr(tp, fp, fn)
        else:
            recall = _divide(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide(fp, fp + tn), recall
            else:
                x, y = recall, _divide(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        if not self.multi_label:
            return float(terms.sum())
        by_label = terms.sum(axis=0)
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_divide((by_label * self.label_weights).sum(), self.label_weights.sum()))

    @staticmethod
    def _interpolated_pr(tp, fp, fn):
        """Davis & Goadrich (2006): precision interpolated between thresholds (Keras'
        interpolate_pr_auc)."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        slope = _divide(dtp, np.maximum(p[:-1] - p[1:], 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))

    def get_config(self):
        config = {
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return {**super().get_config(), **config}

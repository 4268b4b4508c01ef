"""Metrics: functions (y_true, y_pred) -> fraction correct over the batch, and stateful
:class:`Metric` objects (Keras 3) that accumulate over batches.

"accuracy" resolves like Keras: integer labels against (N, K) outputs -> sparse categorical
accuracy; one-hot targets -> categorical accuracy; one output unit -> binary accuracy (threshold
0.5).

fit averages a metric *function*'s per-batch values weighted by the batch sizes. A
:class:`Metric` object (``AUC()``, ``Precision()``, or a name such as "auc") is instead updated
with every batch and read once: an epoch's AUC is the AUC of all its examples, which no average
of per-batch AUCs gives. The first batch of each pass (an epoch of training, a validation, an
evaluate) resets them: see :class:`BatchUpdate`.
"""

from __future__ import annotations

from slidenet._validation import unknown_name
from slidenet.metrics.accuracy import (
    _sparse_or_categorical_accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from slidenet.metrics.base import (
    BinaryAccuracy,
    CategoricalAccuracy,
    MeanMetricWrapper,
    Metric,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from slidenet.metrics.confusion import AUC, Precision, Recall
from slidenet.metrics.scores import F1Score, FBetaScore, MeanIoU

__all__ = [
    "AUC",
    "BatchUpdate",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "FBetaScore",
    "MeanIoU",
    "MeanMetricWrapper",
    "Metric",
    "Precision",
    "Recall",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "batch_value",
    "deserialize",
    "distinct",
    "get",
    "log_value",
    "reset_states",
    "resolve",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]

_BY_NAME = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "accuracy": None,
    "acc": None,
}

#: Stateful metrics by name: a new object for each use (MeanIoU needs num_classes: no name).
_STATEFUL = {
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
    "f1_score": F1Score,
    "fbeta_score": FBetaScore,
}

_CLASSES = {
    cls.__name__: cls
    for cls in (
        AUC,
        BinaryAccuracy,
        CategoricalAccuracy,
        F1Score,
        FBetaScore,
        MeanIoU,
        Precision,
        Recall,
        SparseCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        TopKCategoricalAccuracy,
    )
}


def resolve(name, loss_name: str, output_shape) -> tuple[str, callable]:
    """(log name, function or Metric) for a metric identifier; 'accuracy' picks the right
    variant. A Metric object is returned as it is (logged under its ``name``), a Metric class
    or a stateful name ("auc", "precision", ...) as a new object."""
    if isinstance(name, Metric):
        return name.name, name
    if isinstance(name, type) and issubclass(name, Metric):
        metric = name()
        return metric.name, metric
    if callable(name):
        return name.__name__, name
    if not isinstance(name, str):
        raise TypeError(f"metrics must be names, functions or Metric objects, got {name!r}.")
    key = name.lower()
    if key in _STATEFUL:
        return key, _STATEFUL[key](name=key)
    if key not in _BY_NAME:
        raise unknown_name("metric", name, [*_BY_NAME, *_STATEFUL])
    if key in ("accuracy", "acc"):
        if loss_name == "binary_crossentropy" or output_shape[-1] == 1:
            fn = binary_accuracy
        elif loss_name == "categorical_crossentropy":
            fn = categorical_accuracy
        elif loss_name == "sparse_categorical_crossentropy":
            fn = sparse_categorical_accuracy
        else:  # e.g. mean_squared_error: integer labels or one-hot targets, decided by their shape
            fn = _sparse_or_categorical_accuracy
        return key, fn  # logged under the name given, as Keras 3 does ("acc" or "accuracy")
    return key, _BY_NAME[key]


def get(identifier):
    """A metric function or a new Metric object from a name ("auc", "accuracy" gives the
    sparse variant), a Metric class, or the object itself."""
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return sparse_categorical_accuracy
    if isinstance(identifier, str) and identifier in _CLASSES:
        return _CLASSES[identifier]()
    return resolve(identifier, "", (2,))[1]


def serialize(metric: Metric) -> dict:
    """A Metric object as JSON: ``{"class_name": ..., "config": ...}``."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict) -> Metric:
    """The Metric object that :func:`serialize` described."""
    name = config.get("class_name")
    if name not in _CLASSES:
        raise unknown_name("metric", str(name), _CLASSES)
    return _CLASSES[name].from_config(config.get("config", {}))


# ----- what fit needs ----------------------------------------------------------------------------
def _objects(metric_fns):
    """Every Metric object in a list of (name, fn) pairs, or of such lists (one per output)."""
    for entry in metric_fns or []:
        if isinstance(entry, list):
            yield from _objects(entry)
        elif isinstance(entry[1], Metric):
            yield entry[1]


def reset_states(metric_fns) -> None:
    """Reset the stateful metrics among ``metric_fns``."""
    for metric in _objects(metric_fns):
        metric.reset_state()


class BatchUpdate:
    """One batch for a stateful metric, applied where fit adds up the batches' values
    (``apply(fresh)``: ``fresh`` for the first batch of a pass, which resets the state first).
    So each pass (an epoch of training, a validation, an evaluate) covers its own batches
    exactly, wherever it starts."""

    __slots__ = ("metric", "y_true", "y_pred")

    def __init__(self, metric, y_true, y_pred):
        self.metric, self.y_true, self.y_pred = metric, y_true, y_pred

    def apply(self, fresh: bool) -> Metric:
        if fresh:
            self.metric.reset_state()
        self.metric.update_state(self.y_true, self.y_pred)
        return self.metric


def batch_value(fn, y_true, y_pred):
    """One batch's entry for fit's logs: a function's value (averaged over the batches,
    weighted by their sizes), or a :class:`BatchUpdate` for a Metric object."""
    if isinstance(fn, Metric):
        return BatchUpdate(fn, y_true, y_pred)
    return fn(y_true, y_pred)


def log_value(value):
    """A value for the logs: a Metric's result (a float, or a list of floats for a metric with
    one value per class such as ``F1Score(average=None)``); a BatchUpdate's result on its batch
    alone (train_on_batch, test_on_batch); anything else as it is."""
    if isinstance(value, BatchUpdate):
        value = value.apply(fresh=True)
    if isinstance(value, Metric):
        value = value.result()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value


def distinct(metric_fns):
    """Per-output lists of (name, fn) in which a Metric object listed for several outputs is
    replaced by a fresh copy after its first use (each output needs its own state)."""
    seen, out = set(), []
    for entries in metric_fns:
        row = []
        for name, fn in entries:
            if isinstance(fn, Metric):
                if id(fn) in seen:
                    fn = type(fn).from_config(fn.get_config())
                seen.add(id(fn))
            row.append((name, fn))
        out.append(row)
    return out

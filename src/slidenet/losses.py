"""Losses by Keras name. Each returns the batch mean and its gradient w.r.t. the model output.

When the last layer ends in softmax (or sigmoid) and the loss is categorical (or binary)
cross-entropy, the model uses the fused form on the logits: stable for any logits, and its gradient
(p - y) / N enters the backward pass below the activation. Label smoothing and the focal
cross-entropy keep that fused form (they only change the targets, or weigh the log-probabilities).
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import as_array, fmt_shape, unknown_name
from slidenet.ops import losses as L


def _number(value, who, what, low, high=None, low_open=False):
    """``value`` as a float in [low, high] (low excluded with ``low_open``), else a ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    ok = ok and np.isfinite(value) and (value > low if low_open else value >= low)
    ok = ok and (high is None or value <= high)
    if not ok:
        span = f"{'>' if low_open else '>='} {low}"
        span += f" and <= {high}" if high is not None else ""
        raise ValueError(f"{who}: {what} must be a finite number {span}, got {value!r}.")
    return float(value)


class Loss:
    """Base class. ``loss(y_true, y_pred) -> float``; ``forward`` also returns d loss / d y_pred."""

    name = "loss"
    fused_activation: str | None = None

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred) -> float:
        y_pred = _predictions(y_pred, self.name)
        return self.forward(self.check_targets(y_true, y_pred.shape, self.name), y_pred)[0]

    def forward(self, y_true, y_pred):
        """(mean loss, gradient w.r.t. y_pred); y_pred are logits when from_logits=True."""
        raise NotImplementedError

    def forward_logits(self, y_true, logits):
        """Fused form on the logits of the matching activation: (mean loss, dlogits)."""
        raise NotImplementedError

    def check_targets(self, y, out_shape, who):
        """Validate targets against the model output shape (N, ...) and return them as an array."""
        y = as_array(y, who, "y")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: y has dtype {y.dtype}; expected numbers.")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"{who}: y contains NaN or Inf.")
        return y

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels y (N,) against class probabilities (N, K)."""

    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def check_targets(self, y, out_shape, who):
        y = super().check_targets(y, out_shape, who)
        _two_axes(out_shape, who, self.name)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"{who}: sparse_categorical_crossentropy needs integer labels (N,), got y of shape "
                f"{fmt_shape(y.shape)}; for one-hot labels use loss='categorical_crossentropy'."
            )
        if y.dtype.kind == "f":
            if not np.all(y == np.round(y)):
                raise ValueError(f"{who}: labels must be whole numbers (class indices).")
        if len(y) != out_shape[0]:
            raise ValueError(
                f"{who}: {len(y)} labels for {out_shape[0]} predictions; they must match."
            )
        k = out_shape[-1]
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(
                f"{who}: labels range over {int(y.min())}..{int(y.max())} but the last layer has "
                f"{k} units (classes 0..{k - 1}); use Dense({int(y.max()) + 1}) as the last layer "
                "or fix the labels."
            )
        return y.astype(np.int64)

    def forward(self, y_true, y_pred):
        if self.from_logits:
            return L.softmax_cross_entropy(y_pred, y_true)
        return L.cross_entropy(y_pred, y_true)

    def forward_logits(self, y_true, logits):
        return L.softmax_cross_entropy(logits, y_true)


class CategoricalCrossentropy(SparseCategoricalCrossentropy):
    """Cross-entropy with one-hot (or probability) targets y (N, K).

    ``label_smoothing=s`` trains against y (1 - s) + s / K (Keras); the fused softmax form stays.
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        super().__init__(from_logits)
        self.label_smoothing = _number(label_smoothing, self.name, "label_smoothing", 0, 1)

    def _smoothed(self, y_true, out):
        return L.smooth_labels(y_true, out.shape[-1], self.label_smoothing, out.dtype)

    def forward(self, y_true, y_pred):
        return super().forward(self._smoothed(y_true, y_pred), y_pred)

    def forward_logits(self, y_true, logits):
        return L.softmax_cross_entropy(logits, self._smoothed(y_true, logits))

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}

    def check_targets(self, y, out_shape, who):
        y = Loss.check_targets(self, y, out_shape, who)
        _two_axes(out_shape, who, self.name)
        if y.shape != tuple(out_shape):
            raise ValueError(
                f"{who}: categorical_crossentropy needs one-hot targets (N, {out_shape[-1]}), got "
                f"{fmt_shape(y.shape)}; for integer labels use "
                "loss='sparse_categorical_crossentropy' or slidenet.utils.to_categorical(y)."
            )
        return y


class BinaryCrossentropy(Loss):
    """Binary cross-entropy of probabilities (N, 1) (or any shape) with 0/1 targets.

    ``label_smoothing=s`` trains against y (1 - s) + s / 2 (Keras); the fused sigmoid form stays.
    """

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0):
        super().__init__(from_logits)
        self.label_smoothing = _number(label_smoothing, self.name, "label_smoothing", 0, 1)

    def _smoothed(self, y_true, out):
        s = self.label_smoothing
        t = y_true.astype(out.dtype)
        return t * out.dtype.type(1 - s) + out.dtype.type(s / 2) if s else t

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}

    def check_targets(self, y, out_shape, who):
        y = _one_target_per_output(super().check_targets(y, out_shape, who), out_shape, who, self)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{who}: binary targets must lie in [0, 1].")
        return y

    def forward(self, y_true, y_pred):
        y_true = self._smoothed(y_true, y_pred)
        if self.from_logits:
            return L.sigmoid_binary_cross_entropy(y_pred, y_true)
        return L.binary_cross_entropy(y_pred, y_true)

    def forward_logits(self, y_true, logits):
        return L.sigmoid_binary_cross_entropy(logits, self._smoothed(y_true, logits))


class MeanSquaredError(Loss):
    """Mean of (y_pred - y_true)^2."""

    name = "mean_squared_error"

    def check_targets(self, y, out_shape, who):
        y = super().check_targets(y, out_shape, who)
        return _one_target_per_output(y, out_shape, who, self)

    def forward(self, y_true, y_pred):
        return L.mean_squared_error(y_pred, y_true)


class Huber(MeanSquaredError):
    """Huber loss: 0.5 e^2 for errors |e| <= delta, delta (|e| - delta / 2) beyond; the mean over
    every output (Keras' ``Huber(delta=1.0)``, torch's ``huber_loss``)."""

    name = "huber_loss"

    def __init__(self, delta=1.0):
        super().__init__()
        self.delta = _number(delta, "Huber", "delta", 0, low_open=True)

    def forward(self, y_true, y_pred):
        return L.huber(y_pred, y_true, self.delta)

    def get_config(self):
        return {"delta": self.delta}


class KLDivergence(Loss):
    """Kullback-Leibler divergence sum(y log(y / p)) of predicted distributions p (N, K) from
    target distributions y of the same shape, both clipped to [1e-7, 1]; the mean over rows."""

    name = "kl_divergence"

    def __init__(self):
        super().__init__()

    def check_targets(self, y, out_shape, who):
        y = super().check_targets(y, out_shape, who)
        if y.shape != tuple(out_shape):
            raise ValueError(
                f"{who}: kl_divergence needs target distributions shaped like the outputs "
                f"{fmt_shape(out_shape)}, got {fmt_shape(y.shape)}."
            )
        return y

    def forward(self, y_true, y_pred):
        return L.kl_divergence(y_pred, y_true)

    def get_config(self):
        return {}


class CategoricalFocalCrossentropy(CategoricalCrossentropy):
    """Focal cross-entropy (Lin et al. 2017) with one-hot targets (N, K): each class's term
    -y log p is weighed by alpha (1 - p)^gamma, which shrinks the loss of easy examples.

    As Keras' ``CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=False,
    label_smoothing=0.0)``. After a softmax layer (or with from_logits=True) it is computed from
    log_softmax of the logits, stable for any logits.
    """

    name = "categorical_focal_crossentropy"

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
        super().__init__(from_logits, label_smoothing)
        self.alpha = _number(alpha, "CategoricalFocalCrossentropy", "alpha", 0)
        self.gamma = _number(gamma, "CategoricalFocalCrossentropy", "gamma", 0)

    def forward(self, y_true, y_pred):
        if self.from_logits:
            return self.forward_logits(y_true, y_pred)
        t = self._smoothed(y_true, y_pred)
        return L.categorical_focal_crossentropy(y_pred, t, self.alpha, self.gamma)

    def forward_logits(self, y_true, logits):
        t = self._smoothed(y_true, logits)
        return L.softmax_focal_crossentropy(logits, t, self.alpha, self.gamma)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


def _predictions(y_pred, who) -> np.ndarray:
    """Predictions given to a loss function: a non-empty real array (N, ...), float32 at least."""
    y_pred = as_array(y_pred, who, "y_pred")
    if y_pred.dtype.kind not in "biuf":
        raise TypeError(f"{who}: y_pred has dtype {y_pred.dtype}; expected real numbers.")
    if y_pred.ndim == 0 or y_pred.size == 0:
        raise ValueError(
            f"{who}: y_pred {fmt_shape(y_pred.shape)} holds no predictions; give (N, ...) with "
            "N >= 1."
        )
    # float16 cannot hold the clip bound 1 - 1e-7 (it rounds to 1): compute in float32 at least
    return y_pred.astype(np.promote_types(y_pred.dtype, np.float32), copy=False)


def _two_axes(out_shape, who, name):
    if len(out_shape) != 2:
        who = who if who == name else f"{who}: {name}"
        raise ValueError(
            f"{who} needs predictions shaped (N, classes), got {fmt_shape(out_shape)}. "
            "End the model with Flatten() or a global pooling layer and Dense(classes)."
        )


def _one_target_per_output(y, out_shape, who, loss):
    """Targets with one value per model output, reshaped like the outputs (N, ...)."""
    if y.size != int(np.prod(out_shape)):
        raise ValueError(
            f"{who}: {loss.name} needs one target per output: outputs {fmt_shape(out_shape)}, "
            f"got y {fmt_shape(y.shape)}."
        )
    return y.reshape(out_shape)


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "huber_loss": Huber,
    "huber": Huber,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
}


def get(identifier) -> Loss:
    """A loss from a Keras name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        raise unknown_name("loss", identifier, _BY_NAME)
    raise TypeError(f"loss must be a name or a slidenet.losses.Loss, got {identifier!r}.")


def serialize(loss: Loss) -> dict:
    return {"class_name": loss.name, "config": loss.get_config()}


def deserialize(config: dict) -> Loss:
    name = config.get("class_name")
    if name not in _BY_NAME:
        raise unknown_name("loss", str(name), _BY_NAME)
    return _BY_NAME[name](**config.get("config", {}))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-batch mean sparse categorical cross-entropy (functional form)."""
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-batch mean categorical cross-entropy (functional form)."""
    return CategoricalCrossentropy(from_logits, label_smoothing)(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-batch mean binary cross-entropy (functional form)."""
    return BinaryCrossentropy(from_logits, label_smoothing)(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Mean squared error (functional form)."""
    return MeanSquaredError()(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """Mean Huber loss (functional form)."""
    return Huber(delta)(y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """Mean Kullback-Leibler divergence over rows (functional form)."""
    return KLDivergence()(y_true, y_pred)


kld = kl_divergence


def categorical_focal_crossentropy(
    y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0
):
    """Mean focal cross-entropy over rows (functional form)."""
    return CategoricalFocalCrossentropy(alpha, gamma, from_logits, label_smoothing)(y_true, y_pred)

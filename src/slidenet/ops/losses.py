"""Losses as pure functions of (targets, predictions), each with the gradient w.r.t. predictions.

All return the mean over the batch. Cross-entropy of probabilities clips them to [eps, 1 - eps]
(eps = 1e-7, as Keras) so log never sees 0. The fused forms take logits: softmax followed by
cross-entropy has the gradient (softmax(z) - onehot) / N, stable for any logits; the same holds
for the focal cross-entropy (:func:`softmax_focal_crossentropy`). With the compiled kernels
(:mod:`slidenet.ops.kernels`) :func:`softmax_cross_entropy` runs as one pass over the logits
(``slidenet/ops/compiled/losses.py``), the NumPy code below being the reference.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops import kernels

EPS = 1e-7
COMPILED_MAX_CLASSES = 128  # softmax_cross_entropy's kernel runs up to this many classes


def _onehot(labels, k, dtype):
    out = np.zeros((labels.shape[0], k), dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def log_softmax(z):
    """log(softmax(z)) along the last axis without overflow: z - max - log(sum(exp(z - max)))."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits, targets):
    """Fused softmax + cross-entropy. targets: int labels (N,) or one-hot/probabilities (N, K).

    Returns:
        (mean loss, dlogits (N, K)), dlogits = (softmax(logits) - targets) / N.
    """
    n, k = logits.shape
    if kernels.compiled():
        fused = _softmax_cross_entropy_compiled(logits, targets)
        if fused is not None:
            return fused
    logp = log_softmax(logits)
    t = _onehot(targets, k, logits.dtype) if targets.ndim == 1 else targets.astype(logits.dtype)
    loss = -(t * logp).sum() / n
    return float(loss), (np.exp(logp) * t.sum(axis=1, keepdims=True) - t) / n


def _softmax_cross_entropy_compiled(logits, targets):
    """softmax_cross_entropy as one compiled pass, or None where the kernel does not apply
    (other dtypes, empty or mismatched shapes, labels out of range: the NumPy path decides) or
    does not pay: above COMPILED_MAX_CLASSES classes NumPy's vectorised exp wins (the kernel
    takes one scalar exp per entry; measured equal at about 300 classes in float32)."""
    n, k = logits.shape
    if logits.dtype not in (np.float32, np.float64) or not n or not 0 < k <= COMPILED_MAX_CLASSES:
        return None
    from slidenet.ops.compiled import losses as compiled

    logits = np.ascontiguousarray(logits)
    if targets.ndim == 1 and targets.dtype.kind in "iu" and targets.shape == (n,):
        if compiled.bad_label(targets, k) >= 0:
            return None
        loss, grad = compiled.softmax_ce_labels(logits, np.ascontiguousarray(targets))
    elif targets.shape == logits.shape:
        t = np.ascontiguousarray(targets, dtype=logits.dtype)
        loss, grad = compiled.softmax_ce_rows(logits, t)
    else:
        return None
    # rounded to the logits' dtype as on the NumPy path: a float32 loss has float32's digits (so,
    # e.g., an epoch's mean of the same batch losses does not depend on their order)
    return float(logits.dtype.type(loss)), grad


def sigmoid_binary_cross_entropy(logits, targets):
    """Fused sigmoid + binary cross-entropy; returns (mean loss, dlogits = (sigmoid(z) - t) /
    size).
    """
    t = targets.astype(logits.dtype).reshape(logits.shape)
    # log(1 + exp(-|z|)) + max(z, 0) - z t is the stable form of -t log s - (1 - t) log(1 - s)
    loss = np.logaddexp(0, -np.abs(logits)) + np.maximum(logits, 0) - logits * t
    e = np.exp(-np.abs(logits))
    s = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return float(loss.mean()), ((s - t) / logits.size).astype(logits.dtype, copy=False)


def cross_entropy(probs, targets):
    """Cross-entropy of probabilities (N, K) with int labels (N,) or one-hot (N, K).

    Returns (mean loss, dprobs).
    """
    n, k = probs.shape
    t = _onehot(targets, k, probs.dtype) if targets.ndim == 1 else targets.astype(probs.dtype)
    p = np.clip(probs, EPS, 1 - EPS)
    loss = -(t * np.log(p)).sum() / n
    grad = np.where((probs > EPS) & (probs < 1 - EPS), -t / p, 0) / n
    return float(loss), grad.astype(probs.dtype, copy=False)


def binary_cross_entropy(probs, targets):
    """Binary cross-entropy of probabilities with 0/1 targets of the same size; (loss, dprobs)."""
    t = targets.astype(probs.dtype).reshape(probs.shape)
    p = np.clip(probs, EPS, 1 - EPS)
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    grad = np.where((probs > EPS) & (probs < 1 - EPS), (p - t) / (p * (1 - p)), 0) / probs.size
    return float(loss), grad.astype(probs.dtype, copy=False)


def mean_squared_error(pred, targets):
    """Mean of (pred - t)^2 over all elements; returns (loss, dpred)."""
    diff = pred - targets.astype(pred.dtype).reshape(pred.shape)
    return float((diff * diff).mean()), (2 * diff / diff.size).astype(pred.dtype, copy=False)


def smooth_labels(targets, k, label_smoothing, dtype):
    """Targets (int labels (N,) or rows (N, ..., K)) as rows pulled towards uniform:
    t (1 - s) + s / K, as Keras' ``label_smoothing=s`` (s = 0 returns the rows unchanged)."""
    dtype = np.dtype(dtype)
    if targets.ndim == 1:
        t = _onehot(targets, k, dtype)
    else:
        t = targets.astype(dtype)
    if label_smoothing:
        t = t * dtype.type(1 - label_smoothing) + dtype.type(label_smoothing / k)
    return t


def huber(pred, targets, delta=1.0):
    """Huber loss, the mean over all elements of 0.5 e^2 where |e| <= delta, else
    delta (|e| - delta / 2), with e = pred - t. Returns (loss, dpred)."""
    e = pred - targets.astype(pred.dtype).reshape(pred.shape)
    a = np.abs(e)
    quad = a <= delta
    loss = np.where(quad, 0.5 * e * e, delta * a - 0.5 * delta * delta)
    grad = np.where(quad, e, delta * np.sign(e)) / e.size
    return float(loss.mean()), grad.astype(pred.dtype, copy=False)


def kl_divergence(probs, targets):
    """Kullback-Leibler divergence sum(t log(t / p)) over the last axis, averaged over the other
    axes; t and p are clipped to [eps, 1] (Keras). Returns (loss, dprobs)."""
    t = np.clip(targets.astype(probs.dtype).reshape(probs.shape), EPS, 1)
    p = np.clip(probs, EPS, 1)
    rows = probs.size // probs.shape[-1]
    loss = (t * np.log(t / p)).sum() / rows
    grad = np.where((probs >= EPS) & (probs <= 1), -t / p, 0) / rows
    return float(loss), grad.astype(probs.dtype, copy=False)


def categorical_focal_crossentropy(probs, targets, alpha=0.25, gamma=2.0):
    """Focal cross-entropy (Lin et al. 2017) of probabilities (N, K) with rows of targets,
    computed as Keras does: rows normalised to sum 1 and clipped to [eps, 1 - eps], then
    sum_k alpha (1 - p_k)^gamma (-t_k log p_k), averaged over the rows. Returns (loss, dprobs).
    """
    n = probs.size // probs.shape[-1]
    t = targets.astype(probs.dtype)
    s = probs.sum(axis=-1, keepdims=True)
    q = probs / s
    p = np.clip(q, EPS, 1 - EPS)
    logp, w = np.log(p), (1 - p) ** gamma
    loss = (alpha * w * -t * logp).sum() / n
    # d/dp of -alpha t (1-p)^g log p, then through the clip and the normalisation q = probs / s
    dp = alpha * t * (gamma * (1 - p) ** (gamma - 1) * logp - w / p)
    dq = np.where((q >= EPS) & (q <= 1 - EPS), dp, 0)
    grad = (dq - (dq * q).sum(axis=-1, keepdims=True)) / s / n
    return float(loss), grad.astype(probs.dtype, copy=False)


def softmax_focal_crossentropy(logits, targets, alpha=0.25, gamma=2.0):
    """Fused softmax + focal cross-entropy on logits (N, K), stable for any logits: log p from
    log_softmax, no clipping. Returns (loss, dlogits)."""
    n = logits.size // logits.shape[-1]
    t = targets.astype(logits.dtype)
    logp = log_softmax(logits)
    p, one_minus = np.exp(logp), -np.expm1(logp)
    w = one_minus**gamma
    loss = (alpha * w * -t * logp).sum() / n
    # u_k = p_k dL/dp_k = alpha t_k (gamma (1-p)^(gamma-1) p log p - (1-p)^gamma); the first
    # term written as gamma w p (log p / (1 - p)), whose limit at p = 1 is gamma w p (-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(one_minus > 0, logp / one_minus, -1.0)
    u = alpha * t * (gamma * w * p * ratio - w)
    grad = (u - p * u.sum(axis=-1, keepdims=True)) / n
    return float(loss), grad.astype(logits.dtype, copy=False)

"""Losses as pure functions of (targets, predictions), each with the gradient w.r.t. predictions.

All return the mean over the batch. Cross-entropy of probabilities clips them to [eps, 1 - eps]
(eps = 1e-7, as Keras) so log never sees 0. The fused forms take logits: softmax followed by
cross-entropy has the gradient (softmax(z) - onehot) / N, stable for any logits.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


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
    logp = log_softmax(logits)
    t = _onehot(targets, k, logits.dtype) if targets.ndim == 1 else targets.astype(logits.dtype)
    loss = -(t * logp).sum() / n
    return float(loss), (np.exp(logp) * t.sum(axis=1, keepdims=True) - t) / n


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

"""The PyTorch side of the graph-model oracles, and the checks the graph tests share.

:class:`Torch` runs a slidenet layer's math in torch (float64, channels-first, through
tests/torch_oracle.py), with the layer's current weights as leaves in slidenet's own layout, so
``leaf.grad`` compares with ``layer.grads`` directly. A layer used twice gets the same leaves twice:
torch sums its gradient over the calls, as a shared layer must. The torch versions are written from
the textbook definitions (and Keras' conventions: 'same' pads the extra row at the bottom, batch
norm normalises with the biased batch variance), not from slidenet's graph: each case writes its
wiring twice, once per library.

:func:`check_oracle` runs a slidenet model and its torch mirror on the same inputs and weights with
the loss sum(r * outputs) and compares the outputs, every input gradient and every weight gradient
(``model(x)`` then ``model.backward(dy)``); :func:`finite_difference_errors` checks the same
gradients with float64 central differences.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from slidenet import Model, Sequential
from torch_oracle import assert_matches, leaf, to_nchw, to_numpy

#: the largest error relative to max(1, max|reference|) seen per (case, dtype); read by the report
LARGEST: dict[tuple[str, str], float] = {}


def leaf_layers(model) -> list:
    """The layers with math of their own inside ``model``: nested models and composite layers
    (built from other layers in ``call``) are replaced by the layers they are made of."""
    found = []
    for layer in model.layers if isinstance(model, Model | Sequential) else model._sublayers():
        if isinstance(layer, Model | Sequential) or layer._is_composite():
            found += [v for v in leaf_layers(layer) if all(v is not f for f in found)]
        elif all(layer is not f for f in found):
            found.append(layer)
    return found


def randomize(model, seed=0) -> None:
    """Random weights of every scale (the initializers would leave biases at 0, moving stats at
    0 and 1, which hides mistakes)."""
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        new = []
        for name, w in zip(layer.weight_names, layer.weights, strict=True):
            if name == "gamma":
                new.append(1 + 0.3 * rng.standard_normal(w.shape))
            elif name == "moving_variance":
                new.append(rng.uniform(0.5, 1.5, w.shape))
            else:
                new.append(0.5 * rng.standard_normal(w.shape))
        layer.set_weights(new)


def same_pads(n, f, s) -> tuple[int, int]:
    """Keras' 'same': ceil(n / s) outputs; the odd padding row goes after (bottom / right)."""
    total = max((math.ceil(n / s) - 1) * s + f - n, 0)
    return total // 2, total - total // 2


class Torch:
    """slidenet layers' forward passes in torch on channels-first float64 tensors."""

    def __init__(self, training=False):
        self.training = training
        self.params: dict[int, tuple[object, dict]] = {}
        self.moving: list[tuple[object, torch.Tensor, torch.Tensor]] = []

    def weights(self, layer) -> dict:
        if id(layer) not in self.params:
            leaves = {
                n: leaf(w)
                for n, w in zip(layer.weight_names, layer.weights, strict=True)
                if not n.startswith("moving_")
            }
            self.params[id(layer)] = (layer, leaves)
        return self.params[id(layer)][1]

    def __call__(self, layer, t):
        return getattr(self, type(layer).__name__.lower())(layer, t)

    # ----- layers with weights ---------------------------------------------------------------
    def conv2d(self, layer, t):
        p = self.weights(layer)
        (fh, fw), (sh, sw) = layer.kernel_size, layer.strides
        if layer.padding == "same":
            top, bottom = same_pads(t.shape[2], fh, sh)
            left, right = same_pads(t.shape[3], fw, sw)
            t = F.pad(t, (left, right, top, bottom))
        w = p["kernel"].permute(3, 2, 0, 1).contiguous()  # (Fh, Fw, D, K) -> (K, D, Fh, Fw)
        return self.activate(layer, F.conv2d(t, w, p.get("bias"), stride=(sh, sw)))

    def dense(self, layer, t):
        p = self.weights(layer)
        y = t @ p["kernel"]
        return self.activate(layer, y + p["bias"] if "bias" in p else y)

    def batchnormalization(self, layer, t):
        p = self.weights(layer)
        axes = [0, *range(2, t.dim())]
        mean, var = leaf(layer.moving_mean, False), leaf(layer.moving_variance, False)
        if self.training:
            batch_mean, batch_var = t.mean(axes), t.var(axes, unbiased=False)
            m = layer.momentum  # Keras' momentum: the weight of the old value
            self.moving.append(
                (layer, m * mean + (1 - m) * batch_mean.detach(), m * var + (1 - m) * batch_var)
            )
            mean, var = batch_mean, batch_var
        shape = (1, -1, *[1] * (t.dim() - 2))
        x_hat = (t - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + layer.epsilon)
        return x_hat * p["gamma"].reshape(shape) + p["beta"].reshape(shape)

    # ----- layers without weights ------------------------------------------------------------
    def activate(self, layer, t):
        name = getattr(layer, "activation", "linear")
        if name == "relu":
            return F.relu(t)
        if name == "softmax":
            return F.softmax(t, dim=1)
        assert name == "linear", name
        return t

    def relu(self, layer, t):
        return F.relu(t)

    def maxpooling2d(self, layer, t):
        (fh, fw), (sh, sw) = layer.pool_size, layer.strides
        if layer.padding == "same":
            top, bottom = same_pads(t.shape[2], fh, sh)
            left, right = same_pads(t.shape[3], fw, sw)
            t = F.pad(t, (left, right, top, bottom), value=-math.inf)
        return F.max_pool2d(t, (fh, fw), (sh, sw))

    def globalaveragepooling2d(self, layer, t):
        return t.mean((2, 3))

    def flatten(self, layer, t):
        return t.permute(0, 2, 3, 1).reshape(len(t), -1)  # slidenet flattens (H, W, C)

    def add(self, layer, ts):
        return sum(ts[1:], ts[0])

    def subtract(self, layer, ts):
        return ts[0] - ts[1]

    def multiply(self, layer, ts):
        return math.prod(ts[1:], start=ts[0])

    def average(self, layer, ts):
        return sum(ts[1:], ts[0]) / len(ts)

    def maximum(self, layer, ts):
        return torch.stack(ts).amax(0)

    def minimum(self, layer, ts):
        return torch.stack(ts).amin(0)

    def concatenate(self, layer, ts):
        rank = ts[0].dim()
        axis = layer.axis % rank  # in NHWC, counting the batch
        return torch.cat(ts, dim=1 if axis == rank - 1 else axis + 1 if rank > 2 else axis)


def _as_list(v) -> list:
    return list(v) if isinstance(v, list | tuple) else [v]


def _error(ours, ref) -> float:
    ref = np.asarray(ref, np.float64)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return float(np.max(np.abs(np.asarray(ours, np.float64) - ref), initial=0.0)) / scale


def check_oracle(name, model, torch_fn, xs, training=False, seed=1) -> float:
    """Outputs, input gradients, every weight gradient (and, in training, the batch-norm moving
    statistics) of ``model`` against ``torch_fn(Torch, *inputs)`` for loss = sum(r * outputs).

    Returns the largest error relative to max(1, max|reference|) (also kept in LARGEST).
    """
    rng = np.random.default_rng(seed)
    T = Torch(training)
    xts = [to_nchw(x) for x in xs]
    outs_t = _as_list(torch_fn(T, *xts))  # before slidenet runs: training moves the statistics
    rs = [rng.standard_normal(tuple(to_numpy(o, channels_last=True).shape)) for o in outs_t]
    total = sum((o * to_nchw(r, grad=False)).sum() for o, r in zip(outs_t, rs, strict=True))
    total.backward()

    ys = _as_list(model(xs if len(xs) > 1 else xs[0], training=training))
    dt = model.dtype
    dxs = _as_list(model.backward([r.astype(dt) for r in rs] if len(rs) > 1 else rs[0].astype(dt)))
    pairs = [
        (f"output {i}", y, to_numpy(o, True))
        for i, (y, o) in enumerate(zip(ys, outs_t, strict=True))
    ]
    pairs += [
        (f"dx {i}", d, to_numpy(t.grad, True))
        for i, (d, t) in enumerate(zip(dxs, xts, strict=True))
    ]
    seen = set()
    for layer, leaves in T.params.values():
        seen.add(id(layer))
        for wname, t in leaves.items():
            g = layer.grads[list(layer.weight_names).index(wname)]
            assert g is not None, f"{layer.label}: no gradient for {wname}"
            assert g.dtype == dt, f"{layer.label}: {wname} gradient is {g.dtype}, not {dt}"
            pairs.append((f"{layer.name}/{wname}", g, to_numpy(t.grad)))
    for layer, mean, var in T.moving:
        pairs.append((f"{layer.name}/moving_mean", layer.moving_mean, to_numpy(mean)))
        pairs.append((f"{layer.name}/moving_variance", layer.moving_variance, to_numpy(var)))
    weighted = [layer for layer in leaf_layers(model) if layer.weights]
    missed = [layer.label for layer in weighted if id(layer) not in seen]
    assert not missed, f"the torch mirror does not use {missed}"
    for what, ours, ref in pairs:
        assert ours.dtype == dt, f"{what}: {ours.dtype}, expected {dt}"
        assert_matches(ours, ref, f"{name} ({dt.name}): {what}")
    largest = max(_error(ours, ref) for _, ours, ref in pairs)
    key = (name, dt.name)
    LARGEST[key] = max(LARGEST.get(key, 0.0), largest)
    return largest


def finite_difference_errors(model, xs, training=False, eps=1e-6, entries=12, seed=2) -> dict:
    """float64 central differences of L = sum(r * model(x)) against ``model.backward(r)``.

    Checks every input and every weight tensor of every layer (``entries`` random entries of
    each, or all when it has fewer). Returns {tensor: max |analytic - numeric| / max(|a|, |n|)}.
    """
    rng = np.random.default_rng(seed)
    arg = xs if len(xs) > 1 else xs[0]
    rs = [rng.standard_normal(y.shape) for y in _as_list(model(arg, training=training))]

    def loss() -> float:
        ys = _as_list(model(arg, training=training))
        return float(sum(np.sum(r * y) for r, y in zip(rs, ys, strict=True)))

    model(arg, training=training)
    dxs = _as_list(model.backward(rs if len(rs) > 1 else rs[0]))
    tensors = [(f"x{i}", x, d) for i, (x, d) in enumerate(zip(xs, dxs, strict=True))]
    for layer in leaf_layers(model):
        for wname, w, g in zip(layer.weight_names, layer.weights, layer.grads, strict=True):
            if not wname.startswith("moving_"):
                tensors.append((f"{layer.name}/{wname}", w, g.copy()))
    errors = {}
    for what, array, analytic in tensors:
        flat = array.reshape(-1)
        picked = rng.permutation(flat.size)[:entries]
        a, n = [], []
        for i in picked:
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            a.append(analytic.reshape(-1)[i])
            n.append((up - down) / (2 * eps))
        a, n = np.array(a), np.array(n)
        scale = max(np.max(np.abs(a)), np.max(np.abs(n)))
        assert scale > 0, f"{what}: every checked entry has gradient 0 (a dead path: no check)"
        errors[what] = float(np.max(np.abs(a - n)) / scale)
    return errors

"""Recording layer calls on arrays, and replaying them backwards (subclassed models, composites).

No autograd of arithmetic: the tape only records *which layer was called on which arrays*. A
composite layer's ``call`` (or a subclassed model's) runs with a tape active; every layer call made
inside appends an :class:`Entry` (the layer, its input and output arrays, and the per-call state its
backward needs). :func:`replay` walks the entries in reverse: the gradient of each output array goes
through that call's backward, and the input gradients are summed per array (an array fed to two
layers gets both contributions). A layer called several times (shared weights) accumulates its
weight gradients over its calls.

Arrays are matched by identity, so math done between layer calls with NumPy is invisible to the
tape; replay names the layer whose input no recorded call produced.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

_ACTIVE: contextvars.ContextVar[Tape | None] = contextvars.ContextVar("tape", default=None)


@dataclass(eq=False)
class Entry:
    layer: object
    inputs: list  # arrays
    as_list: bool
    output: object  # array, or list of arrays
    state: dict


class Tape:
    """The layer calls made while it was active, in order."""

    def __init__(self, fresh=False):
        self.entries: list[Entry] = []
        self.fresh = fresh  # every call needs fresh buffers (the recorded layer is called again)
        self._called: set[int] = set()

    def seen(self, layer) -> bool:
        """Was ``layer`` called before in this recording (or must every call be fresh)? Marks it."""
        again = self.fresh or id(layer) in self._called
        self._called.add(id(layer))
        return again


def active_tape() -> Tape | None:
    return _ACTIVE.get()


@contextmanager
def recording(tape: Tape | None):
    """Record layer calls into ``tape`` (None: record nothing, e.g. a dry run for shapes)."""
    token = _ACTIVE.set(tape)
    try:
        yield tape
    finally:
        _ACTIVE.reset(token)


def add_grad(grads: dict, key, g) -> None:
    """grads[key] += g, without modifying an array some layer returned (it may be kept)."""
    if g is None:
        return
    old = grads.get(key)
    grads[key] = g if old is None else old + g


class GradAccumulator:
    """Weight gradients summed over every call of each layer (shared layers are called often)."""

    def __init__(self, counts: dict[int, int]):
        self.counts = counts  # id(layer) -> calls in this pass
        self.sums: dict[int, tuple[object, list]] = {}

    def add(self, layer) -> None:
        grads = list(layer.grads)
        key = id(layer)
        if key not in self.sums:
            # a layer called again overwrites .grads (and may reuse its buffers): copy
            copy = self.counts.get(key, 1) > 1
            self.sums[key] = (
                layer,
                [None if g is None or not copy else g.copy() for g in grads] if copy else grads,
            )
            return
        total = self.sums[key][1]
        for i, g in enumerate(grads):
            if g is not None:
                total[i] = g.copy() if total[i] is None else total[i] + g

    def finish(self) -> None:
        for layer, grads in self.sums.values():
            if self.counts.get(id(layer), 1) > 1:
                set_grads(layer, grads)
            else:
                layer.grads = grads


def _parts(layer) -> list:
    """The layers whose grads make up ``layer.grads`` (a model's layers, a composite's
    sub-layers), in that order; [] for a layer with a backward of its own."""
    from slidenet.models.functional import Model
    from slidenet.models.sequential import Sequential

    if isinstance(layer, Model | Sequential):
        return list(layer.layers)
    if layer._is_composite() and not layer._own_weights:
        return layer._sublayers()
    return []


def set_grads(layer, grads) -> None:
    """``layer.grads = grads``, and the same sums into the layers it is built from: a model or
    composite layer called several times has its parts' grads overwritten by each call's
    backward, so after the sum they would hold only the last call's share."""
    layer.grads = grads
    parts = _parts(layer)
    if sum(len(p.weights) for p in parts) != len(grads):
        return
    i = 0
    for part in parts:
        n = len(part.weights)
        set_grads(part, grads[i : i + n])
        i += n


def replay(tape: Tape, inputs, outputs, douts, who: str, from_logits=frozenset()) -> list:
    """Backward through a tape: d(outputs) -> d(inputs); every recorded layer's ``grads`` set.

    ``inputs`` / ``outputs`` are the arrays the recorded function took and returned;
    ``from_logits`` holds the ids of outputs whose gradient is w.r.t. the producer's logits.
    """
    produced = {id(o) for e in tape.entries for o in _as_list(e.output)}
    known = produced | {id(x) for x in inputs}
    for out in outputs:
        if id(out) not in known:
            raise RuntimeError(
                f"{who}: call() returned an array that no slidenet layer produced (it was "
                "computed with NumPy or Python arithmetic), so there is no backward pass for it. "
                "Use layers for every step (layers.Add, layers.Concatenate, ...), or write a "
                "backward(self, dy) method for this layer (check it with "
                "slidenet.utils.gradcheck)."
            )
    counts: dict[int, int] = {}
    for e in tape.entries:
        counts[id(e.layer)] = counts.get(id(e.layer), 0) + 1
    grads: dict[int, np.ndarray] = {}
    for out, d in zip(outputs, douts, strict=True):
        add_grad(grads, id(out), d)
    acc = GradAccumulator(counts)
    for entry in reversed(tape.entries):
        outs = _as_list(entry.output)
        dys = [grads.pop(id(o), None) for o in outs]
        if all(d is None for d in dys):
            continue  # this call does not reach the outputs
        for x in entry.inputs:
            if id(x) not in known:
                raise RuntimeError(
                    f"{who}: the input of {entry.layer.label} was computed outside slidenet "
                    "layers (NumPy or Python arithmetic in call()), so gradients cannot flow "
                    "through it. Use layers for every step, or write a backward(self, dy) method."
                )
        dys = [np.zeros_like(o) if d is None else d for o, d in zip(outs, dys, strict=True)]
        dy = dys if isinstance(entry.output, list) else dys[0]
        kwargs = {"from_logits": True} if id(entry.output) in from_logits else {}
        dx = entry.layer.backward_with_cache(dy, entry.state, **kwargs)
        acc.add(entry.layer)
        for x, g in zip(entry.inputs, dx if entry.as_list else [dx], strict=True):
            add_grad(grads, id(x), g)
    acc.finish()
    return [grads.get(id(x)) for x in inputs]


def as_outputs(y) -> list:
    """What a call() returned as a list of arrays: one, a list / tuple, or a dict's values."""
    if isinstance(y, dict):
        return list(y.values())
    return list(y) if isinstance(y, list | tuple) else [y]


def _as_list(v) -> list:
    return list(v) if isinstance(v, list | tuple) else [v]

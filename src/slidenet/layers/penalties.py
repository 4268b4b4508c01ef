"""Regularizers and constraints on a layer's weights (``kernel_regularizer=``, ...).

Mixed into :class:`slidenet.layers.base.Layer`: any ``<prefix>_regularizer`` or
``<prefix>_constraint`` keyword names the weight ``<prefix>`` (or ``<prefix>_kernel``, as
depthwise / pointwise); the
training loop adds the penalties to the loss and their gradients to the weights' gradients
(slidenet.models.training), and applies the constraints after each optimizer step.
"""

from __future__ import annotations

import numpy as np

SUFFIXES = ("_regularizer", "_constraint")


class PenaltyMixin:
    def trained_mask(self) -> list[bool]:
        """Which of ``weights`` the optimizer updates: not statistics such as batch norm's
        ``moving_*`` or Normalization's ``mean``/``variance`` (``untrained_weights``); nothing
        of a layer with ``trainable=False``."""
        if not self.trainable:
            return [False] * len(self.weights)
        if self._is_composite() and not self._own_weights:
            return [t for layer in self._sublayers() for t in layer.trained_mask()]
        return [
            not (n.rpartition("/")[2].startswith("moving_") or n in self.untrained_weights)
            for n in self.weight_names
        ]

    def _set_penalties(self, given: dict) -> None:
        """``kernel_regularizer=...``, ``bias_constraint=...`` & co. (any weight prefix)."""
        from slidenet import constraints, regularizers

        self.regularizers, self.constraints = {}, {}
        for key, value in given.items():
            if key == "activity_regularizer":
                if value is not None:
                    raise ValueError(
                        f"{self.label}: activity_regularizer is not supported; regularize the "
                        "weights (kernel_regularizer=...) instead."
                    )
                continue
            prefix, _, kind = key.rpartition("_")
            if kind == "regularizer" and value is not None:
                self.regularizers[prefix] = regularizers.get(value)
            elif kind == "constraint" and value is not None:
                self.constraints[prefix] = constraints.get(value)

    def _weight_named(self, prefix: str):
        names = list(self.weight_names)
        for name in (prefix, f"{prefix}_kernel"):
            if name in names:
                return self.weights[names.index(name)]
        raise ValueError(
            f"{self.label} was given {prefix}_regularizer/{prefix}_constraint but has no weight "
            f"'{prefix}'; its weights are {', '.join(names) or 'none'}."
        )

    def regularized_weights(self) -> list[tuple[np.ndarray, object]]:
        """(weight array, regularizer) pairs of this layer (built), for the training loop."""
        if not self.built or not self.trainable:
            return []
        return [(self._weight_named(p), reg) for p, reg in self.regularizers.items()]

    def constrained_weights(self) -> list[tuple[np.ndarray, object]]:
        """(weight array, constraint) pairs: applied after every optimizer step."""
        if not self.built:
            return []
        return [(self._weight_named(p), con) for p, con in self.constraints.items()]

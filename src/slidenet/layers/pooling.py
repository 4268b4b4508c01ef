"""Pooling layers: max / average / sum over windows, and global pooling (see slidenet.ops.pool)."""

from __future__ import annotations

from slidenet._validation import fmt_shape, int_tuple
from slidenet.layers.base import Layer
from slidenet.ops import pool as pool_ops


class _Pooling2D(Layer):
    """Shared body of the 2D pooling layers: (N, H, W, D) -> (N, Ho, Wo, D), no weights.

    Args:
        pool_size: int or (ph, pw). strides: int, pair or None (= pool_size; smaller overlaps).
        padding: 'valid' (drop partial windows) or 'same' (pool them; ceil(H / sh) outputs).
    """

    kind = "max"
    rank = 2

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int_tuple(pool_size, self.rank, f"{self.label}: pool_size")
        self.strides = (
            self.pool_size
            if strides is None
            else int_tuple(strides, self.rank, f"{self.label}: strides")
        )
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{self.label}: padding must be 'valid' or 'same', got {padding!r}.")
        self.padding = padding.lower()

    def _geometry(self, input_shape):
        return pool_ops.pool2d_geometry(
            (1, *input_shape), self.pool_size, self.strides, self.padding, who=self.label
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(input_shape, 3, "(H, W, D)")
        (ho, wo) = self._geometry(input_shape)[3]
        return ho, wo, input_shape[-1]

    def forward(self, x, training=False):
        y, self._cache = pool_ops.pool2d_forward(
            x, self.pool_size, self.strides, self.padding, self.kind
        )
        return y

    def backward(self, dy):
        self.grads = []
        return pool_ops.pool2d_backward(dy, self._cache)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Max of each window: keeps the strongest response, tolerates small shifts."""

    kind = "max"


class AveragePooling2D(_Pooling2D):
    """Mean of each window ('same' partial windows: mean of their real elements)."""

    kind = "avg"


class SumPooling2D(_Pooling2D):
    """Sum of each window (the lectures' third pooling)."""

    kind = "sum"


class _Pooling1D(_Pooling2D):
    """(N, L, D) -> (N, Lo, D)."""

    rank = 1

    def _geometry(self, input_shape):
        return pool_ops.pool2d_geometry(
            (1, 1, *input_shape),
            (1, *self.pool_size),
            (1, *self.strides),
            self.padding,
            who=self.label,
        )

    def compute_output_shape(self, input_shape):
        self._expect_rank(input_shape, 2, "(L, D)")
        try:
            lo = self._geometry(input_shape)[3][1]
        except ValueError:  # the 2D message would speak of a 1xP window on a 1xL input
            raise ValueError(
                f"{self.label}: pool window {self.pool_size[0]} does not fit input length "
                f"{input_shape[0]} with padding={self.padding!r} (input {fmt_shape(input_shape)}). "
                f"Use padding='same' or pool_size<={input_shape[0]}."
            ) from None
        return lo, input_shape[-1]

    def forward(self, x, training=False):
        y, self._cache = pool_ops.pool1d_forward(
            x, self.pool_size, self.strides, self.padding, self.kind
        )
        return y

    def backward(self, dy):
        self.grads = []
        return pool_ops.pool1d_backward(dy, self._cache)


class MaxPooling1D(_Pooling1D):
    """Max over windows along L."""

    kind = "max"


class AveragePooling1D(_Pooling1D):
    """Mean over windows along L."""

    kind = "avg"


class _GlobalPooling(Layer):
    """Reduce every position of each channel to one number: (N, ..., D) -> (N, D)."""

    kind = "max"
    rank = 2

    def compute_output_shape(self, input_shape):
        layout = "(H, W, D)" if self.rank == 2 else "(L, D)"
        self._expect_rank(input_shape, self.rank + 1, layout)
        return (input_shape[-1],)

    def forward(self, x, training=False):
        y, self._cache = pool_ops.global_pool_forward(x, self.kind)
        return y

    def backward(self, dy):
        self.grads = []
        return pool_ops.global_pool_backward(dy, self._cache)


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over all positions: "is the pattern anywhere?" (N, H, W, D) -> (N, D)."""


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over all positions: (N, H, W, D) -> (N, D)."""

    kind = "avg"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over all positions of a signal: (N, L, D) -> (N, D)."""

    rank = 1


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all positions of a signal: (N, L, D) -> (N, D)."""

    kind, rank = "avg", 1

"""Merge layers: combine a list of tensors into one (Keras' Add, Subtract, Multiply, Average,
Maximum, Minimum, Concatenate) and Keras' lowercase helpers (``add([a, b])`` builds an Add layer
and calls it).

A merge layer is called on a list of batches, ``Add()([a, b])``; ``backward(dy)`` returns a list of
gradients, one per input and in the same order. Called on symbolic tensors (``keras.Input``), it
builds for their shapes and becomes a node of a graph model (``Layer.__call__`` sees to that and to
recording the call inside composite layers). Merge layers have no weights. The math lives in
:mod:`slidenet.ops.merge`; shapes are strict there and here: the elementwise layers need inputs of
the same shape (Keras 3 also broadcasts, slidenet refuses), Concatenate needs the same shape except
on its axis.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import fmt_shape
from slidenet.layers.base import Layer, batch_array, example_shape
from slidenet.ops.merge import (
    add_backward,
    add_forward,
    average_backward,
    average_forward,
    concatenate_backward,
    concatenate_forward,
    describe_shapes,
    maximum_backward,
    maximum_forward,
    minimum_backward,
    minimum_forward,
    multiply_backward,
    multiply_forward,
    subtract_backward,
    subtract_forward,
)


class _MergeCalls:
    """The forward and backward passes shared by every merge layer.

    They live outside the Layer hierarchy on purpose: ``Layer.__init_subclass__`` wraps a
    ``forward``/``backward`` written in a Layer subclass for a single input array (the wrapper reads
    ``x.shape[0]``, and returns dx shaped like that one input). A merge layer takes a list and
    returns a list, so it records the batch size and checks dy itself, with the same messages.
    """

    def forward(self, xs, training=False):
        """xs: list of batches (N, ...) -> y (N, ...); keeps what backward needs."""
        xs = list(xs)
        self._batch = xs[0].shape[0]
        y, self._cache = self._forward_op(xs)
        return y

    def backward(self, dy):
        """dy (N, *output_shape) -> [dx_1, ..., dx_n], each shaped like its input."""
        if getattr(self, "_batch", None) is None:
            raise RuntimeError(
                f"{self.label}: backward() needs a forward pass first; call the layer on a list "
                "of batches."
            )
        dy = np.asarray(dy)
        want = (self._batch, *self._out)
        if dy.dtype.kind not in "biuf" or dy.shape != want:
            raise ValueError(
                f"{self.label}: dy must be shaped like the last output {fmt_shape(want)} with real "
                f"numbers, got {fmt_shape(dy.shape)} of dtype {dy.dtype}."
            )
        if dy.dtype.kind != "f":
            dy = dy.astype(self.dtype)
        self.grads = []
        if self._batch == 0:  # an empty batch: nothing flowed forward, nothing flows back
            return [np.zeros((0, *shape), dy.dtype) for shape in self._in]
        return self._backward_op(dy, self._cache)


class _Merge(_MergeCalls, Layer):
    """Base of the merge layers: a list of n inputs (``n_inputs`` exactly, or at least 2)."""

    n_inputs: int | None = None  # None: any number >= 2
    weight_names = ()

    def __init_subclass__(cls, **kwargs):
        """Keep a forward/backward written in a merge subclass as written (see _MergeCalls)."""
        own = {n: cls.__dict__[n] for n in ("forward", "backward") if n in cls.__dict__}
        super().__init_subclass__(**kwargs)
        for name, method in own.items():
            setattr(cls, name, method)

    # ----- the op pair, set by each subclass -------------------------------------------------
    def _forward_op(self, xs):
        raise NotImplementedError

    def _backward_op(self, dy, cache):
        raise NotImplementedError

    # ----- shapes -----------------------------------------------------------------------------
    @property
    def input_shape(self):
        """A list of (None, ...) shapes, one per input (Keras)."""
        return None if self._in is None else [(None, *shape) for shape in self._in]

    def _check_count(self, n: int) -> None:
        if self.n_inputs is not None and n != self.n_inputs:
            raise ValueError(f"{self.label} needs exactly {self.n_inputs} inputs, got {n}.")
        if n < 2:
            raise ValueError(f"{self.label} needs a list of at least 2 inputs, got {n}.")

    def _example_shapes(self, input_shapes) -> tuple[tuple[int, ...], ...]:
        """``input_shapes`` (one example's shape per input) as a tuple of tuples, checked."""
        single = isinstance(input_shapes, list | tuple) and any(
            s is None or isinstance(s, int | np.integer) for s in input_shapes
        )
        if not isinstance(input_shapes, list | tuple) or single:
            raise TypeError(
                f"{self.label} needs a list of input shapes, one per input and without the batch "
                f"axis, e.g. [(4, 4, 8), (4, 4, 8)], got {input_shapes!r}."
            )
        self._check_count(len(input_shapes))
        return tuple(
            example_shape(shape, f"{self.label}: input shape {i}")
            for i, shape in enumerate(input_shapes)
        )

    def compute_output_shape(self, input_shapes) -> tuple:
        """One output example's shape for a list of input example shapes (no batch axis)."""
        shapes = self._example_shapes(input_shapes)
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(
                f"{self.label}: inputs must have the same shape, got {describe_shapes(shapes)}."
            )
        return shapes[0]

    def build(self, input_shapes) -> None:
        """Check the inputs fit together (``input_shapes``: one example's shape per input)."""
        shapes = self._example_shapes(input_shapes)
        self._out = tuple(self.compute_output_shape(shapes))
        self._in = shapes
        self.built = True

    # ----- running ----------------------------------------------------------------------------
    def symbolic_output_shapes(self, input_shapes):
        """Build for a list of symbolic tensors' example shapes (or check it was built for them)
        and return the output example's shape; the graph builder calls it."""
        shapes = self._example_shapes(input_shapes)
        if not self.built:
            self.build(shapes)
        elif shapes != self._in:
            raise ValueError(
                f"{self.label} was built for inputs {describe_shapes(self.input_shape)} but is "
                f"called on tensors of shapes {describe_shapes([(None, *s) for s in shapes])}. A "
                "layer called several times needs the same input shapes every time."
            )
        return self._out

    def _eager_call(self, xs, training=False):
        """``layer(xs)`` on arrays (Layer.__call__ sends symbolic tensors to the graph builder and
        records the call when a tape is active): check, build, cast, run forward."""
        if not isinstance(xs, list | tuple):
            raise TypeError(
                f"{self.label} is called on a list of batches, e.g. "
                f"{type(self).__name__}()([a, b]), got {type(xs).__name__}."
            )
        self._check_count(len(xs))
        xs = [batch_array(x, f"{self.label} (input {i})") for i, x in enumerate(xs)]
        if any(x.shape[0] != xs[0].shape[0] for x in xs):
            raise ValueError(
                f"{self.label}: inputs must have the same batch size, got "
                f"{describe_shapes([x.shape for x in xs])}."
            )
        shapes = tuple(tuple(x.shape[1:]) for x in xs)
        if not self.built:
            self.build(shapes)
        elif shapes != self._in:
            raise ValueError(
                f"{self.label} was built for inputs {describe_shapes(self.input_shape)} but got "
                f"{describe_shapes([x.shape for x in xs])}."
            )
        xs = [x if x.dtype == self.dtype else x.astype(self.dtype) for x in xs]
        if xs[0].shape[0] == 0:  # a batch of 0 examples gives 0 outputs, as in Keras
            self._batch, self._cache = 0, None
            return np.zeros((0, *self._out), self.dtype)
        return self.forward(xs, training)


class Add(_Merge):
    """y = x_1 + ... + x_n; every dx_i = dy. Inputs of one shape (N, ...) -> (N, ...)."""

    _forward_op = staticmethod(add_forward)
    _backward_op = staticmethod(add_backward)


class Subtract(_Merge):
    """y = x_1 - x_2 (exactly two inputs); dx_1 = dy, dx_2 = -dy."""

    n_inputs = 2
    _forward_op = staticmethod(subtract_forward)
    _backward_op = staticmethod(subtract_backward)


class Multiply(_Merge):
    """y = x_1 * ... * x_n elementwise; dx_i = dy * the product of the other inputs."""

    _forward_op = staticmethod(multiply_forward)
    _backward_op = staticmethod(multiply_backward)


class Average(_Merge):
    """y = (x_1 + ... + x_n) / n; every dx_i = dy / n."""

    _forward_op = staticmethod(average_forward)
    _backward_op = staticmethod(average_backward)


class Maximum(_Merge):
    """y = max(x_1, ..., x_n) elementwise; dy goes to the input holding the maximum.

    Ties send the whole gradient to the first input holding the maximum (as TensorFlow does; Keras
    on PyTorch or JAX splits a tie evenly): see :func:`slidenet.ops.merge.maximum_backward`.
    """

    _forward_op = staticmethod(maximum_forward)
    _backward_op = staticmethod(maximum_backward)


class Minimum(_Merge):
    """y = min(x_1, ..., x_n) elementwise; dy goes to the (first) input holding the minimum."""

    _forward_op = staticmethod(minimum_forward)
    _backward_op = staticmethod(minimum_backward)


class Concatenate(_Merge):
    """Join the inputs along ``axis`` (default -1, the channels in NHWC): (N, 4, 4, 8) and
    (N, 4, 4, 3) -> (N, 4, 4, 11). ``axis`` counts the batch axis, as in Keras: axis=1 is the first
    axis of an example, axis=0 (the batch) is refused. Backward cuts dy back into the pieces.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or axis == 0:
            raise ValueError(
                f"{self.label}: axis must be a non-zero int (axis 0 is the batch; -1 is the last "
                f"axis), got {axis!r}."
            )
        self.axis = int(axis)

    def compute_output_shape(self, input_shapes) -> tuple:
        shapes = self._example_shapes(input_shapes)
        mismatch = ValueError(
            f"{self.label}: all inputs must match except on axis {self.axis}, got "
            f"{describe_shapes(shapes)}."
        )
        rank = len(shapes[0])  # of one example; the batch makes it rank + 1
        if any(len(shape) != rank for shape in shapes):
            raise mismatch
        if not -rank <= self.axis <= rank:
            raise ValueError(
                f"{self.label}: axis {self.axis} is out of range for inputs "
                f"{fmt_shape(('N', *shapes[0]))} of rank {rank + 1}; use 1..{rank} or "
                f"-{rank}..-1."
            )
        k = self.axis - 1 if self.axis > 0 else rank + self.axis  # the axis within one example
        if any(
            shape[:k] + shape[k + 1 :] != shapes[0][:k] + shapes[0][k + 1 :] for shape in shapes
        ):
            raise mismatch
        return (*shapes[0][:k], sum(shape[k] for shape in shapes), *shapes[0][k + 1 :])

    def _forward_op(self, xs):
        return concatenate_forward(xs, axis=self.axis)

    def _backward_op(self, dy, cache):
        return concatenate_backward(dy, cache)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ----- Keras' functional helpers ------------------------------------------------------------------
def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: the sum of a list of tensors (Keras' ``layers.add``)."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``: x_1 - x_2 (Keras' ``layers.subtract``)."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``: the elementwise product (Keras' ``layers.multiply``)."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``: the elementwise mean (Keras' ``layers.average``)."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``: the elementwise maximum (Keras' ``layers.maximum``)."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``: the elementwise minimum (Keras' ``layers.minimum``)."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``: join along ``axis`` (Keras' ``layers.concatenate``).

    >>> concatenate([np.zeros((2, 3)), np.ones((2, 1))]).shape
    (2, 4)
    """
    return Concatenate(axis=axis, **kwargs)(inputs)

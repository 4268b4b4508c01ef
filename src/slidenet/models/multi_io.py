"""fit / evaluate / predict for models with several inputs or outputs (Model, not Sequential).

Inputs and targets come as one array, a list (in the order of ``model.inputs`` / ``outputs``) or a
dict keyed by the Input names / output names, as in Keras. ``compile(loss=...)`` takes one loss for
every output, a list or a dict, and ``loss_weights``; the loss minimised is the weighted sum.
With several outputs the logs hold "loss" (the weighted sum) and, per output, "<name>_loss" and
"<name>_<metric>" (Keras' names).

Several arrays that share the batch axis travel through the training loop as one :class:`Arrays`:
``len`` and ``[index]`` act on all of them, so fit's loop over batches is the same for one input
or many.
"""

from __future__ import annotations

import numpy as np

from slidenet import losses as losses_mod
from slidenet import metrics as metrics_mod
from slidenet import optimizers as optimizers_mod
from slidenet._validation import as_array, as_float_array, fmt_shape
from slidenet.models import tape
from slidenet.models.training import TrainingMixin, _check_finite


class Arrays:
    """Several arrays with one batch axis: ``len`` and ``[index]`` act on all of them."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return Arrays([a[index] for a in self.arrays])


class MultiIOTraining(TrainingMixin):
    """TrainingMixin for Model: lists and dicts of inputs and targets, one loss per output."""

    def _init_training(self):
        self.optimizer = None
        self.loss = None
        self.losses_per_output = []
        self.loss_weights = []
        self.metric_fns = []
        self._metric_names = []
        self.stop_training = False
        self.history = None
        self.epoch = 0
        self._rng = None
        self._last_states = None

    # ----- compile ---------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None) -> None:
        """Optimizer, loss(es), metrics and loss_weights, as Keras takes them.

        ``loss``: one loss for every output, a list (one per output) or a dict keyed by output
        name. ``loss_weights``: a list or dict of floats (default 1 each). ``metrics``: a list
        applied to every output, or a dict / list of lists per output.
        """
        if loss is None:
            raise ValueError("compile: give a loss, e.g. loss='sparse_categorical_crossentropy'.")
        self.optimizer = optimizers_mod.get(optimizer)
        self._compile_args = (loss, metrics, loss_weights)
        if isinstance(loss, str | losses_mod.Loss):  # known now; the rest waits for the outputs
            self.loss = losses_mod.get(loss)
        if self.built:
            self._resolve_compile()

    def _resolve_compile(self) -> None:
        """Losses, weights and metrics per output (a subclassed model knows its outputs only
        once built)."""
        loss, metrics, loss_weights = self._compile_args
        names = self.output_names
        self.losses_per_output = [losses_mod.get(v) for v in self._per_output(loss, "loss", names)]
        self.loss = self.losses_per_output[0]
        weights = 1.0 if loss_weights is None else loss_weights
        self.loss_weights = [float(w) for w in self._per_output(weights, "loss_weights", names)]
        if metrics is None or isinstance(metrics, str) or callable(metrics):
            metrics = [] if metrics is None else [metrics]
        if isinstance(metrics, dict) or (metrics and isinstance(metrics[0], list | tuple)):
            per = self._per_output(metrics, "metrics", names)
        else:
            per = [list(metrics)] * len(names)
        self._metrics_per_output = [[m] if isinstance(m, str) else list(m or []) for m in per]
        self._metric_names = [m for ms in self._metrics_per_output for m in ms]
        for loss_obj, ms in zip(self.losses_per_output, self._metrics_per_output, strict=True):
            for m in ms:  # fail early on unknown names
                metrics_mod.resolve(m, loss_obj.name, (2,))
        self.metric_fns = []

    def _require_compiled(self, who):
        # a subclassed model compiled with a list or dict of losses resolves them once built
        if self.optimizer is None or getattr(self, "_compile_args", None) is None:
            raise RuntimeError(
                f"{who}: compile the model first, e.g. model.compile('adam', loss=...)."
            )

    def _per_output(self, value, what, names) -> list:
        """One value per output from a single value, a list or a dict keyed by output name."""
        if isinstance(value, dict):
            unknown = [k for k in value if k not in names]
            if unknown:
                raise ValueError(
                    f"compile: {what} has key(s) {unknown} that are not outputs of model "
                    f"'{self.name}'; its outputs are {names}."
                )
            return [value.get(n) for n in names]
        if isinstance(value, list | tuple):
            if len(value) != len(names):
                raise ValueError(
                    f"compile: {what} is a list of {len(value)} but model '{self.name}' has "
                    f"{len(names)} output(s) {names}."
                )
            return list(value)
        return [value] * len(names)

    def _resolve_metrics(self):
        shapes = self._output_shapes()
        self.metric_fns = metrics_mod.distinct(  # a Metric object listed twice: a copy each
            [
                [metrics_mod.resolve(m, loss.name, shape) for m in ms]
                for loss, ms, shape in zip(
                    self.losses_per_output, self._metrics_per_output, shapes, strict=True
                )
            ]
        )

    # ----- data ------------------------------------------------------------------------------
    def _split_inputs(self, x, who, cast=True, lazy=False) -> list:
        """x (array, list or dict) -> one checked array per model input, in order."""
        n = self._n_inputs()
        names = getattr(self, "_input_names", None) or [f"input_{i + 1}" for i in range(n)]
        if isinstance(x, Arrays):  # fit's validation_split cut these from checked inputs
            x = x.arrays
        if isinstance(x, dict):
            missing = [k for k in names if k not in x]
            extra = [k for k in x if k not in names]
            if missing or extra:
                raise ValueError(
                    f"{who}: x is a dict with keys {sorted(map(str, x))} but model '{self.name}' "
                    f"takes inputs {names}"
                    + (f"; missing {missing}" if missing else "")
                    + (f"; unknown {extra}" if extra else "")
                    + "."
                )
            xs = [x[k] for k in names]
        elif isinstance(x, list | tuple) and (
            n > 1 or (len(x) == 1 and isinstance(x[0], np.ndarray))
        ):
            if len(x) != n:
                raise ValueError(
                    f"{who}: got {len(x)} input arrays but model '{self.name}' takes {n} "
                    f"({', '.join(names)})."
                )
            xs = list(x)
        else:
            if n > 1:
                raise ValueError(
                    f"{who}: model '{self.name}' takes {n} inputs ({', '.join(names)}); pass a "
                    "list of arrays or a dict keyed by input name, got one array."
                )
            xs = [x]
        shapes = self._in if isinstance(self._in, list) else [self._in]
        out = []
        for i, (v, want, name) in enumerate(zip(xs, shapes, names, strict=True)):
            what = f"x['{name}']" if n > 1 else "x"
            if lazy and isinstance(v, np.ndarray) and v.ndim > 0:
                as_float_array(v[:0], who, what)
                _check_finite(v, who)
            else:
                v = as_float_array(v, who, what)
            if v.shape[1:] != want and v.ndim == len(want) and want[-1] == 1:
                if v.shape[1:] == want[:-1]:
                    v = v[..., None]
            if v.shape[1:] != tuple(want):
                raise ValueError(
                    f"{who}: {what} has shape {fmt_shape(v.shape)} but model '{self.name}' "
                    f"expects {fmt_shape((None, *want))}."
                )
            if i and len(v) != len(out[0]):
                raise ValueError(
                    f"{who}: the inputs have different numbers of examples "
                    f"({', '.join(str(len(a)) for a in [*out, v])})."
                )
            out.append(v if lazy or not cast else v.astype(self.dtype, copy=False))
        return out

    def _prepare_x(self, x, who, lazy=False, empty_ok=False):
        if not self.built:
            first = x[0] if isinstance(x, list | tuple) and len(x) else x
            if isinstance(x, dict):
                raise ValueError(f"{who}: build model '{self.name}' before passing a dict.")
            several = isinstance(x, list | tuple) and isinstance(first, np.ndarray)
            shapes = [np.shape(v)[1:] for v in x] if several else np.shape(x)[1:]
            self.build(shapes)
        xs = self._split_inputs(x, who, cast=not lazy, lazy=lazy)
        if len(xs[0]) == 0 and not empty_ok:
            raise ValueError(f"{who}: x is empty; nothing to do.")
        return xs[0] if len(xs) == 1 else Arrays(xs)

    def _batch(self, x, index):
        if isinstance(x, Arrays):
            return [np.asarray(a[index], dtype=self.dtype) for a in x.arrays]
        return np.asarray(x[index], dtype=self.dtype)

    def _split_targets(self, y, who) -> list:
        names = self.output_names
        if isinstance(y, Arrays):  # fit's validation_split cut these from checked targets
            return list(y.arrays)
        if isinstance(y, dict):
            missing = [k for k in names if k not in y]
            extra = [k for k in y if k not in names]
            if missing or extra:
                raise ValueError(
                    f"{who}: y is a dict"
                    + (f" without key(s) {missing}" if missing else "")
                    + (" and" if missing and extra else "")
                    + (f" with unknown key(s) {extra}" if extra else "")
                    + f"; model '{self.name}' has outputs {names}."
                )
            return [y[k] for k in names]
        if len(names) == 1 and isinstance(y, list | tuple) and len(y) == 1:
            if isinstance(y[0], np.ndarray):  # [y] for a model with one output, as in Keras
                return [y[0]]
        if len(names) > 1:
            if not isinstance(y, list | tuple) or len(y) != len(names):
                got = f"a list of {len(y)}" if isinstance(y, list | tuple) else "one array"
                raise ValueError(
                    f"{who}: model '{self.name}' has {len(names)} outputs {names}; give y as a "
                    f"list of {len(names)} arrays or a dict keyed by output name, got {got}."
                )
            return list(y)
        return [y]

    def _prepare_xy(self, x, y, who, lazy=False):
        x = self._prepare_x(x, who, lazy)
        if not self.losses_per_output:
            self._resolve_compile()
        if y is None:
            raise ValueError(f"{who}: y (the targets) is missing.")
        ys = []
        shapes = self._output_shapes()
        for name, v, loss, shape in zip(
            self.output_names,
            self._split_targets(y, who),
            self.losses_per_output,
            shapes,
            strict=True,
        ):
            v = as_array(v, who, "y")
            label = f"y['{name}']" if len(shapes) > 1 else "y"
            if v.ndim == 0 or len(v) != len(x):
                raise ValueError(
                    f"{who}: x has {len(x)} examples but {label} has "
                    f"{len(v) if v.ndim else 'no'} (shape {fmt_shape(v.shape)}); they must match."
                )
            ys.append(loss.check_targets(v, (len(x), *shape), f"{who} ({label})"))
        if not self.metric_fns and self._metric_names:
            self._resolve_metrics()
        return x, (ys[0] if len(ys) == 1 else Arrays(ys))

    # ----- one batch -------------------------------------------------------------------------
    def _forward(self, x, training):
        if isinstance(x, Arrays):  # train_on_batch / test_on_batch: the checked inputs whole
            x = [np.asarray(a, dtype=self.dtype) for a in x.arrays]
        xs = x if isinstance(x, list) else [x]
        with (
            np.errstate(over="ignore", invalid="ignore", divide="ignore")
            if not training
            else (_nothing())
        ):
            if self._functional:
                outs, self._last_states = self._run_graph(xs, training)
            else:
                with tape.recording(tape.Tape()) as recorded:
                    y = self._run_call(xs if self._input_struct == "list" else xs[0], training)
                outs = tape.as_outputs(y)
                self._last_states = {"tape": recorded, "xs": xs, "outs": outs}
        if not training:
            for name, out in zip(self.output_names, outs, strict=True):
                if not np.isfinite(out).all():
                    raise FloatingPointError(
                        f"Model '{self.name}': output '{name}' holds NaN or Inf although the "
                        f"input is finite: values overflowed {self.dtype}. Scale the inputs "
                        "(e.g. x / 255) or check the weights."
                    )
        return outs[0] if len(outs) == 1 else outs

    def _producers(self) -> list:
        """Per output: (layer, per-call state) of the call that made it, or None."""
        if self._functional:
            index = {id(n): i for i, n in enumerate(self._nodes)}
            found = []
            for t in self._outputs:
                node = t.node
                alone = (
                    self._consumers.get(id(t), 0) == 0
                    and not node.outputs_as_list
                    and sum(o is t for o in self._outputs) == 1  # one loss's gradient each
                )
                i = index.get(id(node))
                found.append(
                    (node.layer, self._last_states[i]) if alone and i is not None else None
                )
            return found
        entries = {id(e.output): e for e in self._last_states["tape"].entries}
        used = {id(x) for e in self._last_states["tape"].entries for x in e.inputs}
        outs = self._last_states["outs"]
        return [
            (entries[id(o)].layer, entries[id(o)].state)
            if id(o) in entries and id(o) not in used and sum(v is o for v in outs) == 1
            else None
            for o in outs
        ]

    def _loss_and_grad(self, out, y):
        outs = out if isinstance(out, list) else [out]
        ys = y.arrays if isinstance(y, Arrays) else [y]
        total, grads, fused_any, parts = 0.0, [], [], []
        producers = self._producers()
        for i, (loss, w, o, t) in enumerate(
            zip(self.losses_per_output, self.loss_weights, outs, ys, strict=True)
        ):
            made = producers[i]
            fused = (
                made is not None
                and not loss.from_logits
                and loss.fused_activation is not None
                and getattr(made[0], "activation", None) == loss.fused_activation
                and made[1].get("logits") is not None
            )
            if fused:
                value, g = loss.forward_logits(t, made[1]["logits"])
                fused_any.append(i)
            else:
                value, g = loss.forward(t, o)
            total += w * value
            parts.append(value)
            grads.append(g if w == 1.0 else g * np.asarray(w, g.dtype))
        self._output_losses = parts
        return total, (grads[0] if len(grads) == 1 else grads), fused_any

    def _backward(self, grad, fused, need_dx=True):
        douts = grad if isinstance(grad, list) else [grad]
        if self._functional:
            return self._backward_graph(douts, self._last_states, fused, need_dx)
        for layer in self._sublayers():
            layer.grads = [None] * len(layer.weights)
        s = self._last_states
        fused_ids = {id(s["outs"][i]) for i in fused}
        return tape.replay(s["tape"], s["xs"], s["outs"], douts, self.label, fused_ids)

    def _metric_values(self, y, out):
        outs = out if isinstance(out, list) else [out]
        ys = y.arrays if isinstance(y, Arrays) else [y]
        if not self.metric_fns and self._metric_names:
            self._resolve_metrics()
        fns = self.metric_fns or [[] for _ in outs]
        if len(outs) == 1:
            return {name: metrics_mod.batch_value(fn, ys[0], outs[0]) for name, fn in fns[0]}
        logs = {}
        for i, (name, o, t) in enumerate(zip(self.output_names, outs, ys, strict=True)):
            part = getattr(self, "_output_losses", None)
            if part is not None:
                logs[f"{name}_loss"] = part[i]
            for metric, fn in fns[i]:
                logs[f"{name}_{metric}"] = metrics_mod.batch_value(fn, t, o)
        return logs

    def _result(self, loss, metrics):
        return [loss, *map(metrics_mod.log_value, metrics.values())] if metrics else loss

    def _largest_fast_chunk(self) -> int:
        from slidenet.models.training import PREDICT_CHUNK_BYTES

        sizes = [int(np.prod(s)) for s in self._output_shapes()]
        for layer in self.layers:
            out = layer._out
            if isinstance(out, tuple) and all(isinstance(v, int) for v in out):
                sizes.append(int(np.prod(out)))
        per_example = max(sizes, default=1) * self.dtype.itemsize
        return max(16, PREDICT_CHUNK_BYTES // max(per_example, 1))

    def predict_on_batch(self, x):
        """Outputs for one batch in inference mode (a dict for dict outputs, as predict)."""
        out = super().predict_on_batch(x)
        if getattr(self, "_output_struct", "single") == "dict":
            return dict(zip(self.output_names, out, strict=True))
        return out

    def predict(self, x, batch_size=32, verbose=0, steps=None):
        """Outputs for x in inference mode (a list of arrays for several outputs, a dict when
        the model's outputs were given as a dict), computed in chunks of ``batch_size``."""
        from slidenet.models import data_adapter

        if data_adapter.is_batch_data(x):
            return data_adapter.predict_batches(self, x, steps)
        from slidenet.models.training import _check_batch_size

        batch_size = _check_batch_size(batch_size, "predict")
        x = self._prepare_x(x, "predict", lazy=True, empty_ok=True)  # builds a subclass
        batch_size = min(batch_size, self._largest_fast_chunk())
        chunks = []
        for start in range(0, max(len(x), 1), batch_size):
            out = self._forward(self._batch(x, slice(start, start + batch_size)), training=False)
            chunks.append(out if isinstance(out, list) else [out])
        outs = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
        if getattr(self, "_output_struct", "single") == "dict":
            return dict(zip(self.output_names, outs, strict=True))
        return outs if len(outs) > 1 else outs[0]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

"""Model files: one zip holding JSON and .npy arrays; no pickle, written atomically.

Layout of the zip::

    slidenet.json          format name and version, architecture, compile settings, training state
    weights/0000.npy ...   every layer's weights, in model.get_weights() order
    optimizer/0000.npy ... optimizer state (e.g. Adam's m and v), in optimizer.variables() order

The file is written to a temporary name in the same folder, flushed to disk, and moved into place
with ``os.replace``: a crash leaves either the old file or the new one, never half of one.

Reading treats the file as untrusted bytes. Before anything is allocated or parsed, every zip member
is checked: at most ``MAX_MEMBERS`` members, names without absolute paths, ``..``, backslashes or
duplicates, no encryption, stored or deflated only, at most ``MAX_ARRAY_BYTES`` per member and
``MAX_TOTAL_BYTES`` in all (zip bombs). Each ``.npy`` header is read by itself first: an object
dtype (which would need unpickling), a non-numeric dtype, or a declared shape over
``MAX_ARRAY_BYTES`` or larger than the data the member holds is refused; only then is the array
read, with ``np.load(..., allow_pickle=False)``. So a file can hold data but never code.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from slidenet import losses as losses_mod
from slidenet import optimizers as optimizers_mod
from slidenet.models import file_checks
from slidenet.models.file_checks import (  # noqa: F401 - re-exported, part of this module's API
    MAX_ARRAY_BYTES,
    MAX_JSON_BYTES,
    MAX_MEMBERS,
    MAX_TOTAL_BYTES,
    ModelFileError,
    _check_members,
    _gib,
    _name_problem,
    _read_array,
    _read_member,
    check_npy_header,
)
from slidenet.models.weights_file import refuse_weights_only
from slidenet.utils.files import atomic_write
from slidenet.utils.random import generator_from_state, generator_state

FORMAT = "slidenet-model"
VERSION = 1


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def model_state(model) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """(header dict, weights, optimizer arrays) describing everything a model file holds."""
    history = file_history(model)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.get_config(),
        "compile": None,
        "training": {
            "epoch": model.epoch,
            "rng": None if model._rng is None else generator_state(model._rng),
            "layer_rngs": {
                layer.name: generator_state(layer.rng)
                for layer in model.layers
                if getattr(layer, "rng", None) is not None
            },
            "history": history or None,
        },
    }
    opt_arrays = []
    if model.optimizer is not None and model.loss is not None:
        opt_arrays = model.optimizer.variables()
        header["compile"] = {
            "optimizer": optimizers_mod.serialize(model.optimizer),
            "optimizer_iterations": model.optimizer.iterations,
            "loss": losses_mod.serialize(model.loss),
            "metrics": [m for m in model._metric_names if isinstance(m, str)],
        }
        per_output = getattr(model, "losses_per_output", None) or []
        if len(per_output) > 1:  # a Model with several outputs: one loss, weight, metrics each
            header["compile"]["losses"] = [losses_mod.serialize(v) for v in per_output]
            header["compile"]["loss_weights"] = list(model.loss_weights)
            header["compile"]["output_metrics"] = [
                [m for m in ms if isinstance(m, str)] for ms in model._metrics_per_output
            ]
    return header, model.get_weights(), opt_arrays


def file_history(model) -> dict:
    """Every epoch's logs, for the file: those of earlier fit calls that this one continues
    (``fit(..., initial_epoch=k)`` keeps their first k epochs) followed by this fit's."""
    prior = getattr(model, "_prior_history", None) or {}
    current = model.history.history if model.history is not None else {}
    keys = list(dict.fromkeys([*prior, *current]))
    return {k: [*prior.get(k, []), *current.get(k, [])] for k in keys}


def save_model(model, path, extra_json=None) -> None:
    """Save ``model`` to ``path`` (see the module docstring for the layout).

    ``extra_json`` maps more member names (``NAME.json``) to JSON-serialisable values written in
    the same atomic write (the CLI's run settings, for example).

    Raises:
        ValueError: the model is not built.
        OSError (the subclass of the cause): the file cannot be written, e.g. the folder is
            missing or the disk is full; the message names ``path`` and an existing file there
            is left unchanged.
    """
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built; give it an input shape first.")
    header, weights, opt_arrays = model_state(model)
    header["n_weights"], header["n_optimizer"] = len(weights), len(opt_arrays)
    extra = {name: json.dumps(value, indent=1) for name, value in (extra_json or {}).items()}
    for name in extra:
        if name == "slidenet.json" or not name.endswith(".json") or _name_problem(name):
            raise ValueError(f"save: extra_json member {name!r} must be a plain 'NAME.json'.")

    members = {**extra}
    members.update({f"weights/{i:04d}.npy": _npy_bytes(w) for i, w in enumerate(weights)})
    members.update({f"optimizer/{i:04d}.npy": _npy_bytes(a) for i, a in enumerate(opt_arrays)})
    _write_zip(path, header, members)


def _write_zip(path, header, members) -> None:
    """slidenet.json then ``members`` (name -> bytes or text) into a zip at ``path``, atomically."""

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("slidenet.json", json.dumps(header, indent=1))
            for name, data in members.items():
                zf.writestr(name, data)

    atomic_write(path, write)


# ----- reading untrusted files ----------------------------------------------------------------
def _count(header, key, path, limit=MAX_MEMBERS) -> int:
    """header[key] as an int in [0, limit] (no limit when None), else a ModelFileError."""
    n = header.get(key)
    top = 2**62 if limit is None else limit
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= top:
        raise ModelFileError(
            f"load_model: '{path}': slidenet.json has {key}={n!r}; expected a count from 0 to "
            f"{top}. The file is corrupt."
        )
    return n


def read_model_file(path):
    """(header, weights, optimizer arrays) from a model file, with every part checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_model: no such file: '{path}'.")
    try:
        zf = zipfile.ZipFile(path)
    except PermissionError:
        raise
    except Exception as e:  # any failure to parse the container: not a zip we can read
        raise ModelFileError(
            f"load_model: '{path}' is not a slidenet model file (not a valid zip: {e}); it may be "
            "truncated or corrupt."
        ) from None
    with zf:
        if "slidenet.json" not in zf.NameToInfo:
            raise ModelFileError(f"load_model: '{path}' has no slidenet.json; not a model file.")
        _check_members(zf, path)
        try:
            header = json.loads(_read_member(zf, "slidenet.json", path))
        except (ValueError, RecursionError) as e:
            raise ModelFileError(f"load_model: '{path}': slidenet.json is corrupt ({e}).") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFileError(f"load_model: '{path}' is not a slidenet model file.")
        version = header.get("version")
        if version != VERSION or isinstance(version, bool):
            newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
            raise ModelFileError(
                f"load_model: '{path}' has format version {version!r}; this slidenet reads "
                f"version {VERSION}."
                + (" Upgrade slidenet to read it." if newer else " The file is corrupt.")
            )
        n_weights, n_opt = _count(header, "n_weights", path), _count(header, "n_optimizer", path)
        weights = [_read_array(zf, f"weights/{i:04d}.npy", path) for i in range(n_weights)]
        opt = [_read_array(zf, f"optimizer/{i:04d}.npy", path) for i in range(n_opt)]
    return header, weights, opt


def load_model(path):
    """Rebuild a model saved with ``model.save(path)``: architecture, weights, compile settings,
    optimizer state, epoch counter, random-generator states and history.

    The file is treated as untrusted input (see the module docstring): nothing in it is unpickled
    or executed, and oversized or malformed parts are refused before they are allocated.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError (a ValueError): the file is truncated, corrupt, unsafe or not a model file.
    """
    header, weights, opt_arrays = read_model_file(path)
    where = ["the model description"]  # what _rebuild was reading, for the error message
    try:
        model = _rebuild(header, weights, opt_arrays, path, where)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(
            f"load_model: '{path}' describes a model too large for memory; refused."
        ) from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as e:
        raise ModelFileError(
            f"load_model: '{path}' holds an invalid model description: {where[-1]} is malformed "
            f"({type(e).__name__}: {e})."
        ) from None
    except RecursionError:
        raise ModelFileError(
            f"load_model: '{path}' holds an invalid model description (nested too deeply)."
        ) from None
    return model


def _rebuild(header, weights, opt_arrays, path, where):
    from slidenet.layers import LAYER_CLASSES
    from slidenet.models.sequential import Sequential

    config = header["model"]
    refuse_weights_only(config, path)
    if config.get("class_name") == "Functional":
        from slidenet.models.graph_config import model_from_config

        where.append("the graph of the model description")
        model = model_from_config(config, lambda layer, shape: _check_size(layer, shape, path))
        return _restore(model, header, weights, opt_arrays, path, where)
    model = Sequential(name=config["name"])
    if config.get("input_shape") is not None:
        model._input_shape = tuple(int(s) for s in config["input_shape"])
    for i, spec in enumerate(config["layers"]):
        where.append(f"layer {i} of the model description")
        cls = LAYER_CLASSES.get(spec["class_name"])
        if cls is None:
            raise ModelFileError(
                f"load_model: '{path}' uses layer type {spec['class_name']!r}, unknown here."
            )
        where.append(f"the config of layer {i} ({spec['class_name']})")
        layer = cls.from_config(spec["config"])
        if layer.dtype.kind != "f":
            raise ModelFileError(
                f"load_model: '{path}': layer {layer.name!r} has dtype {layer.dtype}; layers "
                "compute in float16, float32 or float64."
            )
        if not model.layers and model._input_shape is None:
            shape = layer.input_shape_arg
        else:
            shape = model._shape_after(model.layers)
        _check_size(layer, shape, path)
        model.add(layer)
    model.build()
    return _restore(model, header, weights, opt_arrays, path, where)


def _restore(model, header, weights, opt_arrays, path, where):
    """Weights, training state and compile settings into a rebuilt model."""
    shapes = [w.shape for w in model.weights]
    if shapes != [w.shape for w in weights]:
        raise ModelFileError(
            f"load_model: '{path}': the architecture needs weights shaped {shapes[:8]}"
            f"{'...' if len(shapes) > 8 else ''} but the file holds "
            f"{[w.shape for w in weights][:8]}; the file is corrupt."
        )
    with np.errstate(over="ignore", under="ignore"):  # checked just below
        model.set_weights(weights)
    _check_finite(model.weights, "a weight", path)
    where.append("the training state (epoch, random generators, history)")
    training = header["training"]
    model.epoch = _count(training, "epoch", path, limit=None)
    if training["rng"] is not None:
        model._rng = generator_from_state(training["rng"])
    for layer in model.layers:
        state = training["layer_rngs"].get(layer.name)
        if state is not None:
            layer.rng = generator_from_state(state)
    if training.get("history"):
        from slidenet.callbacks import History

        model.history = History()
        model.history.history = {k: list(v) for k, v in dict(training["history"]).items()}
    where.append("the compile settings (optimizer, loss, metrics)")
    comp = header["compile"]
    if comp is not None:
        if comp.get("losses"):
            model.compile(
                optimizers_mod.deserialize(comp["optimizer"]),
                [losses_mod.deserialize(v) for v in comp["losses"]],
                [list(ms) for ms in comp["output_metrics"]],
                loss_weights=[float(w) for w in comp["loss_weights"]],
            )
        else:
            model.compile(
                optimizers_mod.deserialize(comp["optimizer"]),
                losses_mod.deserialize(comp["loss"]),
                comp["metrics"],
            )
        _check_hyperparameters(model.optimizer, path)
        model.optimizer.iterations = _count(comp, "optimizer_iterations", path, limit=None)
        trained = [
            w
            for layer in model.layers
            for w, g in zip(layer.weights, _trainable_mask(layer), strict=True)
            if g
        ]
        wanted = [w.shape for w in trained] * len(model.optimizer.slot_names)
        if opt_arrays and [a.shape for a in opt_arrays] != wanted:
            raise ModelFileError(
                f"load_model: '{path}': the optimizer state holds arrays shaped "
                f"{[a.shape for a in opt_arrays][:8]} but {type(model.optimizer).__name__} needs "
                f"{wanted[:8]} for this model; the file is corrupt."
            )
        dtypes = [w.dtype for w in trained] * len(model.optimizer.slot_names)
        if opt_arrays:  # none before the first step
            with np.errstate(over="ignore", under="ignore"):  # checked just below
                opt_arrays = [np.array(a, dtype=d) for a, d in zip(opt_arrays, dtypes, strict=True)]
            _check_finite(opt_arrays, "the optimizer state", path)
        model.optimizer.set_variables(opt_arrays, len(trained))
    return model


def _check_finite(arrays, what, path) -> None:
    """Refuse NaN or infinite values (also float64 values too large for a float32 layer)."""
    for array in arrays:
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelFileError(
                f"load_model: '{path}': {what} array of shape {array.shape} holds NaN or infinite "
                "values (or values too large for the layer's dtype); the file is corrupt."
            )


#: Optimizer settings a file may hold, and their valid ranges (lower, upper, upper included).
_HYPER_RANGES = {
    "beta_1": (0.0, 1.0, False),
    "beta_2": (0.0, 1.0, False),
    "rho": (0.0, 1.0, False),
    "momentum": (0.0, 1.0, True),
}


def _check_hyperparameters(optimizer, path) -> None:
    """Refuse settings no one could have trained with (beta_1=1 divides by zero in Adam)."""
    for key, value in optimizer.get_config().items():
        bad = isinstance(value, float) and not math.isfinite(value)
        if key in _HYPER_RANGES:
            low, high, closed = _HYPER_RANGES[key]
            if key == "beta_1" and type(optimizer).__name__ == "Lion":
                closed = True  # Lion's beta_1 = 1 is allowed (Keras)
            bad = bad or not (low <= value < high or (closed and value == high))
        elif key == "epsilon":
            bad = bad or not value > 0
        if bad:
            raise ModelFileError(
                f"load_model: '{path}': the optimizer {type(optimizer).__name__} has "
                f"{key}={value!r}, outside its valid range; the file is corrupt."
            )


def _check_size(layer, shape, path) -> None:
    """Refuse, before its weights are allocated, a layer whose weights or per-example outputs
    would exceed MAX_ARRAY_BYTES (a file can declare Dense(10**12) in a few bytes)."""
    if shape is None:
        return
    shape = tuple(int(s) for s in shape)
    width = int(getattr(layer, "units", 0) or getattr(layer, "filters", 0) or 0)
    kernel = math.prod(int(k) for k in np.atleast_1d(getattr(layer, "kernel_size", 1)))
    depth = shape[-1] if shape else 1
    params = kernel * (depth + width) * width + 4 * (depth + width)  # an upper estimate
    out = math.prod(layer.compute_output_shape(shape))
    for what, n in (("weights", params), ("outputs per example", out)):
        if n * layer.dtype.itemsize > file_checks.MAX_ARRAY_BYTES:
            raise ModelFileError(
                f"load_model: '{path}': layer {layer.name!r} would need about "
                f"{_gib(n * layer.dtype.itemsize)} of {what}, over the limit of "
                f"{_gib(file_checks.MAX_ARRAY_BYTES)}; refused before allocating."
            )


def _trainable_mask(layer):
    """Which of a layer's weights the optimizer updates (not batch norm's moving statistics)."""
    mask = getattr(layer, "trained_mask", None)
    if mask is not None:
        return mask()
    return [layer.trainable] * len(layer.weights)  # a nested Sequential

"""Model files: one zip holding JSON and .npy arrays; no pickle, written atomically.

Layout of the zip::

    slidenet.json          format name and version, architecture, compile settings, training state
    weights/0000.npy ...   every layer's weights, in model.get_weights() order
    optimizer/0000.npy ... optimizer state (e.g. Adam's m and v), in optimizer.variables() order

Arrays are read with ``allow_pickle=False``, so a file can hold data but never code. The file is
written to a temporary name in the same folder and moved into place with ``os.replace``: a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from slidenet import losses as losses_mod
from slidenet import optimizers as optimizers_mod
from slidenet.utils.files import atomic_write
from slidenet.utils.random import generator_from_state, generator_state

FORMAT = "slidenet-model"
VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read: truncated, corrupt, or not a slidenet model."""


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def model_state(model) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """(header dict, weights, optimizer arrays) describing everything a model file holds."""
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
            "history": None if model.history is None else model.history.history,
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
    return header, model.get_weights(), opt_arrays


def save_model(model, path) -> None:
    """Save ``model`` to ``path`` (see the module docstring for the layout)."""
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built; give it an input shape first.")
    header, weights, opt_arrays = model_state(model)
    header["n_weights"], header["n_optimizer"] = len(weights), len(opt_arrays)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("slidenet.json", json.dumps(header, indent=1))
            for i, w in enumerate(weights):
                zf.writestr(f"weights/{i:04d}.npy", _npy_bytes(w))
            for i, a in enumerate(opt_arrays):
                zf.writestr(f"optimizer/{i:04d}.npy", _npy_bytes(a))

    atomic_write(path, write)


def _read_array(zf, name, path) -> np.ndarray:
    try:
        data = zf.read(name)
        return np.load(io.BytesIO(data), allow_pickle=False)
    except KeyError:
        raise ModelFileError(
            f"load_model: '{path}' is missing {name}; the file is incomplete."
        ) from None
    except ValueError as e:
        raise ModelFileError(f"load_model: '{path}': {name} is not a plain array ({e}).") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise ModelFileError(f"load_model: '{path}': {name} is corrupt ({e}).") from None


def read_model_file(path):
    """(header, weights, optimizer arrays) from a model file, with every part checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_model: no such file: '{path}'.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelFileError(
            f"load_model: '{path}' is not a slidenet model file (not a valid zip: {e}); it may be "
            "truncated or corrupt."
        ) from None
    with zf:
        try:
            header = json.loads(zf.read("slidenet.json"))
        except KeyError:
            raise ModelFileError(
                f"load_model: '{path}' has no slidenet.json; not a model file."
            ) from None
        except (ValueError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
            raise ModelFileError(f"load_model: '{path}': slidenet.json is corrupt ({e}).") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ModelFileError(f"load_model: '{path}' is not a slidenet model file.")
        if header.get("version") != VERSION:
            raise ModelFileError(
                f"load_model: '{path}' has format version {header.get('version')!r}; this slidenet "
                f"reads version {VERSION}. Upgrade slidenet to read it."
            )
        weights = [
            _read_array(zf, f"weights/{i:04d}.npy", path) for i in range(header["n_weights"])
        ]
        opt = [
            _read_array(zf, f"optimizer/{i:04d}.npy", path) for i in range(header["n_optimizer"])
        ]
    return header, weights, opt


def load_model(path):
    """Rebuild a model saved with ``model.save(path)``: architecture, weights, compile settings,
    optimizer state, epoch counter and random-generator state.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError (a ValueError): the file is truncated, corrupt or not a model file.
    """
    from slidenet.layers import LAYER_CLASSES
    from slidenet.models.sequential import Sequential

    header, weights, opt_arrays = read_model_file(path)
    try:
        config = header["model"]
        model = Sequential(name=config["name"])
        if config.get("input_shape") is not None:
            model._input_shape = tuple(config["input_shape"])
        for spec in config["layers"]:
            cls = LAYER_CLASSES.get(spec["class_name"])
            if cls is None:
                raise ModelFileError(
                    f"load_model: '{path}' uses layer type {spec['class_name']!r}, unknown here."
                )
            model.add(cls.from_config(spec["config"]))
        model.build()
        model.set_weights(weights)
        training = header["training"]
        model.epoch = int(training["epoch"])
        if training["rng"] is not None:
            model._rng = generator_from_state(training["rng"])
        for layer in model.layers:
            state = training["layer_rngs"].get(layer.name)
            if state is not None:
                layer.rng = generator_from_state(state)
        if training.get("history"):
            from slidenet.callbacks import History

            model.history = History()
            model.history.history = training["history"]
        comp = header["compile"]
        if comp is not None:
            model.compile(
                optimizers_mod.deserialize(comp["optimizer"]),
                losses_mod.deserialize(comp["loss"]),
                comp["metrics"],
            )
            model.optimizer.iterations = int(comp["optimizer_iterations"])
            model.optimizer.set_variables(
                opt_arrays, sum(1 for layer in model.layers for g in _trainable_mask(layer) if g)
            )
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(
            f"load_model: '{path}' holds an invalid model description: {e}"
        ) from None
    return model


def _trainable_mask(layer):
    """Which of a layer's weights the optimizer updates (BatchNorm's moving statistics are not)."""
    return [layer.trainable and not n.startswith("moving_") for n in layer.weight_names]

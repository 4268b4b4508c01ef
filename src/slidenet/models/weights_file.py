"""save_weights / load_weights: a model's weights alone, in the model-file format (no pickle).

The file is a model file (slidenet.models.saving) whose description says "weights only" and lists
the weight names; reading it goes through the same checks of untrusted bytes. Use it for models
that cannot describe themselves (a subclassed Model without get_config): rebuild the model in code,
then ``model.load_weights(path)``.
"""

from __future__ import annotations

from slidenet.models.file_checks import ModelFileError

WEIGHTS_ONLY = "WeightsOnly"


def save_weights(model, path) -> None:
    """Write ``model.get_weights()`` (and their names) to ``path``, atomically."""
    from slidenet.models.saving import FORMAT, VERSION, _npy_bytes, _write_zip

    if not model.built:
        raise ValueError(
            f"save_weights: model '{model.name}' is not built; call it on data or train it first."
        )
    weights = model.get_weights()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model": {
            "class_name": WEIGHTS_ONLY,
            "name": model.name,
            "weight_names": list(_names(model)),
        },
        "compile": None,
        "training": None,
        "n_weights": len(weights),
        "n_optimizer": 0,
    }
    _write_zip(path, header, {f"weights/{i:04d}.npy": _npy_bytes(w) for i, w in enumerate(weights)})


def load_weights(model, path) -> None:
    """Set ``model``'s weights from a file written by save_weights (or by model.save)."""
    from slidenet.models.saving import _check_finite, read_model_file

    header, weights, _ = read_model_file(path)
    if not model.built:
        raise ValueError(
            f"load_weights: model '{model.name}' is not built; call it on one batch first so its "
            "layers create their weights."
        )
    want = [w.shape for w in model.weights]
    got = [w.shape for w in weights]
    if want != got:
        raise ModelFileError(
            f"load_weights: '{path}' holds {len(got)} arrays shaped {got[:6]}"
            f"{'...' if len(got) > 6 else ''} but model '{model.name}' has {len(want)} shaped "
            f"{want[:6]}{'...' if len(want) > 6 else ''}; it was saved from another architecture."
        )
    model.set_weights(weights)
    _check_finite(model.weights, "a weight", path)


def _names(model):
    names = getattr(model, "weight_names", None)
    if names is None:
        names = [f"{layer.name}/{n}" for layer in model.layers for n in layer.weight_names]
    return names


def refuse_weights_only(config, path) -> None:
    if isinstance(config, dict) and config.get("class_name") == WEIGHTS_ONLY:
        raise ModelFileError(
            f"load_model: '{path}' holds only weights (written by save_weights); build the model "
            "in code and call model.load_weights(path)."
        )

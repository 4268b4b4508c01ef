"""``slidenet explore``: a local web page that shows what a trained model computes, layer by layer.

Draw a digit, pick a test image or upload one; every layer's output appears, conv and pool
layers as activation maps, dense layers as bars, the output as class probabilities. Click a
conv unit to see its receptive field and the dot product that makes it (patch x kernel, sum,
bias, activation); press "slide" to watch the filter move over the layer below. Every number
comes from slidenet itself (the layers' forward passes); the page only draws them.

Needs the ``explore`` extra (Starlette and uvicorn): ``pip install 'slidenet[explore]'``.
Nothing in slidenet's core imports this package.

Example (in a test, or to embed the app in another ASGI server)::

    from slidenet.explore import create_app
    from starlette.testclient import TestClient

    app = create_app(slidenet.load_model("demo/mnist_cnn.slidenet"), dataset="mnist-sample")
    client = TestClient(app, base_url="http://127.0.0.1")  # the Host must be this machine
    run = client.post("/api/run", json={"dataset_index": 0}).json()
    unit = client.get("/api/unit", params={"run": run["run"], "layer": "conv2d", "y": 3,
                                          "x": 4, "k": 0}).json()
"""

from __future__ import annotations

__all__ = ["EXTRA_HINT", "create_app", "require_extra"]

EXTRA_HINT = (
    "slidenet explore needs the 'explore' extra (Starlette, uvicorn and Pillow): "
    "pip install 'slidenet[explore]'"
)


def require_extra() -> None:
    """Raise ImportError with :data:`EXTRA_HINT` when Starlette, uvicorn or Pillow is missing."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn", "PIL") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{EXTRA_HINT} (missing: {', '.join(missing)})")


def create_app(model, dataset=None, *, class_names=None, allowed_hosts=None, max_runs=64):
    """The explore web app (an ASGI app, Starlette) for ``model``.

    Args:
        model: a built ``Sequential`` or functional ``Model`` with one image input (H, W, 1) or
            (H, W, 3) and one output of class scores.
        dataset: test images to pick from: None, a name ("mnist-sample", "mnist",
            "fashion-mnist", "xo"), a tuple (x_test, y_test[, class_names]) with images
            (N, H, W[, C]) as uint8 or floats in [0, 1], or an object with ``x_test`` / ``y_test``.
        class_names: the classes' names (default: the data set's, else "0", "1", ...).
        allowed_hosts: host names the Host header may carry (default: 127.0.0.1, localhost, ::1);
            others are refused (DNS rebinding).
        max_runs: how many runs ``/api/unit`` can still answer about (an LRU cache).

    Returns:
        A ``starlette.applications.Starlette`` app; ``app.state.explorer`` runs the model.

    Raises:
        ImportError: the ``explore`` extra is not installed (the message says how to install it).
        ValueError: the model does not take images or does not output class scores.
    """
    require_extra()
    from slidenet.explore.app import LOOPBACK, build_app
    from slidenet.explore.session import Explorer

    explorer = Explorer(model, dataset, class_names=class_names, max_runs=max_runs)
    return build_app(explorer, allowed_hosts=allowed_hosts or LOOPBACK)

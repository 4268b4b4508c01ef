"""slidenet: convolutional neural networks from first principles on NumPy, with Keras' API.

``import slidenet as keras`` runs tf.keras tutorial code: Sequential, layers, compile, fit,
evaluate,
predict, summary, datasets.mnist.load_data.
"""

__version__ = "0.1.0"

from slidenet import (  # noqa: E402
    activations,
    applications,
    callbacks,
    constraints,
    datasets,
    filters,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
    utils,
)
from slidenet.layers import Input  # noqa: E402
from slidenet.models import Model, Sequential, load_model  # noqa: E402

__all__ = [
    "Model",
    "Sequential",
    "Input",
    "load_model",
    "activations",
    "applications",
    "callbacks",
    "constraints",
    "datasets",
    "filters",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "regularizers",
    "utils",
    "__version__",
]

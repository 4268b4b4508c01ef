"""Ready-made architectures, each ``builder(input_shape=..., classes=...)`` returning a model (a
Sequential, or a graph Model for resnet_small and inception_small), and :func:`scan`, which slides a
trained classifier over a larger image in one pass."""

from slidenet.applications.classic import lenet5, mnist_cnn
from slidenet.applications.inception import inception_small
from slidenet.applications.modern import resnet_small, vgg_small
from slidenet.applications.scanner import keyword_scanner
from slidenet.models.fully_convolutional import scan as scan  # public, but not a builder

# The model builders only: the CLI offers every name in __all__ as a --model (scan is not one).
__all__ = [
    "mnist_cnn",
    "lenet5",
    "vgg_small",
    "resnet_small",
    "inception_small",
    "keyword_scanner",
]

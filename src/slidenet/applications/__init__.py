"""Ready-made architectures, each ``builder(input_shape=..., classes=...) -> Sequential``, and
:func:`scan`, which slides a trained classifier over a larger image in one pass."""

from slidenet.applications.classic import lenet5, mnist_cnn
from slidenet.applications.modern import resnet_small, vgg_small
from slidenet.applications.scanner import keyword_scanner
from slidenet.models.fully_convolutional import scan as scan  # public, but not a builder

# The model builders only: the CLI offers every name in __all__ as a --model (scan is not one).
__all__ = ["mnist_cnn", "lenet5", "vgg_small", "resnet_small", "keyword_scanner"]

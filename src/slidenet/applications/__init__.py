"""Ready-made architectures, each ``builder(input_shape=..., classes=...) -> Sequential``."""

from slidenet.applications.classic import lenet5, mnist_cnn

__all__ = ["mnist_cnn", "lenet5"]

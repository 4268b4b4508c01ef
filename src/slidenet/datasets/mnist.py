"""MNIST handwritten digits (LeCun, Cortes and Burges), as ``keras.datasets.mnist`` returns them.

70,000 grayscale images of 28x28 pixels, digits 0-9: 60,000 for training, 10,000 for testing.

Where :func:`load_data` looks, in order:

1. ``path``, when given (and then nowhere else): a Keras-format ``mnist.npz`` or a folder that holds
   ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
   ``t10k-labels-idx1-ubyte``, each raw or gzipped (``.gz``).
2. The user cache, ``$SLIDENET_DATA/mnist/`` or ``~/.cache/slidenet/mnist/``.
3. The system copies in :data:`SYSTEM_COPIES` (Keras' cached ``~/.keras/datasets/mnist.npz``).
4. A download of the four ``.gz`` files from :data:`MIRRORS` into the cache, each checked against
   :data:`SHA256`. Set ``SLIDENET_MIRROR`` to a base URL to use instead (it must hold the files
   under ``mnist/``, the cache's layout).

With nothing found and no network, :class:`~slidenet.datasets.utils.DatasetNotFoundError` (a
``FileNotFoundError``) says which files to put where. For a small sample that is always available
offline, see :mod:`slidenet.datasets.mnist_sample`.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _mnist_like

__all__ = ["MIRRORS", "SHA256", "SYSTEM_COPIES", "load_data"]

#: Base URLs holding the four .gz files, tried in order: Google's mirror (used by TensorFlow) and
#: the one torchvision uses. The original http://yann.lecun.com/exdb/mnist/ no longer serves them
#: reliably.
MIRRORS = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
]

#: SHA-256 of the original files (the same bytes on every mirror above).
SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
}

#: Copies installed by other software: folders of IDX files or Keras-format .npz files. Debian has
#: no MNIST package; Keras caches its download here.
SYSTEM_COPIES = [Path(os.path.expanduser("~/.keras/datasets/mnist.npz"))]


def load_data(path: str | os.PathLike | None = None):
    """Load MNIST.

    Args:
        path: A Keras-format .npz file (keys ``x_train, y_train, x_test, y_test``, read with
            ``allow_pickle=False``) or a folder of the four IDX files. ``None`` looks in the cache,
            then the system copies, then downloads.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: images uint8 ``(N, 28, 28)`` with values 0..255
        (background 0) and labels uint8 ``(N,)`` in 0..9; N is 60,000 and 10,000 for the real data.

    Raises:
        DatasetNotFoundError: ``path`` does not exist or lacks files, or nothing was found and the
            download failed (the message says where to put the files).
        IDXFormatError: an IDX file is damaged.
        DatasetFormatError: the files do not form the data set (shapes, dtypes, counts, keys).

    Example::

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
        x_train = x_train[..., None].astype("float32") / 255  # (60000, 28, 28, 1)
    """
    source = _mnist_like.Source(
        module="mnist",
        title="MNIST",
        subdir="mnist",
        mirrors=tuple(MIRRORS),
        sha256=dict(SHA256),
        system_copies=tuple(Path(p) for p in SYSTEM_COPIES),
    )
    return _mnist_like.load_data(source, path)

"""Fashion-MNIST (Zalando Research), as ``keras.datasets.fashion_mnist`` returns it.

70,000 grayscale images of 28x28 pixels of clothing, 10 classes (:data:`CLASS_NAMES`): 60,000 for
training, 10,000 for testing; a drop-in replacement for MNIST. Copyright Zalando SE, MIT licence.

Where :func:`load_data` looks, in order:

1. ``path``, when given (and then nowhere else): a Keras-format .npz or a folder that holds
   ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
   ``t10k-labels-idx1-ubyte``, each raw or gzipped (``.gz``).
2. The user cache, ``$SLIDENET_DATA/fashion-mnist/`` or ``~/.cache/slidenet/fashion-mnist/``.
3. The system copies in :data:`SYSTEM_COPIES`: Debian's package ``dataset-fashion-mnist``
   (``apt-get install dataset-fashion-mnist``) installs the four .gz files in
   ``/usr/share/datasets/fashion-mnist/``; Keras caches them in
   ``~/.keras/datasets/fashion-mnist/``.
4. A download of the four .gz files from :data:`MIRRORS` into the cache, each checked against
   :data:`SHA256`. Set ``SLIDENET_MIRROR`` to a base URL to use instead (it must hold the files
   under ``fashion-mnist/``, the cache's layout).

With nothing found and no network, :class:`~slidenet.datasets.utils.DatasetNotFoundError` (a
``FileNotFoundError``) says which files to put where.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _mnist_like

__all__ = ["CLASS_NAMES", "MIRRORS", "SHA256", "SYSTEM_COPIES", "load_data"]

#: Label -> name.
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Base URLs holding the four .gz files, tried in order: the mirror Keras uses, and Zalando's own.
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

#: SHA-256 of the original files (as listed in Keras' fashion_mnist.py).
SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
    ),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
    ),
}

#: Copies installed by other software: folders of IDX files or Keras-format .npz files. (Debian
#: recompressed its files, so their .gz bytes differ from :data:`SHA256`; the IDX data inside is the
#: same. Copies found on disk are validated by their headers, not by checksum.)
SYSTEM_COPIES = [
    Path("/usr/share/datasets/fashion-mnist"),
    Path(os.path.expanduser("~/.keras/datasets/fashion-mnist")),
]


def load_data(path: str | os.PathLike | None = None):
    """Load Fashion-MNIST.

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

        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        print(fashion_mnist.CLASS_NAMES[y_train[0]])  # 'Ankle boot'
    """
    source = _mnist_like.Source(
        module="fashion_mnist",
        title="Fashion-MNIST",
        subdir="fashion-mnist",
        mirrors=tuple(MIRRORS),
        sha256=dict(SHA256),
        system_copies=tuple(Path(p) for p in SYSTEM_COPIES),
    )
    return _mnist_like.load_data(source, path)

"""Data sets with the ``keras.datasets`` interface.

Each module has ``load_data(...) -> ((x_train, y_train), (x_test, y_test))``.

* :mod:`.mnist`, :mod:`.fashion_mnist`: the real data sets, from a given path, the user cache
  (``$SLIDENET_DATA`` or ``~/.cache/slidenet``), system copies, or a checksum-verified download.
* :mod:`.mnist_sample`: 5,000 real MNIST digits bundled with the package (always offline).
* :mod:`.xo`: generated X-versus-O images with shifts and distortions (shift invariance).
* :mod:`.keyword`: generated 1D signals with or without a keyword pattern (Conv1D, scanning).
* :mod:`.utils`: ``read_idx``/``write_idx`` for IDX files, ``download``, and the error classes.
* :func:`shard`: one process's share of a data set for data-parallel training.
"""

from . import fashion_mnist, keyword, mnist, mnist_sample, utils, xo
from .sharding import shard

__all__ = ["fashion_mnist", "keyword", "mnist", "mnist_sample", "shard", "utils", "xo"]

"""Classic image filtering on NumPy: correlation, convolution, kernels and image files.

Correlation slides the kernel over the image and sums products, y[i, j] = sum k[u, v] x[i+u, j+v].
Convolution is the same sum with the kernel flipped in both axes: ``convolve2d(x, k)`` equals
``correlate2d(x, k[::-1, ::-1])`` (see ``correlate.py`` for even kernels in mode "same"). Symmetric
kernels (box, Gaussian) give the same result either way; for shift or Sobel the direction reverses.
CNN "convolution" layers compute correlation; convolution is associative: (x*k1)*k2 == x*(k1*k2).

Example:
    >>> import numpy as np
    >>> from slidenet import filters
    >>> x = np.zeros((5, 5)); x[2, 2] = 1.0
    >>> moved = filters.correlate2d(x, filters.shift(1, 2, size=5))
    >>> [int(v) for v in np.argwhere(moved == 1.0)[0]]
    [3, 4]
"""

from slidenet.filters.correlate import convolve1d, convolve2d, correlate1d, correlate2d
from slidenet.filters.io import load_image, save_image
from slidenet.filters.kernels import (
    box,
    gaussian,
    identity,
    laplacian,
    sharpen,
    shift,
    sobel_x,
    sobel_y,
)

__all__ = [
    "box",
    "convolve1d",
    "convolve2d",
    "correlate1d",
    "correlate2d",
    "gaussian",
    "identity",
    "laplacian",
    "load_image",
    "sharpen",
    "save_image",
    "shift",
    "sobel_x",
    "sobel_y",
]

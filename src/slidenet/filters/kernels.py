"""Classic image-filtering kernels of the lectures, as float64 (size, size) arrays.

All of them are meant for ``correlate2d`` (the kernel is laid over the image as printed). The
symmetric ones (box, gaussian, identity, sharpen, laplacian) give the same result with
``convolve2d``; for ``shift``, ``sobel_x`` and ``sobel_y`` convolution flips the kernel and so the
direction.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["box", "gaussian", "identity", "laplacian", "sharpen", "shift", "sobel_x", "sobel_y"]


def box(size: int) -> np.ndarray:
    """The box (mean) filter: every weight is ``1 / size**2``, so the weights sum to 1.

    Correlating with it replaces each pixel by the mean of its ``size x size`` neighbourhood (the 2D
    moving average). Even sizes are allowed; their anchor follows ``correlate2d``'s rule.

    Args:
        size: positive side length.

    Returns:
        (size, size) float64 array.

    Example:
        >>> print(box(3) * 9)
        [[1. 1. 1.]
         [1. 1. 1.]
         [1. 1. 1.]]
    """
    size = _size(size, "box")
    return np.full((size, size), 1.0 / size**2)


def gaussian(size: int, sigma: float) -> np.ndarray:
    """A sampled, normalised Gaussian: ``g[u, v] ~ exp(-((u - c)**2 + (v - c)**2) / (2 sigma**2))``.

    The centre is ``c = (size - 1) / 2``, so the kernel is symmetric; the weights are divided by
    their sum, so they sum to 1 and blurring keeps the mean brightness. An even ``size`` is allowed:
    its centre falls between four pixels, and ``correlate2d`` in mode "same" then moves the image by
    half a pixel up and left (use an odd size to avoid that). Rule of thumb: ``size >= 6 * sigma``.

    Args:
        size: positive side length.
        sigma: standard deviation in pixels, > 0.

    Returns:
        (size, size) float64 array summing to 1.

    Example:
        >>> print(np.round(gaussian(3, sigma=1.0), 3))
        [[0.075 0.124 0.075]
         [0.124 0.204 0.124]
         [0.075 0.124 0.075]]
    """
    size = _size(size, "gaussian")
    if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.integer | np.floating):
        raise ValueError(f"gaussian: sigma must be a positive number, got {sigma!r}.")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"gaussian: sigma must be a positive, finite number of pixels, got {sigma!r}. "
            "Use gaussian(size, sigma=1.0) for a mild blur."
        )
    d2 = (np.arange(size) - (size - 1) / 2.0) ** 2
    # relative to the centre's distance and without sigma**2, so that any finite sigma > 0 works
    # (1e-300 gives the centre pixel, 1e300 the box): the shift cancels in the normalisation
    with np.errstate(over="ignore"):
        g1 = np.exp(-((d2 - d2.min()) / float(sigma) / float(sigma)) / 2.0)
    g = np.outer(g1, g1)  # the 2D Gaussian is separable: g(u, v) = g1(u) * g1(v)
    return g / g.sum()


def identity(size: int = 3) -> np.ndarray:
    """The identity kernel: 1 at the centre, 0 elsewhere; correlating with it returns the image.

    Args:
        size: positive odd side length (an even kernel has no centre pixel).

    Returns:
        (size, size) float64 array.

    Example:
        >>> print(identity(3))
        [[0. 0. 0.]
         [0. 1. 0.]
         [0. 0. 0.]]
    """
    size = _odd_size(size, "identity")
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


def sharpen(size: int = 3) -> np.ndarray:
    """The sharpening kernel ``2 * identity(size) - box(size)``: the image plus its detail.

    ``x + (x - blur(x))`` adds back the difference between the image and its box blur. The weights
    sum to 1, so a constant image stays the same (away from a zero boundary).

    Args:
        size: positive odd side length.

    Returns:
        (size, size) float64 array.

    Example:
        >>> print(np.round(sharpen(3) * 9, 6))
        [[-1. -1. -1.]
         [-1. 17. -1.]
         [-1. -1. -1.]]
    """
    size = _odd_size(size, "sharpen")
    return 2.0 * identity(size) - box(size)


def shift(dy: int, dx: int, size: int = 3) -> np.ndarray:
    """A kernel that, under ``correlate2d``, moves the picture ``dy`` rows down, ``dx`` right.

    ``correlate2d(x, shift(dy, dx, size))[i, j] == x[i - dy, j - dx]`` (pixels moved in from outside
    the image come from the boundary: zeros by default). The single 1 sits at ``(c - dy, c - dx)``
    with ``c = size // 2``: correlation reads the pixel at offset ``(-dy, -dx)``. Under
    ``convolve2d`` the kernel is flipped and the picture moves the other way, by ``(-dy, -dx)``.

    Args:
        dy: rows to move down (negative: up); ``|dy| <= size // 2``.
        dx: columns to move right (negative: left); ``|dx| <= size // 2``.
        size: positive odd side length.

    Returns:
        (size, size) float64 array.

    Example:
        >>> print(shift(1, 0))  # moves the picture one row down
        [[0. 1. 0.]
         [0. 0. 0.]
         [0. 0. 0.]]
    """
    size = _odd_size(size, "shift")
    c = size // 2
    for name, d in (("dy", dy), ("dx", dx)):
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise ValueError(f"shift: {name} must be an integer number of pixels, got {d!r}.")
        if abs(d) > c:
            raise ValueError(
                f"shift: {name}={d} does not fit a {size}x{size} kernel, which moves at most {c} "
                f"pixel(s). Use size >= {2 * abs(d) + 1}."
            )
    k = np.zeros((size, size))
    k[c - dy, c - dx] = 1.0
    return k


def sobel_x() -> np.ndarray:
    """The Sobel kernel for the horizontal derivative (along columns, x = j).

    Under ``correlate2d`` the response is positive where brightness increases to the right; on a
    ramp ``x[i, j] = a * j`` it is ``8 * a`` (a central difference times the smoothing 1 + 2 + 1).

    Returns:
        (3, 3) float64 array.

    Example:
        >>> print(sobel_x())
        [[-1.  0.  1.]
         [-2.  0.  2.]
         [-1.  0.  1.]]
    """
    return np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_y() -> np.ndarray:
    """The Sobel kernel for the vertical derivative (along rows, y = i), ``sobel_x().T``.

    Under ``correlate2d`` the response is positive where brightness increases downwards.

    Returns:
        (3, 3) float64 array.

    Example:
        >>> print(sobel_y())
        [[-1. -2. -1.]
         [ 0.  0.  0.]
         [ 1.  2.  1.]]
    """
    return sobel_x().T.copy()


def laplacian() -> np.ndarray:
    """The 4-neighbour Laplacian: ``x[i-1, j] + x[i+1, j] + x[i, j-1] + x[i, j+1] - 4 x[i, j]``.

    It approximates ``d2x/di2 + d2x/dj2``; its weights sum to 0, so flat regions give 0.

    Returns:
        (3, 3) float64 array.

    Example:
        >>> print(laplacian())
        [[ 0.  1.  0.]
         [ 1. -4.  1.]
         [ 0.  1.  0.]]
    """
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _size(size, who: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"{who}: size must be a positive integer, got {size!r}.")
    return int(size)


def _odd_size(size, who: str) -> int:
    size = _size(size, who)
    if size % 2 == 0:
        raise ValueError(
            f"{who}: size must be odd so that the kernel has a centre pixel, got {size}. "
            f"Use size={size - 1} or size={size + 1}."
        )
    return size

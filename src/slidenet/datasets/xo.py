"""Generated X-versus-O images: the classic demo of why convolution + pooling are shift invariant.

Each image is a grayscale ``size x size`` canvas with one symbol, drawn with anti-aliased strokes:

* label 0 = **O**, an ellipse; label 1 = **X**, two crossing strokes;
* random size (radius 12-17 % of the canvas), stroke width (5-8.5 % of the canvas, at least 1.5
  pixels), rotation (+-12 degrees), shear (+-0.12) and aspect ratio (0.85-1.15);
* a random position: anywhere (``region="any"``), or with every inked pixel in the left or the right
  half of the canvas (``"left"``, ``"right"``). Symbols are always small enough to fit in half the
  canvas, so the three regions differ only in where the symbol is: train on ``"left"`` and test on
  ``"right"`` to measure shift invariance;
* Gaussian pixel noise (``noise``, standard deviation in units of full intensity), clipped to
  [0, 1].

Images are uint8 in 0..255 with background near 0, like MNIST (or float32 in [0, 1] with
``dtype="float32"``). Everything is deterministic given ``seed``; the test set does not depend on
``n_train``.

Example:
    >>> from slidenet.datasets import xo
    >>> (x_train, y_train), (x_test, y_test) = xo.load_data(n_train=6, n_test=4, region="left")
    >>> x_train.shape, x_train.dtype, y_train.tolist().count(1)
    ((6, 28, 28), dtype('uint8'), 3)
    >>> bool((x_train[:, :, 14:] > 60).any())  # nothing but faint noise in the right half
    False
"""

from __future__ import annotations

import numpy as np

from .._validation import positive_int, unknown_name

__all__ = ["CLASS_NAMES", "REGIONS", "load_data", "render"]

#: Label -> name.
CLASS_NAMES = ("O", "X")
#: Accepted values of ``region``.
REGIONS = ("any", "left", "right")
_X_CORNER = 0.85  # X strokes run from (-0.85 r, -0.85 r) to (0.85 r, 0.85 r) and mirrored
_CHUNK = 512  # images rendered at a time (bounds memory)


def _transforms(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random local->image 2x2 matrices ``(n, 2, 2)``: rotation @ shear @ aspect."""
    theta = np.deg2rad(rng.uniform(-12.0, 12.0, n))
    shear = rng.uniform(-0.12, 0.12, n)
    aspect = rng.uniform(0.85, 1.15, n)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shr = np.zeros((n, 2, 2))
    shr[:, 0, 0] = shr[:, 1, 1] = 1.0
    shr[:, 0, 1] = shear
    scale = np.zeros((n, 2, 2))
    scale[:, 0, 0], scale[:, 1, 1] = aspect, 1.0 / aspect
    return rot @ shr @ scale


def _outline(labels: np.ndarray) -> np.ndarray:
    """Centre-line points of each symbol for radius 1, ``(n, 64, 2)`` (x, y)."""
    angle = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    circle = np.stack([np.cos(angle), np.sin(angle)], -1)
    corners = _X_CORNER * np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    cross = np.resize(corners, (64, 2))
    return np.where(labels[:, None, None] == 1, cross, circle)


def _ink(px: np.ndarray, py: np.ndarray, labels, radius, half_width) -> np.ndarray:
    """Stroke intensity in [0, 1] from local coordinates ``(n, H, W)``."""
    r = radius[:, None, None]
    d_circle = np.abs(np.hypot(px, py) - r)
    c = _X_CORNER * r  # both X strokes have corner (c, +-c); distance to segment [-corner, corner]
    t1 = np.clip((px + py) / (2.0 * c), -1.0, 1.0)
    t2 = np.clip((px - py) / (2.0 * c), -1.0, 1.0)
    d_cross = np.minimum(np.hypot(px - t1 * c, py - t1 * c), np.hypot(px - t2 * c, py + t2 * c))
    d = np.where(labels[:, None, None] == 1, d_cross, d_circle)
    return np.clip(half_width[:, None, None] + 0.5 - d, 0.0, 1.0)


def render(labels, size: int = 28, region: str = "any", noise: float = 0.05, seed=0) -> np.ndarray:
    """Draw one symbol per label.

    Args:
        labels: Integer array ``(N,)``, 0 for O and 1 for X.
        size: Canvas height and width in pixels (at least 16).
        region: ``"any"``, ``"left"`` or ``"right"``: where the whole symbol lies.
        noise: Standard deviation of the Gaussian pixel noise (0 for clean images).
        seed: Seed or ``np.random.Generator`` for the random shapes, positions and noise.

    Returns:
        Float64 images ``(N, size, size)`` in [0, 1].
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    size = positive_int(size, "xo: size")
    if size < 16:
        raise ValueError(
            f"xo: size must be at least 16 pixels to fit a symbol in half, got {size}."
        )
    if region not in REGIONS:
        raise unknown_name("region", region, REGIONS)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"xo: noise must be a finite number >= 0, got {noise!r}.")
    if np.any((labels != 0) & (labels != 1)):
        raise ValueError("xo: labels must be 0 (O) or 1 (X).")
    rng = np.random.default_rng(seed)
    n = len(labels)
    a = _transforms(rng, n)
    radius = size * rng.uniform(0.12, 0.17, n)
    half_width = np.maximum(size * rng.uniform(0.05, 0.085, n) / 2.0, 0.75)  # >= 1.5 pixels wide
    # Half extents of the ink around the centre: the centre line's, plus the stroke (the strokes are
    # half_width + 0.5 wide in local units, stretched by at most the largest singular value of a).
    line = np.abs(np.einsum("nij,nkj->nki", a, _outline(labels))).max(axis=1)  # (n, 2) for r = 1
    margin = np.linalg.svd(a, compute_uv=False)[:, 0] * (half_width + 0.5)
    radius = np.minimum(radius, (size / 4.0 - margin) / line[:, 0])  # fit into half the width
    ex, ey = line[:, 0] * radius + margin, line[:, 1] * radius + margin
    lo = {"any": 0.0, "left": 0.0, "right": size / 2.0}[region]
    hi = {"any": size, "left": size / 2.0, "right": size}[region]
    # rounding can leave the clamped extent a hair over a quarter of the canvas: an empty range
    cx_lo, cy_lo = lo - 0.5 + ex, -0.5 + ey
    cx = rng.uniform(cx_lo, np.maximum(hi - 0.5 - ex, cx_lo))
    cy = rng.uniform(cy_lo, np.maximum(size - 0.5 - ey, cy_lo))
    inv = np.linalg.inv(a)
    grid = np.arange(size, dtype=np.float64)
    images = np.empty((n, size, size))
    for start in range(0, n, _CHUNK):
        s = slice(start, start + _CHUNK)
        dx = grid[None, None, :] - cx[s, None, None]
        dy = grid[None, :, None] - cy[s, None, None]
        px = inv[s, 0, 0, None, None] * dx + inv[s, 0, 1, None, None] * dy
        py = inv[s, 1, 0, None, None] * dx + inv[s, 1, 1, None, None] * dy
        images[s] = _ink(px, py, labels[s], radius[s], half_width[s])
    if noise > 0:
        images += noise * rng.standard_normal(images.shape)
    return np.clip(images, 0.0, 1.0, out=images)


def _make(n: int, size: int, region: str, noise: float, dtype: str, rng: np.random.Generator):
    labels = rng.permutation(np.arange(n) % 2).astype(np.uint8)
    images = render(labels, size=size, region=region, noise=noise, seed=rng)
    if dtype == "uint8":
        return np.rint(images * 255.0).astype(np.uint8), labels
    return images.astype(np.float32), labels


def load_data(
    n_train: int = 1000,
    n_test: int = 200,
    size: int = 28,
    seed: int = 0,
    region: str = "any",
    test_region: str | None = None,
    noise: float = 0.05,
    dtype: str = "uint8",
):
    """Generate the X-versus-O data set.

    Args:
        n_train: Number of training images (half X, half O; one more O when odd).
        n_test: Number of test images.
        size: Canvas height and width in pixels (at least 16).
        seed: Non-negative integer; the same seed gives the same data.
        region: Where the symbols of the training set lie: ``"any"``, ``"left"`` or ``"right"``
            (every inked pixel inside that half of the canvas).
        test_region: The same for the test set; ``None`` means ``region``.
        noise: Standard deviation of the Gaussian pixel noise in units of full intensity.
        dtype: ``"uint8"`` (0..255, like MNIST) or ``"float32"`` ([0, 1]).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: images ``(N, size, size)`` of ``dtype`` and
        labels uint8 ``(N,)``, 0 = O and 1 = X, shuffled.
    """
    n_train = positive_int(n_train, "xo.load_data: n_train")
    n_test = positive_int(n_test, "xo.load_data: n_test")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"xo.load_data: seed must be an integer >= 0, got {seed!r}.")
    if dtype not in ("uint8", "float32"):
        raise unknown_name("dtype", dtype, ("uint8", "float32"))
    test_region = region if test_region is None else test_region
    for name in (region, test_region):
        if name not in REGIONS:
            raise unknown_name("region", name, REGIONS)
    train = _make(n_train, size, region, noise, dtype, np.random.default_rng([int(seed), 0]))
    test = _make(n_test, size, test_region, noise, dtype, np.random.default_rng([int(seed), 1]))
    return train, test

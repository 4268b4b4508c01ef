"""Image ops on NHWC batches: resizing, cropping and affine warps, each with its exact backward.

Coordinates: pixel (i, j) of an image has its centre at row i, column j (so the image spans
[-0.5, H - 0.5] x [-0.5, W - 0.5]). Every op here is linear in the image x (a fixed weighted sum
of input pixels, plus a constant for ``fill_mode="constant"``), so its backward is the transpose
of that sum: the same weights applied the other way round (a scatter-add).

- Resizing uses half-pixel centres, as Keras 3 (``antialias=False``) and PyTorch's
  ``interpolate(align_corners=False)`` do: output pixel o samples the input at
  ``(o + 0.5) * H / Ho - 0.5``. ``"bilinear"`` clamps that position into the image;
  ``"nearest"`` takes pixel ``floor((o + 0.5) * H / Ho)`` (PyTorch's ``"nearest-exact"``).
- Affine warps take Keras' 8-number transforms ``[a0, a1, a2, b0, b1, b2, c0, c1]``: output
  pixel (column x, row y) samples the input at ``((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)``
  with ``k = c0 x + c1 y + 1``. Bilinear sampling reads the four pixels around that point from
  the image extended by ``fill_mode`` (Keras' modes)::

      reflect   d c b a | a b c d | d c b a      wrap      a b c d | a b c d | a b c d
      nearest   a a a a | a b c d | d d d d      constant  k k k k | a b c d | k k k k
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def check_choice(value, allowed, what: str, who: str) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError naming the allowed values."""
    if not isinstance(value, str) or value not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{who}: unknown {what} {value!r}; expected one of {names}.")
    return value


def _image_batch(x, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ValueError(
            f"{who}: expected a float batch of images shaped (N, H, W, C), got an array of shape "
            f"{x.shape} and dtype {x.dtype}."
        )
    return x


# ----- resizing ------------------------------------------------------------------------------
def resize_matrix(n_in: int, n_out: int, interpolation: str = "bilinear") -> np.ndarray:
    """The (n_out, n_in) float64 matrix A with ``out = A @ in`` along one axis.

    >>> resize_matrix(2, 4)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    check_choice(interpolation, INTERPOLATIONS, "interpolation", "resize_matrix")
    a = np.zeros((n_out, n_in))
    o = np.arange(n_out)
    if interpolation == "nearest":  # floor((o + 0.5) * n_in / n_out), in exact integer arithmetic
        a[o, np.minimum((2 * o + 1) * n_in // (2 * n_out), n_in - 1)] = 1.0
        return a
    src = np.maximum((o + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    a[o, i0] += 1.0 - frac  # one entry per row in each statement: no repeated index
    a[o, i1] += frac
    return a


class ResizeCache(NamedTuple):
    a_h: np.ndarray  # (Ho, H)
    a_w: np.ndarray  # (Wo, W)


def _apply_hw(x: np.ndarray, a_h: np.ndarray, a_w: np.ndarray) -> np.ndarray:
    """y[n, o, p, d] = sum_h sum_w a_h[o, h] a_w[p, w] x[n, h, w, d]."""
    N, H, W, D = x.shape
    t = np.matmul(a_h, x.reshape(N, H, W * D)).reshape(N, a_h.shape[0], W, D)
    return np.matmul(a_w, t)


def resize_forward(x, height: int, width: int, interpolation: str = "bilinear"):
    """Resize images (N, H, W, D) -> (N, height, width, D); returns (y, cache)."""
    x = _image_batch(x, "resize")
    a_h = resize_matrix(x.shape[1], height, interpolation).astype(x.dtype)
    a_w = resize_matrix(x.shape[2], width, interpolation).astype(x.dtype)
    return _apply_hw(x, a_h, a_w), ResizeCache(a_h, a_w)


def resize_backward(dy, cache: ResizeCache) -> np.ndarray:
    """dx of :func:`resize_forward`: the transposed interpolation, (N, Ho, Wo, D) -> (N, H, W,
    D)."""
    return _apply_hw(dy, cache.a_h.T, cache.a_w.T)


def resize(x, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resized images (N, height, width, D); see :func:`resize_forward`."""
    return resize_forward(x, height, width, interpolation)[0]


# ----- cropping ------------------------------------------------------------------------------
class CropCache(NamedTuple):
    in_shape: tuple
    top: int
    left: int


def crop_forward(x, top: int, left: int, height: int, width: int):
    """The window x[:, top:top + height, left:left + width, :] (a copy); returns (y, cache)."""
    x = _image_batch(x, "crop")
    _, H, W, _ = x.shape
    if not (0 <= top and top + height <= H and 0 <= left and left + width <= W):
        raise ValueError(
            f"crop: window rows {top}..{top + height - 1}, columns {left}..{left + width - 1} "
            f"does not fit an image of {H}x{W}."
        )
    y = x[:, top : top + height, left : left + width].copy()
    return y, CropCache(x.shape, top, left)


def crop_backward(dy, cache: CropCache) -> np.ndarray:
    """dx of :func:`crop_forward`: dy in its window, zeros around it."""
    dx = np.zeros(cache.in_shape, dy.dtype)
    h, w = dy.shape[1:3]
    dx[:, cache.top : cache.top + h, cache.left : cache.left + w] = dy
    return dx


def aspect_crop_box(H: int, W: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w): the largest centred window of an H x W image with the aspect
    ratio height : width (Keras' ``crop_to_aspect_ratio`` and ``smart_resize``).

    >>> aspect_crop_box(4, 8, 2, 2)
    (0, 2, 4, 4)
    """
    crop_h = max(min(H, int(W * height / width)), 1)
    crop_w = max(min(W, int(H * width / height)), 1)
    return int((H - crop_h) / 2), int((W - crop_w) / 2), crop_h, crop_w


# ----- affine warps --------------------------------------------------------------------------
def fill_index(i: np.ndarray, n: int, fill_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(index, valid): integer positions ``i`` along an axis of ``n`` pixels, mapped into
    [0, n - 1] by ``fill_mode``; ``valid`` is False where "constant" reads the fill value.

    >>> fill_index(np.arange(-3, 7), 4, "reflect")[0]
    array([2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    """
    if fill_mode == "reflect":
        r = np.mod(i, 2 * n)
        return np.where(r >= n, 2 * n - 1 - r, r), np.ones(i.shape, bool)
    if fill_mode == "wrap":
        return np.mod(i, n), np.ones(i.shape, bool)
    valid = (i >= 0) & (i < n)
    if fill_mode == "nearest":
        valid[...] = True
    return np.clip(i, 0, n - 1), valid


def _round_half_away(c: np.ndarray) -> np.ndarray:
    return np.where(c < 0, np.ceil(c - 0.5), np.floor(c + 0.5))


class AffineCache(NamedTuple):
    in_shape: tuple
    index: np.ndarray  # (K, N, H, W) flat indices into the (N*H*W, D) image rows
    weight: np.ndarray  # (K, N, H, W), 0 where "constant" reads the fill value


def _transforms(transforms, n: int) -> np.ndarray:
    t = np.asarray(transforms, dtype=np.float64)
    if t.shape == (8,):
        t = t[None]
    if t.ndim != 2 or t.shape[1] != 8 or t.shape[0] not in (1, n):
        raise ValueError(
            "affine_transform: transforms must be 8 numbers [a0, a1, a2, b0, b1, b2, c0, c1] or "
            f"one such row per image, shaped ({n}, 8); got shape {t.shape}."
        )
    return np.broadcast_to(t, (n, 8))


def affine_transform_forward(
    x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0
):
    """Warp each image (N, H, W, D) by its transform (see the module notes); returns (y, cache).

    Args:
        transforms: (8,) for every image, or (N, 8): Keras' output-to-input mapping.
        interpolation: "bilinear" or "nearest"; fill_mode: "reflect", "wrap", "constant",
            "nearest"; fill_value: the constant of fill_mode="constant".
    """
    x = _image_batch(x, "affine_transform")
    check_choice(interpolation, INTERPOLATIONS, "interpolation", "affine_transform")
    check_choice(fill_mode, FILL_MODES, "fill_mode", "affine_transform")
    N, H, W, D = x.shape
    t = _transforms(transforms, N)[:, :, None, None]
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float64)
    k = t[:, 6] * cols + t[:, 7] * rows + 1.0
    xs = (t[:, 0] * cols + t[:, 1] * rows + t[:, 2]) / k
    ys = (t[:, 3] * cols + t[:, 4] * rows + t[:, 5]) / k
    if interpolation == "nearest":
        corners = [(_round_half_away(ys), _round_half_away(xs), np.ones_like(xs))]
    else:
        y0, x0 = np.floor(ys), np.floor(xs)
        fy, fx = ys - y0, xs - x0
        corners = [
            (y0, x0, (1 - fy) * (1 - fx)),
            (y0, x0 + 1, (1 - fy) * fx),
            (y0 + 1, x0, fy * (1 - fx)),
            (y0 + 1, x0 + 1, fy * fx),
        ]
    base = np.arange(N)[:, None, None] * (H * W)
    index, weight = [], []
    for ry, rx, w in corners:
        iy, vy = fill_index(ry.astype(np.int64), H, fill_mode)
        ix, vx = fill_index(rx.astype(np.int64), W, fill_mode)
        index.append(base + iy * W + ix)
        weight.append(np.where(vy & vx, w, 0.0))
    index, weight = np.stack(index), np.stack(weight)
    flat = x.reshape(N * H * W, D)
    w_x = weight.astype(x.dtype)[..., None]
    y = np.sum(w_x * flat[index], axis=0)
    if fill_mode == "constant" and fill_value != 0:
        y += ((1.0 - weight.sum(axis=0)) * fill_value).astype(x.dtype)[..., None]
    return y, AffineCache(x.shape, index, weight)


def affine_transform_backward(dy, cache: AffineCache) -> np.ndarray:
    """dx of :func:`affine_transform_forward`: each output gradient scatter-added back to the
    pixels it was sampled from, with the sampling weights (the transposed warp)."""
    N, H, W, D = cache.in_shape
    index = cache.index.ravel()
    contrib = (cache.weight[..., None] * dy[None]).reshape(-1, D)
    dx = np.empty((N * H * W, D), dy.dtype)
    for d in range(D):
        dx[:, d] = np.bincount(index, weights=contrib[:, d], minlength=N * H * W)
    return dx.reshape(cache.in_shape)


def affine_transform(
    x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0
) -> np.ndarray:
    """Warped images; see :func:`affine_transform_forward`."""
    return affine_transform_forward(x, transforms, interpolation, fill_mode, fill_value)[0]


def rotation_transforms(angles, height: int, width: int) -> np.ndarray:
    """(N, 8) transforms rotating images by ``angles`` (radians, counter-clockwise as seen on
    screen) about their centre ((H - 1) / 2, (W - 1) / 2)."""
    a = np.asarray(angles, np.float64).reshape(-1)
    c, s = np.cos(a), np.sin(a)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    zero = np.zeros_like(a)
    return np.stack([c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, zero, zero], 1)


def translation_transforms(dx, dy) -> np.ndarray:
    """(N, 8) transforms shifting images right by ``dx`` and down by ``dy`` pixels."""
    dx, dy = np.broadcast_arrays(np.ravel(dx).astype(np.float64), np.ravel(dy).astype(np.float64))
    one, zero = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([one, zero, -dx, zero, one, -dy, zero, zero], 1)


def zoom_transforms(zx, zy, height: int, width: int) -> np.ndarray:
    """(N, 8) transforms zooming about the image centre: the output spans ``zx`` times the input
    width and ``zy`` times its height (> 1 zooms out, < 1 zooms in)."""
    zx, zy = np.broadcast_arrays(np.ravel(zx).astype(np.float64), np.ravel(zy).astype(np.float64))
    zero = np.zeros_like(zx)
    ox, oy = (width - 1) / 2 * (1 - zx), (height - 1) / 2 * (1 - zy)
    return np.stack([zx, zero, ox, zero, zy, oy, zero, zero], 1)

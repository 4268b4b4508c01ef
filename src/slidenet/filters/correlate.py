"""Correlation and convolution of images (2D) and signals (1D), written out on NumPy.

The definition (2D correlation, ``mode="valid"``), for an image ``x`` of shape (H, W) and a kernel
``k`` of shape (Fh, Fw)::

    y[i, j] = sum_{u, v} k[u, v] * x[i + u, j + v]      0 <= u < Fh, 0 <= v < Fw
    y.shape == (H - Fh + 1, W - Fw + 1)

Convolution is the same sum with the kernel flipped in both axes, ``k[::-1, ::-1]``.

The other modes pad the image first, by ``boundary``, and then take the valid sum:

========  ==========================================  ====================================
mode      padding along an axis of kernel length F     output length along that axis
========  ==========================================  ====================================
"valid"   none (the kernel must fit: F <= n)           n - F + 1
"same"    (F - 1) // 2 before and F // 2 after          n
"full"    F - 1 before and F - 1 after                  n + F - 1
========  ==========================================  ====================================

Mode semantics follow ``scipy.signal.correlate2d`` / ``scipy.signal.convolve2d``, including the
centring of ``"same"`` for even kernels: in both functions the kernel element at index
``a = (F - 1) // 2`` along each axis is the *anchor*, the one that sits over the output pixel.
So ``correlate2d`` pads ``a`` before and ``F - 1 - a`` after, while ``convolve2d`` (whose flipped
kernel has its anchor at ``F - 1 - a``) pads ``F - 1 - a`` before and ``a`` after. For odd kernels
both pad ``(F - 1) / 2`` on each side, and ``convolve2d(x, k) == correlate2d(x, k[::-1, ::-1])`` in
every mode. For an even kernel in mode ``"same"`` the two differ by a shift of one pixel along that
axis (flipping moves the anchor element); in ``"valid"`` and ``"full"`` the identity always holds.

With ``mode="same"`` the results equal ``scipy.ndimage.correlate`` / ``scipy.ndimage.convolve`` with
the matching mode for odd kernels; for even kernels pass ``origin=-1`` on every even axis to
``scipy.ndimage`` (whose anchor is ``F // 2``) to get ours.

Boundaries (names as in ``scipy.ndimage``), shown for a row ``a b c d`` padded on the left:

=========  ====================  ============================  =========================
boundary   extension             np.pad mode                   scipy.signal boundary
=========  ====================  ============================  =========================
"zero"     ``0 0 0 | a b c d``   "constant" (0)                "fill" (fillvalue=0)
"reflect"  ``c b a | a b c d``   "symmetric" (repeats edge)    "symm"
"nearest"  ``a a a | a b c d``   "edge"                        (none)
"wrap"     ``b c d | a b c d``   "wrap"                        "wrap"
=========  ====================  ============================  =========================

1D signals use the same rules: ``correlate1d(s, k)`` equals ``correlate2d(s[:, None], k[:, None])``
with the extra axis removed. ``numpy.correlate`` anchors even kernels at ``F // 2`` instead, so
for an even kernel in mode ``"same"`` it is one sample later than ``correlate1d``;
``numpy.convolve`` agrees with ``convolve1d`` in all modes.

Dtypes: float arrays keep their dtype (float32 stays float32, float64 stays float64; float16 is
summed in float32 and returned as float16); integer and bool images are computed in float32 and the
result is float32. The kernel is cast to the dtype of the computation.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import did_you_mean, unknown_name

__all__ = ["convolve1d", "convolve2d", "correlate1d", "correlate2d"]

_MODES = ("valid", "same", "full")
# Our boundary names (scipy.ndimage's) -> np.pad modes.
_PAD_MODES = {"zero": "constant", "reflect": "symmetric", "nearest": "edge", "wrap": "wrap"}
# Names other libraries use for our boundaries, for a helpful message.
_ALIASES = {
    "constant": "zero",
    "fill": "zero",
    "zeros": "zero",
    "symm": "reflect",
    "symmetric": "reflect",
    "edge": "nearest",
    "replicate": "nearest",
    "circular": "wrap",
    "periodic": "wrap",
    "grid-wrap": "wrap",
}


def correlate2d(image, kernel, mode: str = "same", boundary: str = "zero") -> np.ndarray:
    """Cross-correlate an image with a kernel: ``y[i, j] = sum_{u,v} k[u, v] * x[i + u, j + v]``.

    The formula is the ``"valid"`` one; ``"same"`` and ``"full"`` pad ``x`` first (see the module
    docstring for the padding and the even-kernel anchor, which follows
    ``scipy.signal.correlate2d``).

    Args:
        image: (H, W) or (H, W, C) array; each channel is filtered separately with the same kernel.
        kernel: (Fh, Fw) array of weights.
        mode: "valid" -> (H - Fh + 1, W - Fw + 1); "same" -> (H, W);
            "full" -> (H + Fh - 1, W + Fw - 1).
        boundary: how the image is extended for "same" and "full": "zero", "reflect"
            (``c b a | a b c d``), "nearest" (``a a a | a b c d``) or "wrap" (``b c d | a b c d``).

    Returns:
        Array of the mode's shape (plus the channel axis C when the image has one). Float images
        keep their dtype; integer and bool images give float32.

    Raises:
        ValueError: wrong ranks, empty arrays, NaN or Inf, an unknown mode or boundary, or a kernel
            that does not fit the image in mode "valid".
        TypeError: a complex, string or object array.
        FloatingPointError: finite inputs so large that the sums overflow the dtype.

    Example:
        >>> x = np.arange(16.0).reshape(4, 4)
        >>> correlate2d(x, np.ones((2, 2)), mode="valid")
        array([[10., 14., 18.],
               [26., 30., 34.],
               [42., 46., 50.]])
    """
    x, out_dtype = _check_array("correlate2d", image, "image", (2, 3), "(H, W) or (H, W, C)")
    k = _check_kernel("correlate2d", kernel, 2, x.dtype)
    return _cast("correlate2d", _filter("correlate2d", x, k, mode, boundary, False), out_dtype)


def convolve2d(image, kernel, mode: str = "same", boundary: str = "zero") -> np.ndarray:
    """Convolve an image with a kernel: correlation with the kernel flipped in both axes.

    ``y[i, j] = sum_{u,v} k[u, v] * x[i - u, j - v]`` (with the padding of the mode), i.e.
    ``correlate2d(x, k[::-1, ::-1])`` in modes "valid" and "full" and, for odd kernels, "same". For
    an even kernel in mode "same" the result follows ``scipy.signal.convolve2d``, which is one pixel
    further down/right along each even axis than ``correlate2d(x, k[::-1, ::-1], "same")``.

    Args:
        image: (H, W) or (H, W, C) array; each channel is filtered separately with the same kernel.
        kernel: (Fh, Fw) array of weights.
        mode: "valid" -> (H - Fh + 1, W - Fw + 1); "same" -> (H, W);
            "full" -> (H + Fh - 1, W + Fw - 1).
        boundary: "zero", "reflect", "nearest" or "wrap" (see ``correlate2d``).

    Returns:
        Array of the mode's shape (plus C); float images keep their dtype, integer and bool images
        give float32.

    Raises:
        ValueError, TypeError: as ``correlate2d``.

    Example:
        >>> x = np.zeros((3, 3)); x[1, 1] = 1.0
        >>> k = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> convolve2d(x, k, mode="full")  # a unit impulse reproduces the kernel
        array([[0., 0., 0., 0.],
               [0., 1., 2., 0.],
               [0., 3., 4., 0.],
               [0., 0., 0., 0.]])
        >>> correlate2d(x, k, mode="full")  # correlation reproduces it flipped
        array([[0., 0., 0., 0.],
               [0., 4., 3., 0.],
               [0., 2., 1., 0.],
               [0., 0., 0., 0.]])
    """
    x, out_dtype = _check_array("convolve2d", image, "image", (2, 3), "(H, W) or (H, W, C)")
    k = _check_kernel("convolve2d", kernel, 2, x.dtype)
    return _cast("convolve2d", _filter("convolve2d", x, k, mode, boundary, True), out_dtype)


def correlate1d(signal, kernel, mode: str = "same", boundary: str = "zero") -> np.ndarray:
    """Cross-correlate a 1D signal with a kernel: ``y[i] = sum_u k[u] * s[i + u]``.

    The moving average of the lectures is a correlation with ``np.ones(F) / F``.

    Args:
        signal: (L,) or (L, C) array; each channel is filtered separately with the same kernel.
        kernel: (F,) array of weights.
        mode: "valid" -> (L - F + 1,); "same" -> (L,); "full" -> (L + F - 1,).
        boundary: "zero", "reflect", "nearest" or "wrap" (see ``correlate2d``).

    Returns:
        Array of the mode's length (plus C); float signals keep their dtype, integer and bool give
        float32.

    Raises:
        ValueError, TypeError: as ``correlate2d``.

    Example:
        >>> correlate1d([1, 2, 3, 4, 5], np.ones(3) / 3, mode="valid")
        array([2., 3., 4.], dtype=float32)
        >>> correlate1d(np.array([1.0, 2.0, 3.0]), [1.0, -1.0], mode="full")
        array([-1., -1., -1.,  3.])
    """
    s, out_dtype = _check_array("correlate1d", signal, "signal", (1, 2), "(L,) or (L, C)")
    k = _check_kernel("correlate1d", kernel, 1, s.dtype)
    y = _filter("correlate1d", s[:, None], k[:, None], mode, boundary, flip=False)
    return _cast("correlate1d", y[:, 0], out_dtype)


def convolve1d(signal, kernel, mode: str = "same", boundary: str = "zero") -> np.ndarray:
    """Convolve a 1D signal with a kernel: ``y[i] = sum_u k[u] * s[i - u]`` (``numpy.convolve``).

    Args:
        signal: (L,) or (L, C) array; each channel is filtered separately with the same kernel.
        kernel: (F,) array of weights.
        mode: "valid" -> (L - F + 1,); "same" -> (L,); "full" -> (L + F - 1,).
        boundary: "zero", "reflect", "nearest" or "wrap" (see ``correlate2d``).

    Returns:
        Array of the mode's length (plus C); float signals keep their dtype, integer and bool give
        float32.

    Raises:
        ValueError, TypeError: as ``correlate2d``.

    Example:
        >>> convolve1d(np.array([1.0, 2.0, 3.0]), [1.0, -1.0], mode="full")
        array([ 1.,  1.,  1., -3.])
    """
    s, out_dtype = _check_array("convolve1d", signal, "signal", (1, 2), "(L,) or (L, C)")
    k = _check_kernel("convolve1d", kernel, 1, s.dtype)
    y = _filter("convolve1d", s[:, None], k[:, None], mode, boundary, flip=True)
    return _cast("convolve1d", y[:, 0], out_dtype)


def _filter(who: str, x: np.ndarray, k: np.ndarray, mode, boundary, flip: bool) -> np.ndarray:
    """Pad ``x`` (H, W[, C]) per mode and boundary, then sum shifted slices times the weights.

    ``k`` is (Fh, Fw) in the dtype of ``x``. Returns (Ho, Wo[, C]) in that dtype.
    """
    mode = _check_mode(who, mode)
    pad_mode = _check_boundary(who, boundary)
    (H, W), (Fh, Fw) = x.shape[:2], k.shape
    if mode == "valid" and (Fh > H or Fw > W):
        _raise_does_not_fit(who, x.shape, k.shape)
    if flip:
        k = k[::-1, ::-1]
    pads = [_padding(F, mode, flip) for F in (Fh, Fw)] + [(0, 0)] * (x.ndim - 2)
    xp = np.pad(x, pads, mode=pad_mode)
    Ho, Wo = xp.shape[0] - Fh + 1, xp.shape[1] - Fw + 1
    y = np.zeros((Ho, Wo) + x.shape[2:], dtype=x.dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, once
        for u in range(Fh):
            for v in range(Fw):
                if k[u, v] != 0:  # skipping a zero weight is exact: the inputs are finite
                    y += k[u, v] * xp[u : u + Ho, v : v + Wo]
    if not np.isfinite(y).all():
        raise FloatingPointError(
            f"{who}: the result overflowed {x.dtype} (image values up to {np.abs(x).max():.3g}, "
            f"kernel weights up to {np.abs(k).max():.3g}); scale the image or the kernel down."
        )
    return y


def _cast(who: str, y: np.ndarray, out_dtype) -> np.ndarray:
    """``y`` in the output dtype; float16 results beyond its range are an error, not inf."""
    if out_dtype == y.dtype:
        return y
    with np.errstate(over="ignore"):
        out = y.astype(out_dtype)
    if not np.isfinite(out).all():
        raise FloatingPointError(
            f"{who}: the result (up to {np.abs(y).max():.3g}) does not fit {out_dtype}; pass the "
            "image as float32."
        )
    return out


def _padding(F: int, mode: str, flip: bool) -> tuple[int, int]:
    """(before, after) padding along an axis of kernel length F; see the module docstring."""
    if mode == "valid":
        return 0, 0
    if mode == "full":
        return F - 1, F - 1
    anchor = (F - 1) // 2  # index of the kernel element over the output pixel (scipy.signal)
    before = F - 1 - anchor if flip else anchor  # flipping moves the anchor to F - 1 - anchor
    return before, F - 1 - before


def _check_mode(who: str, mode) -> str:
    if isinstance(mode, str) and mode in _MODES:
        return mode
    raise ValueError(f"{who}: {unknown_name('mode', mode, _MODES)}") from None


def _check_boundary(who: str, boundary) -> str:
    if isinstance(boundary, str) and boundary in _PAD_MODES:
        return _PAD_MODES[boundary]
    alias = _ALIASES.get(str(boundary).lower())
    if alias is not None:
        hint = f" Other libraries call {boundary!r} what slidenet calls '{alias}'."
    else:
        hint = did_you_mean(boundary, _PAD_MODES)
    valid = ", ".join(repr(b) for b in sorted(_PAD_MODES))
    raise ValueError(f"{who}: unknown boundary {boundary!r}.{hint} Valid boundaries: {valid}.")


def _raise_does_not_fit(who: str, x_shape, k_shape) -> None:
    if len(k_shape) == 2 and k_shape[1] == 1 and who.endswith("1d"):
        raise ValueError(
            f"{who}: kernel of length {k_shape[0]} does not fit signal of length {x_shape[0]} with "
            f"mode='valid'. Use mode='same' or mode='full', or a kernel of length <= {x_shape[0]}."
        )
    (H, W), (Fh, Fw) = x_shape[:2], k_shape
    raise ValueError(
        f"{who}: kernel {Fh}x{Fw} does not fit image {H}x{W} with mode='valid'. Use mode='same' or "
        f"mode='full', or a kernel of at most {H}x{W}."
    )


def _check_array(who: str, a, what: str, ndims: tuple[int, ...], shapes: str):
    """Check rank, dtype and finiteness; return (array in the computation dtype, output dtype)."""
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind in "biu":
        out_dtype = np.dtype(np.float32)
    elif kind == "f":
        out_dtype = arr.dtype
    else:
        raise TypeError(
            f"{who}: {what} has dtype {arr.dtype}; expected real numbers (float, integer or bool). "
            f"Convert it with {what}.astype('float32')."
        )
    if arr.ndim not in ndims:
        hint = (
            " For a batch of images loop over them, or use slidenet.ops.conv2d on an NHWC batch."
            if arr.ndim == ndims[-1] + 1
            else ""
        )
        raise ValueError(
            f"{who}: {what} must have shape {shapes}, got shape {arr.shape} ({arr.ndim}D).{hint}"
        )
    if arr.size == 0:
        raise ValueError(
            f"{who}: {what} is empty (shape {arr.shape}); it needs at least one value."
        )
    _check_finite(who, arr, what)
    compute = np.promote_types(out_dtype, np.float32)  # float16 is summed in float32
    return arr.astype(compute, copy=False), out_dtype


def _check_kernel(who: str, kernel, ndim: int, dtype) -> np.ndarray:
    k = np.asarray(kernel)
    if k.dtype.kind not in "biuf":
        raise TypeError(f"{who}: kernel has dtype {k.dtype}; expected real numbers.")
    if k.ndim != ndim:
        if ndim == 2:
            fix = (
                "For a 1D kernel use correlate1d/convolve1d, or make it a row k[None, :] or a "
                "column k[:, None]."
                if k.ndim == 1
                else "The filters here apply one (Fh, Fw) kernel to every channel; for "
                "multi-channel kernels (Fh, Fw, D, K) use slidenet.ops.conv2d."
            )
            want = "(Fh, Fw)"
        else:
            fix = "For a 2D kernel use correlate2d/convolve2d."
            want = "(F,)"
        raise ValueError(
            f"{who}: kernel must have shape {want}, got shape {k.shape} ({k.ndim}D). {fix}"
        )
    if k.size == 0:
        raise ValueError(f"{who}: kernel is empty (shape {k.shape}); it needs at least one weight.")
    _check_finite(who, k, "kernel")
    return k.astype(dtype, copy=False)


def _check_finite(who: str, arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{who}: {what} contains {bad} NaN or Inf value(s); replace them first, e.g. with "
            f"np.nan_to_num({what})."
        )

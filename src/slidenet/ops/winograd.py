"""Winograd minimal filtering (Lavin & Gray 2016): the same stride-1 convolution with fewer
multiplications.

Cut the output into m x m tiles. Each tile needs an (m+r-1) x (m+r-1) input tile d and the r x r
filter g, and

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise)

costs (m+r-1)^2 multiplications instead of m^2 r^2: for F(4x4, 5x5) 64 instead of 400. Summed
over the input depth D, the elementwise products become one matrix product per transformed point
(a batch of (m+r-1)^2 GEMMs, (tiles, D) @ (D, K)), which is where the work goes.

The matrices come from Toom-Cook: evaluate the filter and the tile at m+r-2 points and infinity,
multiply, and interpolate (see :func:`winograd_matrices`). The transforms of whole batches are
done as single GEMMs with Kronecker-product matrices, on tiles gathered in (H, W, N, D) order so
that every copy moves long contiguous runs of N*D values.

Exact in exact arithmetic; in float32 the error grows with the tile size (points 0, +-1, +-2,
+-1/2: about 1e-6 relative for F(4x4, 5x5), tested against the im2col convolution).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from slidenet.ops import kernels

# interpolation points (infinity is added); the small ones keep the float32 error low
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0)


def _vandermonde(points, n):
    """Rows [1, p, p^2, ..., p^(n-1)] for each finite point, then [0, ..., 0, 1] for infinity."""
    rows = [[p**j for j in range(n)] for p in points]
    rows.append([0.0] * (n - 1) + [1.0])
    return np.array(rows, dtype=np.float64)


@functools.cache
def winograd_matrices(m: int, r: int):
    """(AT, G, BT) of F(m, r) in float64: AT (m, a), G (a, r), BT (a, a) with a = m + r - 1.

    1D correlation y_i = sum_k d_(i+k) g_k of a tile d (a,) equals AT @ ((G @ g) * (BT @ d)).
    It is the transpose of Toom-Cook polynomial multiplication: h = V^-1 [(Vg g) * (Ve e)], so
    AT = Ve^T, G = Vg, BT = V^-T with V, Vg, Ve the evaluation matrices of degree a-1, r-1, m-1.

    >>> at, g, bt = winograd_matrices(2, 3)
    >>> d, w = np.array([1., 2., 3., 4.]), np.array([1., 0., -1.])
    >>> (at @ ((g @ w) * (bt @ d))).round(12)
    array([-2., -2.])
    """
    a = m + r - 1
    points = _POINTS[: a - 1]
    at = _vandermonde(points, m).T
    g = _vandermonde(points, r)
    bt = np.linalg.inv(_vandermonde(points, a)).T
    return at, g, bt


@functools.cache
def _kron_matrices(m: int, r: int, dtype):
    """The 2D transforms as matrices on row-major flattened tiles: (A^T x A^T), (G x G), (B^T x
    B^T)."""
    at, g, bt = winograd_matrices(m, r)
    return tuple(np.kron(t, t).astype(dtype) for t in (at, g, bt))


@functools.cache
def _matrices(m: int, r: int, dtype):
    """(AT, G, BT) of F(m, r) in ``dtype``, for the compiled transforms."""
    return tuple(t.astype(dtype) for t in winograd_matrices(m, r))


def _compiled(dtype) -> bool:
    return kernels.compiled() and dtype in (np.float32, np.float64)


def tile_size_for(r: int) -> int:
    """The output tile m used for an r x r filter: F(4x4, 3x3) and F(4x4, 5x5)."""
    return 4


def winograd_conv2d(x, w, pads, m=None, return_tiles=False, b=None):
    """Stride-1 correlation of x (N, H, W, D) with w (r, r, D, K), zero padding ``pads``
    ((top, bottom), (left, right)), each pad in [0, r-1], plus the bias b (K,) if given. Returns
    y (N, Ho, Wo, K), Ho = H + pt + pb - r + 1, in x's dtype; the same numbers as im2col + GEMM
    up to rounding.

    With return_tiles=True also returns the transformed input tiles U = B^T d B, (a*a, T, D) with
    T = tiles * N, which :func:`winograd_backward` reuses. With the compiled kernels the tile
    transforms run as one pass each (slidenet/ops/compiled/winograd.py); the GEMM stage is shared.
    """
    n, h, wi, d = x.shape
    r, k = w.shape[0], w.shape[3]
    m = m or tile_size_for(r)
    a = m + r - 1
    (pt, pb), (pl, pr) = pads
    ho, wo = h + pt + pb - r + 1, wi + pl + pr - r + 1
    th, tw = -(-ho // m), -(-wo // m)
    at2, g2, bt2 = _kron_matrices(m, r, np.dtype(x.dtype))
    v = (g2 @ w.astype(x.dtype, copy=False).reshape(r * r, d * k)).reshape(a * a, d, k)
    if _compiled(x.dtype):
        return _compiled_forward(x, v, b, pads, m, r, (th, tw), return_tiles)
    # padded input in (H, W, N, D) order, tall and wide enough for whole tiles
    z = np.zeros((th * m + r - 1, tw * m + r - 1, n, d), x.dtype)
    z[pt : pt + h, pl : pl + wi] = x.transpose(1, 2, 0, 3)
    # every tile point (u, v) of every tile: (a, a, th, tw, N, D), copied as long runs
    s0, s1, s2, s3 = z.strides
    tiles = as_strided(z, (a, a, th, tw, n, d), (s0, s1, m * s0, m * s1, s2, s3), writeable=False)
    dt = np.empty((a * a, th * tw * n * d), x.dtype)
    np.copyto(dt.reshape(tiles.shape), tiles)
    u = (bt2 @ dt).reshape(a * a, th * tw * n, d)  # B^T d B for all tiles and channels
    prod = np.matmul(u, v)  # (a*a, tiles*N, K): the sum over D, one GEMM per point
    yt = (at2 @ prod.reshape(a * a, -1)).reshape(m, m, th, tw, n, k)
    y = np.empty((n, ho, wo, k), x.dtype)
    full = yt.transpose(4, 2, 0, 3, 1, 5).reshape(n, th * m, tw * m, k)
    np.copyto(y, full[:, :ho, :wo])
    if b is not None:
        y += b.astype(x.dtype, copy=False)
    return (y, u) if return_tiles else y


def winograd_backward(dy, tiles, w, pads, need_dx=True, m=None):
    """Gradients of :func:`winograd_conv2d`, all in the transformed domain.

    Per tile the forward pass is Y = A^T [V * U] A with U = B^T d B and V = G g G^T (summed over
    the depth D per filter). Going back through each linear map:

        dM = A dY A^T                      (the output gradient, transformed once, shared)
        dV = sum over tiles of U^T dM      (one GEMM (D, T) @ (T, K) per point) -> dw = G^T dV G
        dU = dM V^T                        (one GEMM (T, K) @ (K, D) per point) -> dd = B dU B^T

    and the overlapping input tiles dd are added back onto the input they were cut from.

    Args:
        dy: (N, Ho, Wo, K). tiles: U (a*a, T, D) from the forward pass. w: (r, r, D, K).
        pads: the forward pass's ((top, bottom), (left, right)).

    Returns:
        dx (N, H, W, D) or None, dw (r, r, D, K).
    """
    n, ho, wo, k = dy.shape
    r, d = w.shape[0], w.shape[2]
    m = m or tile_size_for(r)
    a = m + r - 1
    th, tw = -(-ho // m), -(-wo // m)
    at2, g2, bt2 = _kron_matrices(m, r, np.dtype(dy.dtype))
    if _compiled(dy.dtype):
        return _compiled_backward(dy, tiles, w, pads, m, (th, tw), need_dx)
    # dy cut into m x m tiles, in the tiles' (th, tw, N) order: (m*m, T*K)
    z = np.zeros((th * m, tw * m, n, k), dy.dtype)
    z[:ho, :wo] = dy.transpose(1, 2, 0, 3)
    dyt = np.empty((m * m, th * tw * n * k), dy.dtype)
    np.copyto(
        dyt.reshape(m, m, th, tw, n, k), z.reshape(th, m, tw, m, n, k).transpose(1, 3, 0, 2, 4, 5)
    )
    dprod = (at2.T @ dyt).reshape(a * a, th * tw * n, k)  # A dY A^T
    dv = np.matmul(tiles.transpose(0, 2, 1), dprod)  # (a*a, D, K)
    dw = (g2.T @ dv.reshape(a * a, d * k)).reshape(r, r, d, k)
    if not need_dx:
        return None, dw
    v = (g2 @ w.astype(dy.dtype, copy=False).reshape(r * r, d * k)).reshape(a * a, d, k)
    du = np.matmul(dprod, v.transpose(0, 2, 1))  # (a*a, T, D)
    (pt, pb), (pl, pr) = pads
    h, wi = ho + r - 1 - pt - pb, wo + r - 1 - pl - pr
    dd = (bt2.T @ du.reshape(a * a, -1)).reshape(a, a, th, tw, n, d)
    # add every tile point back where the forward pass gathered it from (tiles overlap)
    dz = np.zeros((th * m + r - 1, tw * m + r - 1, n, d), dy.dtype)
    for u in range(a):
        for v_ in range(a):
            dz[u : u + m * th : m, v_ : v_ + m * tw : m] += dd[u, v_]
    dx = np.empty((n, h, wi, d), dy.dtype)
    np.copyto(dx, dz[pt : pt + h, pl : pl + wi].transpose(2, 0, 1, 3))
    return dx, dw


# ------------------------------------------------------------ compiled kernels (kernels.compiled())
# Tiles are processed in blocks of about BLOCK_BYTES of transformed data, so that each block's
# transformed tiles and products stay in cache between the transform, the GEMM stage and the
# inverse transform, instead of making round trips to memory through 13-26 MB arrays.
BLOCK_BYTES = 1 << 20


def _blocks(tiles: int, points: int, depth: int, itemsize: int):
    size = max(16, BLOCK_BYTES // (points * depth * itemsize))
    return [(t0, min(t0 + size, tiles)) for t0 in range(0, tiles, size)]


def _compiled_forward(x, v, b, pads, m, r, tile_grid, return_tiles):
    """winograd_conv2d on the compiled transforms, block of tiles by block of tiles."""
    from slidenet.ops.compiled import winograd as cw

    n, h, wi, d = x.shape
    a, k = m + r - 1, v.shape[2]
    (pt, pb), (pl, pr) = pads
    th, tw = tile_grid
    at, _, bt = _matrices(m, r, np.dtype(x.dtype))
    y = np.empty((n, h + pt + pb - r + 1, wi + pl + pr - r + 1, k), x.dtype)
    bias = np.zeros(k, x.dtype) if b is None else b.astype(x.dtype, copy=False)
    tiles = th * tw * n
    u = np.empty((a * a, tiles, d), x.dtype) if return_tiles else None
    blocks = _blocks(tiles, a * a, max(d, k), x.dtype.itemsize)
    ub = np.empty((a * a, blocks[0][1], d), x.dtype)  # contiguous: the GEMMs run faster on it
    for t0, t1 in blocks:
        cw.input_transform(x, bt, pt, pl, tw, m, t0, ub[:, : t1 - t0])
        cw.output_transform(np.matmul(ub[:, : t1 - t0], v), at, bias, tw, t0, y)
        if return_tiles:  # kept for the backward pass, copied while still in cache
            np.copyto(u[:, t0:t1], ub[:, : t1 - t0])
    return (y, u) if return_tiles else y


def _compiled_backward(dy, tiles, w, pads, m, tile_grid, need_dx):
    """winograd_backward on the compiled transforms, block of tiles by block of tiles: dw sums
    the blocks' U^T dM, dx adds each block's input tiles."""
    from slidenet.ops.compiled import winograd as cw

    n, ho, wo, k = dy.shape
    r, d = w.shape[0], w.shape[2]
    a = m + r - 1
    (pt, pb), (pl, pr) = pads
    th, tw = tile_grid
    at, _, bt = _matrices(m, r, np.dtype(dy.dtype))
    _, g2, _ = _kron_matrices(m, r, np.dtype(dy.dtype))
    vt = (g2 @ w.astype(dy.dtype, copy=False).reshape(r * r, d * k)).reshape(a * a, d, k)
    vt = np.ascontiguousarray(vt.transpose(0, 2, 1))  # V^T (a*a, K, D)
    dv = np.zeros((a * a, d, k), dy.dtype)
    dx = np.zeros((n, ho + r - 1 - pt - pb, wo + r - 1 - pl - pr, d), dy.dtype) if need_dx else None
    blocks = _blocks(th * tw * n, a * a, max(d, k), dy.dtype.itemsize)
    buffer = np.empty((a * a, blocks[0][1], k), dy.dtype)
    for t0, t1 in blocks:
        dm = buffer[:, : t1 - t0]
        cw.output_grad_transform(dy, at, tw, t0, dm)  # A dY A^T
        dv += np.matmul(tiles[:, t0:t1].transpose(0, 2, 1), dm)
        if need_dx:
            cw.input_grad_transform(np.matmul(dm, vt), bt, pt, pl, tw, m, t0, dx)
    dw = (g2.T @ dv.reshape(a * a, d * k)).reshape(r, r, d, k)
    return dx, dw


def winograd_applies(kernel_size, strides, dilations, pads) -> bool:
    """Winograd here covers square 3x3 and 5x5 kernels, stride 1, no dilation, pads <= r - 1."""
    fh, fw = kernel_size
    return (
        fh == fw
        and fh in (3, 5)
        and tuple(strides) == (1, 1)
        and tuple(dilations) == (1, 1)
        and all(0 <= p <= fh - 1 for pair in pads for p in pair)
    )

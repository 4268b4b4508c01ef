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


def tile_size_for(r: int) -> int:
    """The output tile m used for an r x r filter: F(4x4, 3x3) and F(4x4, 5x5)."""
    return 4


def winograd_conv2d(x, w, pads, m=None, return_tiles=False):
    """Stride-1 correlation of x (N, H, W, D) with w (r, r, D, K), zero padding ``pads``
    ((top, bottom), (left, right)), each pad in [0, r-1]. Returns y (N, Ho, Wo, K), Ho = H + pt +
    pb - r + 1, in x's dtype; the same numbers as im2col + GEMM up to rounding.

    With return_tiles=True also returns the transformed input tiles U = B^T d B, (a*a, T, D) with
    T = tiles * N, which :func:`winograd_weight_grad` reuses.
    """
    n, h, wi, d = x.shape
    r, k = w.shape[0], w.shape[3]
    m = m or tile_size_for(r)
    a = m + r - 1
    (pt, pb), (pl, pr) = pads
    ho, wo = h + pt + pb - r + 1, wi + pl + pr - r + 1
    th, tw = -(-ho // m), -(-wo // m)
    at2, g2, bt2 = _kron_matrices(m, r, np.dtype(x.dtype))
    # padded input in (H, W, N, D) order, tall and wide enough for whole tiles
    z = np.zeros((th * m + r - 1, tw * m + r - 1, n, d), x.dtype)
    z[pt : pt + h, pl : pl + wi] = x.transpose(1, 2, 0, 3)
    # every tile point (u, v) of every tile: (a, a, th, tw, N, D), copied as long runs
    s0, s1, s2, s3 = z.strides
    tiles = as_strided(z, (a, a, th, tw, n, d), (s0, s1, m * s0, m * s1, s2, s3), writeable=False)
    dt = np.empty((a * a, th * tw * n * d), x.dtype)
    np.copyto(dt.reshape(tiles.shape), tiles)
    u = (bt2 @ dt).reshape(a * a, th * tw * n, d)  # B^T d B for all tiles and channels
    v = (g2 @ w.astype(x.dtype, copy=False).reshape(r * r, d * k)).reshape(a * a, d, k)
    prod = np.matmul(u, v)  # (a*a, tiles*N, K): the sum over D, one GEMM per point
    yt = (at2 @ prod.reshape(a * a, -1)).reshape(m, m, th, tw, n, k)
    y = np.empty((n, ho, wo, k), x.dtype)
    full = yt.transpose(4, 2, 0, 3, 1, 5).reshape(n, th * m, tw * m, k)
    np.copyto(y, full[:, :ho, :wo])
    return (y, u) if return_tiles else y


def winograd_weight_grad(dy, tiles, r, m=None):
    """dw (r, r, D, K) of :func:`winograd_conv2d` from dy (N, Ho, Wo, K) and its input tiles
    U (a*a, T, D), in the transformed domain: the forward pass is Y = A^T [V * U] A per tile with
    V = G g G^T, so dV = sum over tiles of U * (A dY A^T), one GEMM (D, T) @ (T, K) per point,
    and dw = G^T dV G.
    """
    n, ho, wo, k = dy.shape
    m = m or tile_size_for(r)
    a = m + r - 1
    th, tw = -(-ho // m), -(-wo // m)
    at2, g2, _ = _kron_matrices(m, r, np.dtype(dy.dtype))
    # dy cut into m x m tiles, in the tiles' (th, tw, N) order: (m*m, T*K)
    z = np.zeros((th * m, tw * m, n, k), dy.dtype)
    z[:ho, :wo] = dy.transpose(1, 2, 0, 3)
    dyt = np.empty((m * m, th * tw * n * k), dy.dtype)
    np.copyto(
        dyt.reshape(m, m, th, tw, n, k), z.reshape(th, m, tw, m, n, k).transpose(1, 3, 0, 2, 4, 5)
    )
    dprod = (at2.T @ dyt).reshape(a * a, th * tw * n, k)  # A dY A^T
    dv = np.matmul(tiles.transpose(0, 2, 1), dprod)  # (a*a, D, K)
    d = tiles.shape[2]
    return (g2.T @ dv.reshape(a * a, d * k)).reshape(r, r, d, k)


def winograd_input_grad(dy, w, pads):
    """dx (N, H, W, D) of a stride-1 convolution with kernel w (r, r, D, K) and ``pads``, from dy
    (N, Ho, Wo, K): the correlation of dy, padded by r-1-pad, with the flipped kernel w[::-1, ::-1]
    whose depth and filter axes are swapped (r, r, K, D).
    """
    r = w.shape[0]
    (pt, pb), (pl, pr) = pads
    # padding of dy so that the full correlation lands exactly on the unpadded input
    q = ((r - 1 - pt, r - 1 - pb), (r - 1 - pl, r - 1 - pr))
    w_flip = w[::-1, ::-1].transpose(0, 1, 3, 2)
    return winograd_conv2d(dy, np.ascontiguousarray(w_flip), q)


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

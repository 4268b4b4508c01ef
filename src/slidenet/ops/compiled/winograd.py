"""Compiled Winograd tile transforms: each tile cut, transformed and written in one pass.

The NumPy path (``slidenet.ops.winograd``) gathers every tile into a large array, then transforms
all of them with one GEMM by the Kronecker matrix (B^T x B^T: 64 x 64 for F(4x4, 5x5)) and copies
the result back into NHWC order: four passes over 13-26 MB each, and four times the arithmetic of
the separable transform. Here each tile is read once from the NHWC input (zero where it falls in
the padding), transformed separably, B^T d B as two small matrix products over a (a, a, D) block
that stays in L1, and written once; the channel loop is innermost (contiguous, SIMD).

    input_transform:   U[p*a + q, t, :] = (B^T d_t B)[p, q, :]           (the forward pass)
    output_transform:  y[n, tile rows, tile cols, :] = A^T M_t A + b     (bias fused)
    output_grad_transform:  dM[p*a + q, t, :] = (A dY_t A^T)[p, q, :]     (backward, both grads)
    input_grad_transform:   dx[n, tile window] += B dU_t B^T              (overlapping tiles add)

Tiles t are numbered (tile row, tile column, example), as in the NumPy path, whose GEMM stage
(one batched product per transformed point) both paths share. The matrices come from
``winograd_matrices`` in the data's dtype. Arguments are arrays and ints; the caller allocates
the outputs.
"""

from __future__ import annotations

import numpy as np

from slidenet.ops.compiled import jit


@jit
def _tile(t, tw, n):
    """Tile number t -> (tile row, tile column, example): tiles are numbered (ti, tj, e)."""
    return t // (tw * n), (t // n) % tw, t % n


@jit
def input_transform(x, bt, pt, pl, tw, m, t0, out):
    """out[:, t - t0] (a*a, D) = B^T d B for the a x a input tiles d of x (N, H, W, D) numbered
    t0 .. t0 + out.shape[1] - 1; tile (ti, tj) starts at row ti*m - pt, column tj*m - pl (zero
    outside x)."""
    n, h, w, d = x.shape
    a = bt.shape[0]
    tile = np.empty((a, a, d), x.dtype)
    half = np.empty((a, a, d), x.dtype)
    row = np.empty(d, x.dtype)
    for tb in range(out.shape[1]):
        ti, tj, e = _tile(t0 + tb, tw, n)
        t = tb
        for p in range(a):
            r = ti * m + p - pt
            for q in range(a):
                c = tj * m + q - pl
                if 0 <= r < h and 0 <= c < w:
                    for k in range(d):
                        tile[p, q, k] = x[e, r, c, k]
                else:
                    for k in range(d):
                        tile[p, q, k] = 0.0
        for i in range(a):  # half = B^T d
            for q in range(a):
                for k in range(d):
                    half[i, q, k] = 0.0
            for p in range(a):
                f = bt[i, p]
                if f != 0.0:
                    for q in range(a):
                        for k in range(d):
                            half[i, q, k] += f * tile[p, q, k]
        for i in range(a):  # out = (B^T d) B, each row summed in L1 and written once
            for j in range(a):
                for k in range(d):
                    row[k] = 0.0
                for q in range(a):
                    f = bt[j, q]
                    if f != 0.0:
                        for k in range(d):
                            row[k] += f * half[i, q, k]
                dst = out[i * a + j, t]
                for k in range(d):
                    dst[k] = row[k]


@jit
def output_transform(prod, at, b, tw, t0, y):
    """y (N, Ho, Wo, K) = A^T M A + b for the tiles M = prod[:, t - t0] (a*a, K) numbered t0 ..
    t0 + prod.shape[1] - 1; the m x m output tile (ti, tj) goes to rows ti*m.., columns tj*m..
    (cropped at Ho, Wo)."""
    n, ho, wo, kk = y.shape
    m, a = at.shape
    half = np.empty((m, a, kk), y.dtype)
    row = np.empty(kk, y.dtype)
    for tb in range(prod.shape[1]):
        ti, tj, e = _tile(t0 + tb, tw, n)
        t = tb
        for i in range(m):  # half = A^T M
            for q in range(a):
                for k in range(kk):
                    half[i, q, k] = 0.0
            for p in range(a):
                f = at[i, p]
                if f != 0.0:
                    for q in range(a):
                        src = prod[p * a + q, t]
                        for k in range(kk):
                            half[i, q, k] += f * src[k]
        for i in range(m):  # y = (A^T M) A + b
            r = ti * m + i
            if r >= ho:
                break
            for j in range(m):
                c = tj * m + j
                if c >= wo:
                    break
                for k in range(kk):
                    row[k] = b[k]
                for q in range(a):
                    f = at[j, q]
                    if f != 0.0:
                        for k in range(kk):
                            row[k] += f * half[i, q, k]
                for k in range(kk):
                    y[e, r, c, k] = row[k]


@jit
def output_grad_transform(dy, at, tw, t0, out):
    """out[:, t - t0] (a*a, K) = A dY A^T for the m x m tiles dY of dy (N, Ho, Wo, K) (zero past
    Ho, Wo) numbered t0 .. t0 + out.shape[1] - 1: the output gradient in the transformed domain."""
    n, ho, wo, kk = dy.shape
    m, a = at.shape
    tile = np.empty((m, m, kk), dy.dtype)
    half = np.empty((a, m, kk), dy.dtype)
    row = np.empty(kk, dy.dtype)
    for tb in range(out.shape[1]):
        ti, tj, e = _tile(t0 + tb, tw, n)
        t = tb
        for i in range(m):
            r = ti * m + i
            for j in range(m):
                c = tj * m + j
                if r < ho and c < wo:
                    for k in range(kk):
                        tile[i, j, k] = dy[e, r, c, k]
                else:
                    for k in range(kk):
                        tile[i, j, k] = 0.0
        for p in range(a):  # half = A dY  (A = at^T)
            for j in range(m):
                for k in range(kk):
                    half[p, j, k] = 0.0
            for i in range(m):
                f = at[i, p]
                if f != 0.0:
                    for j in range(m):
                        for k in range(kk):
                            half[p, j, k] += f * tile[i, j, k]
        for p in range(a):  # out = (A dY) A^T, each row summed in L1 and written once
            for q in range(a):
                for k in range(kk):
                    row[k] = 0.0
                for j in range(m):
                    f = at[j, q]
                    if f != 0.0:
                        for k in range(kk):
                            row[k] += f * half[p, j, k]
                dst = out[p * a + q, t]
                for k in range(kk):
                    dst[k] = row[k]


@jit
def input_grad_transform(du, bt, pt, pl, tw, m, t0, dx):
    """dx (N, H, W, D) += B dU B^T for the tiles dU = du[:, t - t0] (a*a, D) numbered t0 .. t0 +
    du.shape[1] - 1, added onto the input window the forward pass cut each tile from (tiles
    overlap; padding dropped). dx must be zeroed by the caller."""
    n, h, w, d = dx.shape
    a = bt.shape[0]
    half = np.empty((a, a, d), dx.dtype)
    row = np.empty(d, dx.dtype)
    for tb in range(du.shape[1]):
        ti, tj, e = _tile(t0 + tb, tw, n)
        t = tb
        for p in range(a):  # half = B dU  (B = bt^T)
            for j in range(a):
                for k in range(d):
                    half[p, j, k] = 0.0
            for i in range(a):
                f = bt[i, p]
                if f != 0.0:
                    for j in range(a):
                        src = du[i * a + j, t]
                        for k in range(d):
                            half[p, j, k] += f * src[k]
        for p in range(a):  # dx += (B dU) B^T
            r = ti * m + p - pt
            if r < 0 or r >= h:
                continue
            for q in range(a):
                c = tj * m + q - pl
                if c < 0 or c >= w:
                    continue
                for k in range(d):
                    row[k] = 0.0
                for j in range(a):
                    f = bt[j, q]
                    if f != 0.0:
                        for k in range(d):
                            row[k] += f * half[p, j, k]
                for k in range(d):
                    dx[e, r, c, k] += row[k]

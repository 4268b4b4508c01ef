"""Compiled 2D pooling (max / average / sum), forward and backward, NHWC.

The same numbers as the NumPy path in ``slidenet.ops.pool``, computed in one pass over the input:
loops over (example, output row, output column, window offset) with the channel loop innermost
(contiguous), the output rows of the batch split between the cores (``prange``). The padding is
never materialised: a window offset that falls outside the input is skipped (max: it is -inf,
which only wins a window that holds nothing larger; average and sum: it is 0).

Max pooling records, for every output, the offset k = u * pw + v of its window's winner (the first
maximum in window order, as the NumPy path; -1 when the window holds a NaN, which the NumPy path
routes nowhere), so the backward pass writes dy straight to it instead of comparing again.

Geometry arguments: pool (ph, pw), strides (sh, sw) and the top / left padding (pt, pl); the caller
allocates the outputs, whose shapes fix the output size. Arrays are indexed element by element, not
through row views: in a parallel loop a view costs two atomic reference-count updates on the shared
array, which made these kernels up to 6x slower.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from slidenet.ops.compiled import jit


@jit(parallel=True)
def max_pool2d_forward(x, ph, pw, sh, sw, pt, pl, y, arg):
    """y[n, i, j, d] = max of x over the window (i, j); arg = its offset u * pw + v (or -1)."""
    n, h, w, d = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for t in prange(n * ho):
        b = t // ho
        i = t - b * ho
        r0 = i * sh - pt
        for j in range(wo):
            c0 = j * sw - pl
            if 0 <= r0 < h and 0 <= c0 < w:  # offset (0, 0) starts the race, padding or not
                for dd in range(d):
                    y[b, i, j, dd] = x[b, r0, c0, dd]
            else:
                for dd in range(d):
                    y[b, i, j, dd] = -np.inf
            for dd in range(d):
                arg[b, i, j, dd] = 0
            for u in range(ph):
                r = r0 + u
                if r < 0 or r >= h:
                    continue
                for v in range(pw):
                    c = c0 + v
                    if (u == 0 and v == 0) or c < 0 or c >= w:
                        continue
                    k = u * pw + v
                    for dd in range(d):
                        val = x[b, r, c, dd]
                        best = y[b, i, j, dd]
                        take = (val > best) | (val != val)  # a NaN wins and stays (np.maximum)
                        y[b, i, j, dd] = val if take else best
                        arg[b, i, j, dd] = k if take else arg[b, i, j, dd]
            for dd in range(d):
                if y[b, i, j, dd] != y[b, i, j, dd]:
                    arg[b, i, j, dd] = -1


@jit(parallel=True)
def max_pool2x2_forward(x, y, arg):
    """max_pool2d_forward for 2x2 windows, stride 2, no padding (the common case), branch-free:
    the first maximum of each pair of the window, then of the two pairs (ties keep the earlier)."""
    n, d = x.shape[0], x.shape[3]
    ho, wo = y.shape[1], y.shape[2]
    for t in prange(n * ho):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            for dd in range(d):
                a0 = x[b, 2 * i, 2 * j, dd]
                a1 = x[b, 2 * i, 2 * j + 1, dd]
                a2 = x[b, 2 * i + 1, 2 * j, dd]
                a3 = x[b, 2 * i + 1, 2 * j + 1, dd]
                t01 = a1 > a0
                m01 = a1 if t01 else a0
                k01 = 1 if t01 else 0
                t23 = a3 > a2
                m23 = a3 if t23 else a2
                k23 = 3 if t23 else 2
                later = m23 > m01
                best = m23 if later else m01
                k = k23 if later else k01
                nan = (a0 != a0) | (a1 != a1) | (a2 != a2) | (a3 != a3)
                y[b, i, j, dd] = np.nan if nan else best
                arg[b, i, j, dd] = -1 if nan else k


@jit(parallel=True)
def max_pool2d_backward(dy, arg, ph, pw, sh, sw, pt, pl, disjoint, dx):
    """dx = dy routed to each window's recorded winner (overlapping windows add up).

    disjoint: no two windows share an element (strides >= pool), so each element is written once
    (dy or 0) without zeroing dx first; elements no window covers are zeroed by the caller.
    """
    n, h, w, d = dx.shape
    ho, wo = dy.shape[1], dy.shape[2]
    if disjoint:
        for t in prange(n * ho):
            b = t // ho
            i = t - b * ho
            r0 = i * sh - pt
            for j in range(wo):
                c0 = j * sw - pl
                for u in range(ph):
                    r = r0 + u
                    if r < 0 or r >= h:
                        continue
                    for v in range(pw):
                        c = c0 + v
                        if c < 0 or c >= w:
                            continue
                        k = u * pw + v
                        for dd in range(d):
                            g = dy[b, i, j, dd]
                            dx[b, r, c, dd] = g if arg[b, i, j, dd] == k else 0
    else:
        for b in prange(n):
            for r in range(h):
                for c in range(w):
                    for dd in range(d):
                        dx[b, r, c, dd] = 0
            for i in range(ho):
                r0 = i * sh - pt
                for j in range(wo):
                    c0 = j * sw - pl
                    for u in range(ph):
                        r = r0 + u
                        if r < 0 or r >= h:
                            continue
                        for v in range(pw):
                            c = c0 + v
                            if c < 0 or c >= w:
                                continue
                            k = u * pw + v
                            for dd in range(d):
                                if arg[b, i, j, dd] == k:
                                    dx[b, r, c, dd] += dy[b, i, j, dd]


@jit(parallel=True)
def max_pool2x2_backward(dy, arg, dx):
    """max_pool2d_backward for 2x2 windows, stride 2, no padding: every element written once."""
    n, d = dx.shape[0], dx.shape[3]
    ho, wo = dy.shape[1], dy.shape[2]
    for t in prange(n * ho):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            for dd in range(d):
                k = arg[b, i, j, dd]
                g = dy[b, i, j, dd]
                dx[b, 2 * i, 2 * j, dd] = g if k == 0 else 0
                dx[b, 2 * i, 2 * j + 1, dd] = g if k == 1 else 0
                dx[b, 2 * i + 1, 2 * j, dd] = g if k == 2 else 0
                dx[b, 2 * i + 1, 2 * j + 1, dd] = g if k == 3 else 0


@jit(parallel=True)
def sum_pool2d_forward(x, ph, pw, sh, sw, pt, pl, counts, divide, y):
    """y = sum of the real elements of each window, in window order; divided by counts[i, j]
    (the number of real elements, in x's dtype) when ``divide`` (average pooling)."""
    n, h, w, d = x.shape
    ho, wo = y.shape[1], y.shape[2]
    for t in prange(n * ho):
        b = t // ho
        i = t - b * ho
        r0 = i * sh - pt
        for j in range(wo):
            c0 = j * sw - pl
            for dd in range(d):
                y[b, i, j, dd] = 0
            for u in range(ph):
                r = r0 + u
                if r < 0 or r >= h:
                    continue
                for v in range(pw):
                    c = c0 + v
                    if c < 0 or c >= w:
                        continue
                    for dd in range(d):
                        y[b, i, j, dd] += x[b, r, c, dd]
            if divide:
                cnt = counts[i, j]
                for dd in range(d):
                    y[b, i, j, dd] /= cnt


@jit(parallel=True)
def sum_pool2x2_forward(x, divide, y):
    """sum_pool2d_forward for 2x2 windows, stride 2, no padding: ((a0 + a1) + a2) + a3, the NumPy
    path's order, divided by 4 when ``divide``."""
    n, d = x.shape[0], x.shape[3]
    ho, wo = y.shape[1], y.shape[2]
    for t in prange(n * ho):
        b = t // ho
        i = t - b * ho
        for j in range(wo):
            for dd in range(d):
                s = x[b, 2 * i, 2 * j, dd] + x[b, 2 * i, 2 * j + 1, dd]
                s += x[b, 2 * i + 1, 2 * j, dd]
                s += x[b, 2 * i + 1, 2 * j + 1, dd]
                y[b, i, j, dd] = s / 4 if divide else s


@jit(parallel=True)
def sum_pool2d_backward(dy, ph, pw, sh, sw, pt, pl, counts, divide, disjoint, dx):
    """dx = dy (divided by the window's count when ``divide``) added onto every real element of
    its window; ``disjoint`` as in max_pool2d_backward."""
    n, h, w, d = dx.shape
    ho, wo = dy.shape[1], dy.shape[2]
    for b in prange(n):
        if not disjoint:
            for r in range(h):
                for c in range(w):
                    for dd in range(d):
                        dx[b, r, c, dd] = 0
        for i in range(ho):
            r0 = i * sh - pt
            for j in range(wo):
                c0 = j * sw - pl
                cnt = counts[i, j]
                for u in range(ph):
                    r = r0 + u
                    if r < 0 or r >= h:
                        continue
                    for v in range(pw):
                        c = c0 + v
                        if c < 0 or c >= w:
                            continue
                        if disjoint:
                            if divide:
                                for dd in range(d):
                                    dx[b, r, c, dd] = dy[b, i, j, dd] / cnt
                            else:
                                for dd in range(d):
                                    dx[b, r, c, dd] = dy[b, i, j, dd]
                        elif divide:
                            for dd in range(d):
                                dx[b, r, c, dd] += dy[b, i, j, dd] / cnt
                        else:
                            for dd in range(d):
                                dx[b, r, c, dd] += dy[b, i, j, dd]

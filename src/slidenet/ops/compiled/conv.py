"""Compiled convolution kernel: col2im, the adjoint of im2col, in one pass.

The input gradient of an im2col convolution is ``col2im(dy @ W^T)``: every row of the column
gradient dcols (N*Ho*Wo, Fh*Fw*D) is added back onto the window of the padded input it came from.
NumPy does that as Fh*Fw strided slice additions (or as Fh*Fw small GEMMs, one per filter tap,
``slidenet.ops.conv.conv2d_input_grad``); for inputs with few channels both are dominated by
per-call overhead and short strided runs, and one compiled loop is faster (1.4 vs 2.3 ms for
LeNet-5's second convolution at batch 100).

Also tried here and dropped, both slower than NumPy + BLAS on one thread: a direct one-channel
convolution (acc[k, j] += w[u, v, k] * xp[n, i + u, j + v], SIMD over the row: 4.3 ms vs 1.7 ms
for LeNet-5's conv1 forward) and its weight gradient (4.3 ms vs 0.9 ms for cols^T @ dy).

Arguments are arrays and ints only; the caller allocates the output. Tests compare with the NumPy
path (``SLIDENET_KERNELS=numpy``).
"""

from __future__ import annotations

from slidenet.ops.compiled import jit


@jit
def col2im_add(dcols, fh, fw, sh, sw, dh, dw, ho, wo, dxp):
    """dxp[n, i*sh + u*dh, j*sw + v*dw, d] += dcols[(n*Ho + i)*Wo + j, (u*Fw + v)*D + d].

    Args: dcols (N*Ho*Wo, Fh*Fw*D); dxp (N, Hp, Wp, D), zeroed by the caller. Without width
    stride or dilation, a window row (u fixed) is one contiguous run of Fw*D values in both arrays.
    """
    n, hp, wp, d = dxp.shape
    flat = dxp.reshape(n, hp, wp * d)
    run = fw * d
    for e in range(n):
        for i in range(ho):
            for j in range(wo):
                r = (e * ho + i) * wo + j
                for u in range(fh):
                    y0 = i * sh + u * dh
                    if sw == 1 and dw == 1:
                        out = flat[e, y0]
                        src = dcols[r]
                        o0, s0 = j * d, u * run
                        for t in range(run):
                            out[o0 + t] += src[s0 + t]
                    else:
                        for v in range(fw):
                            x0 = j * sw + v * dw
                            base = (u * fw + v) * d
                            for dd in range(d):
                                dxp[e, y0, x0, dd] += dcols[r, base + dd]

"""Hypothesis properties: the flip identity, mode consistency, a loop reference (the definition)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from slidenet.filters import convolve1d, convolve2d, correlate1d, correlate2d

BOUNDARIES = ("zero", "reflect", "nearest", "wrap")
FAST = settings(max_examples=60, deadline=None)
values = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def image_and_kernel(draw, max_side=7, max_kernel=8, odd=False):
    H, W = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    sizes = (
        st.integers(0, max_kernel // 2).map(lambda n: 2 * n + 1)
        if odd
        else st.integers(1, max_kernel)
    )
    Fh, Fw = draw(sizes), draw(sizes)
    channels = draw(st.sampled_from([(), (2,)]))
    x = draw(arrays(np.float64, (H, W, *channels), elements=values))
    k = draw(arrays(np.float64, (Fh, Fw), elements=values))
    return x, k


def extend(n, i, boundary):
    """Index of the pixel that position i (maybe outside 0..n-1) reads, or None for a zero."""
    if 0 <= i < n:
        return i
    if boundary == "zero":
        return None
    if boundary == "nearest":
        return min(max(i, 0), n - 1)
    if boundary == "wrap":
        return i % n
    m = i % (2 * n)  # reflect: d c b a | a b c d | d c b a, period 2n
    return m if m < n else 2 * n - 1 - m


def reference_correlate2d(x, k, mode, boundary):
    """y[i, j] = sum_{u,v} k[u, v] * x[i + u - ph, j + v - pw], read through the boundary."""
    (H, W), (Fh, Fw) = x.shape[:2], k.shape
    ph, pw = {"valid": (0, 0), "full": (Fh - 1, Fw - 1), "same": ((Fh - 1) // 2, (Fw - 1) // 2)}[
        mode
    ]
    Ho, Wo = {"valid": (H - Fh + 1, W - Fw + 1), "same": (H, W), "full": (H + Fh - 1, W + Fw - 1)}[
        mode
    ]
    y = np.zeros((Ho, Wo) + x.shape[2:])
    for i in range(Ho):
        for j in range(Wo):
            for u in range(Fh):
                for v in range(Fw):
                    r, c = extend(H, i + u - ph, boundary), extend(W, j + v - pw, boundary)
                    if r is not None and c is not None:
                        y[i, j] += k[u, v] * x[r, c]
    return y


@FAST
@given(image_and_kernel(), st.sampled_from(["same", "full", "valid"]), st.sampled_from(BOUNDARIES))
def test_correlate2d_matches_the_loop_definition(xk, mode, boundary):
    x, k = xk
    if mode == "valid" and (k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]):
        mode = "full"
    want = reference_correlate2d(x, k, mode, boundary)
    np.testing.assert_allclose(correlate2d(x, k, mode, boundary), want, rtol=1e-12, atol=1e-9)


@FAST
@given(image_and_kernel(), st.sampled_from(["valid", "full"]), st.sampled_from(BOUNDARIES))
def test_convolve_is_correlate_with_flipped_kernel(xk, mode, boundary):
    x, k = xk
    if mode == "valid" and (k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]):
        mode = "full"
    flipped = k[::-1, ::-1]
    np.testing.assert_array_equal(
        convolve2d(x, k, mode, boundary), correlate2d(x, flipped, mode, boundary)
    )


@FAST
@given(image_and_kernel(odd=True), st.sampled_from(BOUNDARIES))
def test_convolve_is_correlate_with_flipped_kernel_same_mode_odd(xk, boundary):
    x, k = xk
    np.testing.assert_array_equal(
        convolve2d(x, k, "same", boundary), correlate2d(x, k[::-1, ::-1], "same", boundary)
    )


@FAST
@given(image_and_kernel(odd=True), st.sampled_from(BOUNDARIES))
def test_same_is_the_centre_of_full_for_odd_kernels(xk, boundary):
    x, k = xk
    (H, W), (Fh, Fw) = x.shape[:2], k.shape
    full = correlate2d(x, k, "full", boundary)
    centre = full[(Fh - 1) // 2 : (Fh - 1) // 2 + H, (Fw - 1) // 2 : (Fw - 1) // 2 + W]
    np.testing.assert_allclose(correlate2d(x, k, "same", boundary), centre, rtol=1e-12, atol=1e-9)


@FAST
@given(
    arrays(np.float64, st.integers(1, 12), elements=values),
    arrays(np.float64, st.integers(1, 6), elements=values),
    st.sampled_from(["same", "full", "valid"]),
    st.sampled_from(BOUNDARIES),
)
def test_1d_is_the_column_case_of_2d(s, k, mode, boundary):
    if mode == "valid" and k.size > s.size:
        mode = "same"
    np.testing.assert_array_equal(
        correlate1d(s, k, mode, boundary), correlate2d(s[:, None], k[:, None], mode, boundary)[:, 0]
    )
    np.testing.assert_array_equal(
        convolve1d(s, k, mode, boundary), convolve2d(s[:, None], k[:, None], mode, boundary)[:, 0]
    )

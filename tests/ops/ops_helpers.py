"""Shared helpers for the op tests: recorded comparisons, gradient checks, torch glue.

The PyTorch oracle always computes in float64 on contiguous channels-first tensors built by
tests/torch_oracle.py; slidenet's float32 results are compared with that float64 reference at the
float32 tolerance below, its float64 results at the float64 one.

Every comparison goes through :func:`assert_close`, which also records the largest absolute and
relative difference per (op, check); run pytest with SLIDENET_OPS_ERRORS=1 to print the table.
"""

import numpy as np
import torch

from torch_oracle import ORACLE_DTYPE, to_numpy

ERRORS: dict[tuple[str, str], list[float]] = {}

# float32 compares at 1e-5 (relative, and absolute scaled to the magnitude of the expected values);
# float64 at 1e-10. Gradient checks (central differences in float64) must reach 1e-6.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
GRADCHECK_TOL = 1e-6
EPS = 1e-6


def record(op: str, check: str, abs_err: float, rel_err: float) -> None:
    """Keep the largest absolute and relative error seen for (op, check)."""
    worst = ERRORS.setdefault((op, check), [0.0, 0.0])
    worst[0], worst[1] = max(worst[0], abs_err), max(worst[1], rel_err)


def max_errors(actual, expected) -> tuple[float, float]:
    """(max |a - e|, max |a - e| / max |e|): the absolute error and the error relative to scale."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    abs_err = float(np.max(np.abs(a - e), initial=0.0))
    return abs_err, abs_err / max(float(np.max(np.abs(e), initial=0.0)), 1e-300)


def assert_close(actual, expected, *, op: str, check: str, tol: float | None = None) -> None:
    """Equal shapes and |a - e| <= tol * |e| + tol * max(1, max |e|) elementwise; records errors.

    The tolerance follows the dtype of ``actual`` (slidenet's result), so a float32 result is held
    to float32 accuracy against a float64 ``expected``. A torch ``expected`` must be float64.
    """
    if isinstance(expected, torch.Tensor):
        expected = from_torch(expected)
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (op, check, actual.shape, expected.shape)
    if tol is None:
        tol = TOL[np.result_type(actual.dtype, np.float32)]
    record(op, check, *max_errors(actual, expected))
    scale = max(1.0, float(np.max(np.abs(expected.astype(np.float64)), initial=0.0)))
    np.testing.assert_allclose(
        actual, expected, rtol=tol, atol=tol * scale, err_msg=f"{op} {check}"
    )


def distinct(rng: np.random.Generator, shape, dtype=np.float64, spacing=0.05) -> np.ndarray:
    """Values all different by at least ``spacing`` and none within spacing / 4 of zero.

    For max pooling and ReLU: no ties and no kinks within a finite-difference step.
    """
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size // 2 + 0.25) * spacing).reshape(shape).astype(dtype)


def numerical_grad(f, x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Central differences of the scalar f(x) with respect to every entry of x (float64)."""
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        grad[idx] = (f(xp) - f(xm)) / (2 * eps)
    return grad


def grad_rel_error(numeric, analytic) -> float:
    """max |numeric - analytic| / max(max |numeric|, max |analytic|)."""
    numeric, analytic = np.asarray(numeric, np.float64), np.asarray(analytic, np.float64)
    scale = max(np.max(np.abs(numeric)), np.max(np.abs(analytic)), 1e-300)
    return float(np.max(np.abs(numeric - analytic)) / scale)


def check_grads(f, inputs: dict, grads: dict, *, op: str) -> None:
    """All-entries check: for each name, d f(**inputs) / d inputs[name] must equal grads[name].

    f maps keyword arrays to a scalar. Relative error (see grad_rel_error) below GRADCHECK_TOL.
    """
    for name, analytic in grads.items():

        def f_of(v, name=name):
            return f(**{**inputs, name: v})

        numeric = numerical_grad(f_of, inputs[name])
        err = grad_rel_error(numeric, analytic)
        record(op, "gradcheck", float(np.max(np.abs(numeric - analytic))), err)
        assert err < GRADCHECK_TOL, f"{op}: d/d{name} relative error {err:.3g}"


def check_directions(f, inputs: dict, grads: dict, rng, *, op: str, n_dirs: int = 3) -> None:
    """Random-direction check: (f(x + eps v) - f(x - eps v)) / 2 eps against <grad, v>.

    v is standard normal, so <grad, v> is typically of size ||grad||; the error is taken relative to
    the largest of |numeric|, |<grad, v>| and ||grad||, so that a direction that happens to be
    nearly orthogonal to grad does not turn rounding noise into a large relative error.
    """
    for name, analytic in grads.items():
        for _ in range(n_dirs):
            v = rng.standard_normal(inputs[name].shape)
            plus = f(**{**inputs, name: inputs[name] + EPS * v})
            minus = f(**{**inputs, name: inputs[name] - EPS * v})
            numeric, exact = (plus - minus) / (2 * EPS), float(np.sum(analytic * v))
            scale = max(abs(numeric), abs(exact), float(np.linalg.norm(analytic)), 1e-300)
            err = abs(numeric - exact) / scale
            record(op, "gradcheck", abs(numeric - exact), err)
            assert err < GRADCHECK_TOL, f"{op}: direction d/d{name} relative error {err:.3g}"


def assert_unmodified(fn, *arrays):
    """Call fn(*arrays) and check that no argument changed (bit for bit); returns fn's result."""
    copies = [np.array(a, copy=True) for a in arrays]
    out = fn(*arrays)
    for before, after in zip(copies, arrays, strict=True):
        assert before.dtype == after.dtype
        np.testing.assert_array_equal(after, before)
    return out


# ---------------------------------------------------------------------------------- torch glue
# The tensors themselves come from tests/torch_oracle.py (float64, contiguous, channels-first):
# ``leaf(a)`` for arrays already in torch's layout, ``to_nchw(a)`` for channels-last arrays. These
# two read the oracle's float64 results back, refusing a result that was not computed in float64.


def from_torch(t: torch.Tensor) -> np.ndarray:
    """A float64 oracle tensor -> float64 NumPy array in the same layout."""
    assert t.dtype == ORACLE_DTYPE, f"the oracle ran in {t.dtype}"
    return to_numpy(t)


def from_nchw(t: torch.Tensor) -> np.ndarray:
    """A float64 channels-first oracle tensor -> float64 channels-last NumPy array."""
    assert t.dtype == ORACLE_DTYPE, f"the oracle ran in {t.dtype}"
    return to_numpy(t, True)


def tf_same_pads(n: int, f: int, s: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' rule, written out again for the oracle: ceil(n / s) outputs, the extra
    padding element at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + (f - 1) * dilation + 1 - n, 0)
    return total // 2, total - total // 2


def as_pair(v) -> tuple:
    return (v, v) if isinstance(v, int) else tuple(v)


def explicit_pads(padding, in_hw, kernel, strides, dilations):
    """((pt, pb), (pl, pr)) (one pair per axis) for any padding spec, independently of slidenet."""
    if padding == "valid":
        return ((0, 0),) * len(in_hw)
    if padding == "same":
        return tuple(
            tf_same_pads(n, f, s, d)
            for n, f, s, d in zip(in_hw, kernel, strides, dilations, strict=True)
        )
    if isinstance(padding, int):
        return ((padding, padding),) * len(in_hw)
    return tuple(as_pair(p) for p in padding)


def torch_pad(t: torch.Tensor, pads, value: float = 0.0) -> torch.Tensor:
    """Pad the spatial axes of an NCHW (or NCL) tensor by ((pt, pb), (pl, pr)) (or ((pl, pr),))."""
    flat = [p for pair in reversed(pads) for p in pair]
    return torch.nn.functional.pad(t, flat, value=value)

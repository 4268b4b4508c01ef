"""The one door between the tests and the PyTorch oracle.

Why this module exists: an oracle can be wrong. torch 2.13.0's float32 CPU convolution, given an
input whose memory is channels-last (what ``torch.tensor(nhwc).permute(0, 3, 1, 2)`` produces),
returns a wrong weight gradient for a 1x1 stride-2 convolution on AVX2 machines (oneDNN's AVX2
kernels) in most runs, and with one thread it corrupts the heap; our test blamed slidenet for it.
tests/test_torch_oracle_regression.py records that behaviour. So every oracle here:

- computes in float64 (oneDNN is not used for float64; the reference is exact to ~1e-15), and
- receives contiguous channels-first tensors (``.contiguous()`` after every permute).

slidenet's float32 results are then compared with the float64 reference at float32 tolerances and
its float64 results at float64 tolerances (:func:`assert_matches`). Tests never build torch tensors
from NumPy themselves: tests/test_oracle_discipline.py fails if one does.

Layouts: slidenet is channels-last (NHWC, NLC, NDHWC); torch is channels-first (NCHW, NCL).
"""

from __future__ import annotations

import numpy as np
import torch

ORACLE_DTYPE = torch.float64

#: Tolerances for slidenet's result against the float64 oracle, by slidenet's dtype. float32 is
#: compared relative to the magnitude of the reference (see :func:`assert_matches`).
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-5}


def leaf(a, grad: bool = True) -> torch.Tensor:
    """A float64, contiguous torch copy of ``a`` in the same layout (weights, labels, dy in torch's
    own layout). Records gradients unless ``grad=False``; integer arrays stay integer (labels)."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return torch.tensor(np.ascontiguousarray(a))
    t = torch.tensor(np.ascontiguousarray(a, dtype=np.float64), dtype=ORACLE_DTYPE)
    return t.requires_grad_(grad)


def to_nchw(a, grad: bool = True) -> torch.Tensor:
    """Channels-last NumPy array (N, ..., C) -> float64 contiguous channels-first leaf (N, C, ...).

    The leaf is in torch's layout, so its ``.grad`` is channels-first: read it back with
    :func:`to_numpy` (``channels_last=True``). Arrays of rank <= 2 are left as they are.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim > 2:
        a = np.moveaxis(a, -1, 1)
    return leaf(a, grad=grad)


def nchw(t: torch.Tensor) -> torch.Tensor:
    """Inside a torch function: channels-last tensor -> contiguous channels-first tensor."""
    if t.dim() <= 2:
        return t
    return t.permute(0, t.dim() - 1, *range(1, t.dim() - 1)).contiguous()


def nhwc(t: torch.Tensor) -> torch.Tensor:
    """Inside a torch function: channels-first tensor -> contiguous channels-last tensor."""
    if t.dim() <= 2:
        return t
    return t.permute(0, *range(2, t.dim()), 1).contiguous()


def to_numpy(t, channels_last: bool = False) -> np.ndarray:
    """A torch tensor (or None) -> float64 NumPy array, optionally moved to channels-last."""
    if t is None:
        return None
    if channels_last:
        t = nhwc(t)
    return t.detach().to(ORACLE_DTYPE).numpy().copy()


def assert_matches(ours, reference, what: str = "", tol: float | None = None) -> None:
    """slidenet's array against the float64 oracle, at the tolerance of slidenet's dtype.

    |ours - ref| <= tol * |ref| + tol * max(1, max |ref|) elementwise: float32 rounding grows with
    the magnitude of the values, so the absolute part scales with the largest reference value.
    The reference must be float64 (a torch tensor is converted with :func:`to_numpy`).
    """
    if isinstance(reference, torch.Tensor):
        assert reference.dtype == ORACLE_DTYPE, f"{what}: the oracle ran in {reference.dtype}"
        reference = to_numpy(reference)
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} vs oracle {reference.shape}"
    if tol is None:
        tol = TOL[np.result_type(ours.dtype, np.float32)]
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    np.testing.assert_allclose(
        ours.astype(np.float64), reference, rtol=tol, atol=tol * scale, err_msg=what
    )

"""Why tests/torch_oracle.py runs PyTorch in float64 on contiguous channels-first tensors.

Recorded behaviour of torch 2.13.0+cpu: the weight gradient of a 1x1, stride-2 ``F.conv2d`` in
float32 whose input memory is channels-last (``torch.randn(2, 6, 8, 2).permute(0, 3, 1, 2)``, which
is what converting an NHWC array by a bare permute gives) is wrong in most runs on AVX2 machines
(oneDNN's AVX2 kernels), by up to ~1e1 against the float64 result; with one thread the process can
abort with heap corruption ("corrupted size vs. prev_size"). The same convolution on a contiguous
NCHW input, or in float64, is right, and so is slidenet's.

oneDNN picks its kernels by the CPU, so on an AVX-512 machine the bug hides; ``ONEDNN_MAX_CPU_ISA
=AVX2`` makes oneDNN use its AVX2 kernels anywhere, which is how the "avx2" case reproduces it here.
torch runs in a subprocess so that a crash cannot take the test process down; a case is skipped
where torch agrees with float64 (the bug is absent there), so the suite never depends on the bug.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from slidenet import ops

TRIALS = 20

CHILD = r"""
import json, sys
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]))
rng = np.random.default_rng(0)
cases = []
for _ in range(int(sys.argv[2])):
    x_nhwc = rng.standard_normal((2, 6, 8, 2))
    w = rng.standard_normal((4, 2, 1, 1))
    dy = rng.standard_normal((2, 4, 3, 4))

    def weight_grad(x, dtype):
        x = x.to(dtype).requires_grad_(True)
        wt = torch.tensor(w, dtype=dtype, requires_grad=True)
        F.conv2d(x, wt, stride=2).backward(torch.tensor(dy, dtype=dtype))
        return wt.grad.double().numpy()

    channels_last = torch.tensor(x_nhwc).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
    cases.append({
        "x": x_nhwc.tolist(), "w": w.tolist(), "dy": dy.tolist(),
        "f32_channels_last": weight_grad(channels_last, torch.float32).tolist(),
        "f32_contiguous": weight_grad(channels_last.contiguous(), torch.float32).tolist(),
        "f64_contiguous": weight_grad(channels_last.contiguous(), torch.float64).tolist(),
    })
print(json.dumps(cases))
"""


def run_torch(threads: int, avx2: bool) -> tuple[int, list | None, str]:
    env = dict(os.environ)
    if avx2:
        env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(TRIALS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    cases = json.loads(proc.stdout) if proc.returncode == 0 else None
    return proc.returncode, cases, proc.stderr[-300:]


def error(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("avx2", [False, True], ids=["native", "avx2"])
@pytest.mark.parametrize("threads", [2, 1])
def test_float32_channels_last_conv_backward_vs_float64(threads, avx2):
    rc, cases, stderr = run_torch(threads, avx2)
    if rc != 0:
        # The crash seen with one thread: recorded, never a failure of the suite.
        pytest.skip(f"torch's float32 channels-last conv crashed its process (rc {rc}): {stderr}")
    wrong = [c for c in cases if error(c["f32_channels_last"], c["f64_contiguous"]) > 1e-3]
    # Whatever torch's float32 channels-last path does, the two paths our oracle relies on agree:
    for case in cases:
        assert error(case["f32_contiguous"], case["f64_contiguous"]) < 1e-4
        # ... and slidenet's float32 weight gradient agrees with torch's float64 one.
        x, dy = np.float32(case["x"]), np.float32(np.moveaxis(case["dy"], 1, -1))
        w = np.float32(np.transpose(case["w"], (2, 3, 1, 0)))  # (K, D, 1, 1) -> (1, 1, D, K)
        _, cache = ops.conv2d_forward(x, w, stride=2)
        _, dw, _ = ops.conv2d_backward(dy, cache)
        assert error(np.transpose(dw, (3, 2, 0, 1)), case["f64_contiguous"]) < 1e-4
    if not wrong:
        pytest.skip(f"torch's float32 channels-last backward agrees with float64 ({TRIALS} runs)")
    worst = max(error(c["f32_channels_last"], c["f64_contiguous"]) for c in wrong)
    print(f"torch float32 channels-last: {len(wrong)}/{TRIALS} wrong, worst |error| {worst:.3g}")

"""The teaching view: the arithmetic of convolution and pooling written out (``text``), and the
sliding window drawn frame by frame (``frames``, needs Pillow). ``slidenet explain`` and
``slidenet filter`` are thin wrappers around these functions.
"""

from slidenet.explain.frames import fit_size, render_frames, save_frames
from slidenet.explain.text import (
    KERNEL_NAMES,
    explain_conv,
    explain_model,
    explain_pool,
    parse_kernel,
)

__all__ = [
    "KERNEL_NAMES",
    "explain_conv",
    "explain_model",
    "explain_pool",
    "fit_size",
    "parse_kernel",
    "render_frames",
    "save_frames",
]

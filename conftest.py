"""pytest at the repository root: the compiled kernels' modules import Numba (the ``fast`` extra),
so their doctests are collected only where Numba is installed."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("numba") else ["src/slidenet/ops/compiled"]

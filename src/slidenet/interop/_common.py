"""Shared pieces of ONNX export and import: the lazy onnx import, errors, layout permutations.

slidenet is channels-last (NHWC, NLC); ONNX's Conv, pooling and BatchNormalization are
channels-first (NCHW, NCL). A tensor of rank r moves between the two with the permutations below.
"""

from __future__ import annotations

from slidenet.models.saving import ModelFileError

#: Opsets the exporter writes (13: Softmax over one axis; 11: Pad-free asymmetric pads).
MIN_OPSET = 13
INSTALL_HINT = "pip install 'slidenet[onnx]' (or pip install onnx)"


class OnnxFileError(ModelFileError):
    """An ONNX file that cannot be read: missing, truncated, corrupt or not an ONNX model."""


class UnsupportedOnnxError(ValueError):
    """An ONNX graph (or a slidenet model) that has no equivalent on the other side."""


def require_onnx(who: str):
    """Import and return the ``onnx`` package, or raise ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"{who} needs the onnx package: {INSTALL_HINT}.") from None
    return onnx


def to_channels_first(rank: int) -> tuple[int, ...]:
    """Transpose perm (N, ..., C) -> (N, C, ...): (0, 3, 1, 2) for rank 4.

    >>> to_channels_first(4), to_channels_first(3)
    ((0, 3, 1, 2), (0, 2, 1))
    """
    return (0, rank - 1, *range(1, rank - 1))


def to_channels_last(rank: int) -> tuple[int, ...]:
    """Transpose perm (N, C, ...) -> (N, ..., C): (0, 2, 3, 1) for rank 4.

    >>> to_channels_last(4)
    (0, 2, 3, 1)
    """
    return (0, *range(2, rank), 1)

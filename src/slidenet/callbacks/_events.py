"""TensorBoard event files without TensorFlow: TFRecord framing, CRC32C, hand-encoded protocol
buffers (``Event``, ``Summary``, ``HistogramProto``, ``Summary.Image``) and a PNG encoder.

A TFRecord is ``length (uint64 LE) | masked_crc32c(length) (uint32 LE) | data |
masked_crc32c(data) (uint32 LE)``; the mask is ``((crc >> 15) | (crc << 17)) + 0xA282EAD8``.
The protocol buffer field numbers are those of tensorflow/core/util/event.proto and
tensorflow/core/framework/summary.proto.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np


def _crc32c_table():
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):  # reflected Castagnoli polynomial 0x1EDC6F41
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return [int(v) for v in table]


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``: ``crc32c(b"123456789") == 0xE3069283``."""
    crc, table = 0xFFFFFFFF, _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


# ----- protocol buffer wire format ----------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field, value) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _double(field, value) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value))


def _float(field, value) -> bytes:
    return _key(field, 5) + struct.pack("<f", float(value))


def _bytes(field, data) -> bytes:
    data = data.encode() if isinstance(data, str) else bytes(data)
    return _key(field, 2) + _varint(len(data)) + data


def _packed_doubles(field, values) -> bytes:
    return _bytes(field, np.asarray(values, dtype="<f8").tobytes())


def event(wall_time, step, *, file_version=None, values=()) -> bytes:
    """An ``Event``: wall_time = 1, step = 2, file_version = 3, summary = 5 (whose repeated
    ``value`` is field 1)."""
    out = _double(1, wall_time) + _int(2, step)
    if file_version is not None:
        out += _bytes(3, file_version)
    if values:
        out += _bytes(5, b"".join(_bytes(1, v) for v in values))
    return out


def scalar_value(tag, value) -> bytes:
    """A ``Summary.Value`` with tag = 1 and simple_value = 2 (a float32)."""
    return _bytes(1, tag) + _float(2, value)


def histogram(values, bins=30) -> dict:
    """min, max, num, sum, sum_squares, bucket_limit (right edges) and bucket (counts) of
    ``values`` in ``bins`` equal-width buckets from min to max (TensorFlow 2's default)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        limits, counts = np.array([hi]), np.array([v.size], dtype=np.float64)
    else:
        counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
        limits, counts = edges[1:], counts.astype(np.float64)
    return {
        "min": lo,
        "max": hi,
        "num": float(v.size),
        "sum": float(v.sum()),
        "sum_squares": float(np.dot(v, v)),
        "bucket_limit": limits,
        "bucket": counts,
    }


def histogram_value(tag, values) -> bytes:
    """A ``Summary.Value`` with histo = 5: a ``HistogramProto`` (min 1, max 2, num 3, sum 4,
    sum_squares 5, bucket_limit 6 and bucket 7, both packed doubles)."""
    h = histogram(values)
    proto = b"".join(
        _double(i, h[k]) for i, k in enumerate(("min", "max", "num", "sum", "sum_squares"), 1)
    )
    proto += _packed_doubles(6, h["bucket_limit"]) + _packed_doubles(7, h["bucket"])
    return _bytes(1, tag) + _bytes(5, proto)


def image_value(tag, pixels) -> bytes:
    """A ``Summary.Value`` with image = 4: ``Summary.Image`` (height 1, width 2, colorspace 3,
    encoded_image_string 4) holding ``pixels`` (uint8 (H, W) or (H, W, 3)) as a PNG."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    proto = _int(1, h) + _int(2, w) + _int(3, channels) + _bytes(4, png(pixels))
    return _bytes(1, tag) + _bytes(4, proto)


def png(pixels) -> bytes:
    """8-bit grayscale (H, W) or RGB (H, W, 3) pixels as PNG bytes (zlib from the standard
    library; no imaging package needed)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    color_type = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def filter_grid(kernel, tile=32) -> np.ndarray:
    """A Conv2D kernel (Fh, Fw, D, K) as one uint8 image: a row of K tiles per input channel
    (one RGB row when D is 3), each filter enlarged to about ``tile`` pixels with a 1-pixel
    gap; values mapped linearly from the kernel's [min, max] to [0, 255]."""
    w = np.asarray(kernel, dtype=np.float64)
    fh, fw, d, k = w.shape
    lo, hi = w.min(), w.max()
    scaled = np.full(w.shape, 128.0) if hi == lo else (w - lo) / (hi - lo) * 255
    scaled = np.round(scaled).astype(np.uint8)
    s = max(1, -(-tile // max(fh, fw)))  # enlargement factor
    big = scaled.repeat(s, axis=0).repeat(s, axis=1)  # (Fh s, Fw s, D, K)
    th, tw = fh * s, fw * s
    rgb = d == 3
    rows = 1 if rgb else d
    out = np.zeros((rows * (th + 1) - 1, k * (tw + 1) - 1) + ((3,) if rgb else ()), np.uint8)
    for r in range(rows):
        for c in range(k):
            tile_px = big[:, :, :, c] if rgb else big[:, :, r, c]
            out[r * (th + 1) : r * (th + 1) + th, c * (tw + 1) : c * (tw + 1) + tw] = tile_px
    return out

"""read_idx / write_idx: round trips, gzip detection, and every header check with its message."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from slidenet.datasets.utils import IDXFormatError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype(tmp_path, dtype, suffix):
    values = np.arange(60).reshape(3, 4, 5) * 2.5  # 0 .. 147.5
    if np.dtype(dtype).kind != "u":
        values -= 70  # negative values too
    array = values.astype(dtype)  # integer dtypes truncate the .5
    out = read_idx(write_idx(tmp_path / f"a-idx3{suffix}", array))
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_big_endian_payload_is_decoded(tmp_path):
    # 0x0B int16: 0x0102 = 258 and 0xFFFE = -2 when read big-endian.
    f = tmp_path / "x"
    f.write_bytes(header(0x0B, (2,)) + bytes([0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(f), np.array([258, -2], dtype=np.int16))


def test_mnist_like_header_layout(tmp_path):
    # the exact bytes of an MNIST label file: magic 0x00000801, count, labels
    f = tmp_path / "labels"
    f.write_bytes(bytes.fromhex("00000801") + (3).to_bytes(4, "big") + bytes([5, 0, 4]))
    out = read_idx(f)
    assert out.shape == (3,) and out.dtype == np.uint8
    assert out.tolist() == [5, 0, 4]


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw = header(0x08, (3, 4)) + array.tobytes()
    gz_without_suffix = tmp_path / "images-idx2-ubyte"
    gz_without_suffix.write_bytes(gzip.compress(raw))
    raw_with_gz_suffix = tmp_path / "images-idx2-ubyte.gz"
    raw_with_gz_suffix.write_bytes(raw)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), array)


def test_truncated_payload_message(tmp_path):
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(gzip.compress(header(0x08, (60000, 28, 28)) + bytes(1000)))
    expected = (
        f"read_idx: '{f}' is truncated: header declares 60000x28x28 uint8 = 47040000 bytes of "
        f"data, found 1000."
    )
    with pytest.raises(IDXFormatError, match=re.escape(expected)):
        read_idx(f)


def test_trailing_bytes(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(header(0x0C, (2, 3)) + bytes(24 + 5))
    with pytest.raises(IDXFormatError, match=r"has 5 trailing bytes: .* 2x3 int32 = 24 bytes"):
        read_idx(f)


def test_wrong_magic(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(bytes([0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7]))
    with pytest.raises(IDXFormatError, match=r"'.*x' is not an IDX file: .* found 0x12 0x34"):
        read_idx(f)


def test_zip_archive_gets_a_hint(tmp_path):
    f = tmp_path / "mnist.npz"
    np.savez(f, a=np.zeros(3))
    with pytest.raises(IDXFormatError, match="looks like a zip or .npz archive"):
        read_idx(f)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_unknown_dtype_code(tmp_path, code):
    f = tmp_path / "x"
    f.write_bytes(header(code, (1,)) + bytes(8))
    with pytest.raises(IDXFormatError, match=rf"unknown data-type code 0x{code:02x}; IDX defines"):
        read_idx(f)


def test_zero_dimensions(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(IDXFormatError, match="declares 0 dimensions"):
        read_idx(f)


def test_truncated_header(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 20]))  # 3 dims need 16 header bytes
    with pytest.raises(IDXFormatError, match=r"truncated: its header declares 3 dimensions"):
        read_idx(f)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_shorter_than_the_magic(tmp_path, content):
    f = tmp_path / "x"
    f.write_bytes(content)
    with pytest.raises(IDXFormatError, match=f"at least 4 bytes, found {len(content)}"):
        read_idx(f)


def test_damaged_gzip(tmp_path):
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(header(0x08, (100,)) + bytes(100))[:-12])  # cut the stream
    with pytest.raises(IDXFormatError, match=r"'.*x\.gz' is a damaged gzip file"):
        read_idx(f)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_errors_are_value_errors():
    assert issubclass(IDXFormatError, ValueError)


def test_write_idx_gz_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8)
    a = write_idx(tmp_path / "a.gz", array).read_bytes()
    b = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert a == b and a[:2] == b"\x1f\x8b"


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(3, dtype=np.uint16), "dtype uint16 has no IDX code"),
        (np.zeros(3, dtype=np.int64), "dtype int64 has no IDX code"),
        (np.array(5, dtype=np.uint8), "needs 1 to 255 dimensions, got 0"),
    ],
)
def test_write_idx_refuses(tmp_path, array, message):
    with pytest.raises(ValueError, match=message):
        write_idx(tmp_path / "x", array)

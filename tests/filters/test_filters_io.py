"""load_image / save_image: conversions, round trips, atomic writes, the Pillow hint."""

import sys

import numpy as np
import pytest
from PIL import Image

from slidenet.filters import load_image, save_image


def uint8_image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_uint8_round_trip_is_exact(tmp_path, shape, suffix):
    a = uint8_image(shape)
    path = tmp_path / f"img{suffix}"
    save_image(path, a)
    b = load_image(path)
    assert b.dtype == np.float32 and b.shape == shape
    assert b.min() >= 0.0 and b.max() <= 1.0
    np.testing.assert_array_equal(np.round(b * 255).astype(np.uint8), a)
    np.testing.assert_array_equal(b, a.astype(np.float32) / np.float32(255))


def test_float_round_trip_within_half_a_level(tmp_path):
    x = np.random.default_rng(1).random((6, 4, 3))
    save_image(tmp_path / "f.png", x)
    y = load_image(tmp_path / "f.png")
    assert np.abs(y - x).max() <= 0.5 / 255 + 1e-7
    stored = np.asarray(Image.open(tmp_path / "f.png"))
    np.testing.assert_array_equal(stored, np.round(x * 255).astype(np.uint8))


def test_floats_are_clipped_and_single_channel_is_grayscale(tmp_path):
    x = np.array([[-0.5, 0.0, 0.5], [1.0, 1.5, 0.2]], dtype=np.float32)[:, :, None]
    save_image(tmp_path / "c.png", x)
    with Image.open(tmp_path / "c.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), [[0, 0, 128], [255, 255, 51]])


def test_format_is_inferred_from_the_suffix(tmp_path):
    save_image(tmp_path / "a.JPG", np.zeros((8, 8, 3)))
    save_image(tmp_path / "b.bmp", np.zeros((8, 8)))
    with Image.open(tmp_path / "a.JPG") as a, Image.open(tmp_path / "b.bmp") as b:
        assert (a.format, b.format) == ("JPEG", "BMP")


def test_load_modes_alpha_and_conversion(tmp_path):
    rgba = uint8_image((4, 5, 4), seed=2)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    x = load_image(tmp_path / "rgba.png")
    assert x.shape == (4, 5, 3)  # alpha dropped
    np.testing.assert_array_equal(np.round(x * 255), rgba[:, :, :3])
    gray = load_image(tmp_path / "rgba.png", mode="l")  # case-insensitive
    assert gray.shape == (4, 5) and gray.dtype == np.float32
    r, g, b = (rgba[:, :, c].astype(float) for c in range(3))
    luma = r * 299 / 1000 + g * 587 / 1000 + b * 114 / 1000  # ITU-R 601, as Pillow
    assert np.abs(gray * 255 - luma).max() <= 1.0

    g8 = uint8_image((3, 6), seed=3)
    Image.fromarray(g8).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (3, 6)
    rgb = load_image(tmp_path / "g.png", mode="RGB")
    assert rgb.shape == (3, 6, 3)
    np.testing.assert_array_equal(rgb[:, :, 1], g8 / np.float32(255))


def test_16_bit_grayscale_is_scaled_to_unit_range(tmp_path):
    a = np.array([[0, 1000, 65535], [32768, 7, 40000]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    x = load_image(tmp_path / "g16.png")
    assert x.dtype == np.float32 and x.shape == (2, 3)
    np.testing.assert_allclose(x, a / 65535.0, rtol=1e-6)
    assert load_image(tmp_path / "g16.png", mode="RGB").shape == (2, 3, 3)


def test_failing_save_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((4, 4)))
    old = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(path, np.ones((4, 4)))
    with pytest.raises(OSError, match="disk full"):
        save_image(tmp_path / "new.png", np.ones((4, 4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert path.read_bytes() == old


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match=r"save_image: cannot tell the image format.*'\.xyz'"):
        save_image(tmp_path / "a.xyz", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"shape \(H, W\), \(H, W, 1\) or \(H, W, 3\), got.*4\)"):
        save_image(tmp_path / "a.png", np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"integer arrays must be uint8.*int64"):
        save_image(tmp_path / "a.png", np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"NaN or Inf"):
        save_image(tmp_path / "a.png", np.full((2, 2), np.nan))
    with pytest.raises(FileNotFoundError, match=r"save_image: directory .* does not exist"):
        save_image(tmp_path / "missing" / "a.png", np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(
        ValueError, match=r"load_image: Unknown mode 'RGBA'\. Valid modes: 'L', 'RGB'"
    ):
        load_image(tmp_path / "x.png", mode="RGBA")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.png")


def test_missing_pillow_gives_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install slidenet\[images\]"):
        save_image(tmp_path / "a.png", np.zeros((2, 2)))
    with pytest.raises(ImportError, match=r"load_image needs Pillow"):
        load_image(tmp_path / "a.png")

"""`slidenet filter` and `slidenet explain`, in-process, on small images written here."""

from __future__ import annotations

import numpy as np
import pytest

from slidenet import filters
from slidenet.cli import main

pytest.importorskip("PIL")


def _run(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "in.png"
    filters.save_image(path, rng.integers(0, 256, (20, 16), dtype=np.uint8))
    return path


@pytest.mark.parametrize(
    ("spec", "kernel", "extra"),
    [
        ("gaussian:5:1.2", filters.gaussian(5, 1.2), ()),
        ("shift:0:1", filters.shift(0, 1), ("--boundary", "reflect")),
        ("box:3", filters.box(3), ("--mode", "valid")),
    ],
)
def test_filter_writes_the_correlation(capsys, tmp_path, image, spec, kernel, extra):
    out = tmp_path / "out.png"
    code, stdout, err = _run(capsys, "filter", image, "--kernel", spec, *extra, "-o", out)
    assert code == 0, err
    x = filters.load_image(image)
    mode = extra[1] if extra and extra[0] == "--mode" else "same"
    boundary = extra[1] if extra and extra[0] == "--boundary" else "zero"
    want = filters.correlate2d(x, kernel, mode=mode, boundary=boundary)
    want = np.round(np.clip(want.astype(np.float64), 0, 1) * 255)
    got = filters.load_image(out) * 255
    np.testing.assert_allclose(got, want, atol=1)
    assert "wrote" in stdout


def test_filter_convolve_kernel_file_and_compare(capsys, tmp_path, image):
    kfile = tmp_path / "k.txt"
    kfile.write_text("0 0 0\n0 0 1\n0 0 0\n")
    out = tmp_path / "cmp.png"
    code, _, err = _run(
        capsys, "filter", image, "--kernel", kfile, "--convolve", "--compare", "-o", out
    )
    assert code == 0, err
    x = filters.load_image(image)
    got = filters.load_image(out)
    assert got.shape == (20, 32)  # before and after side by side: twice the width
    np.testing.assert_allclose(got[:, :16], x, atol=1 / 255)
    after = filters.convolve2d(x, np.loadtxt(kfile))
    np.testing.assert_allclose(got[:, 16:], after, atol=1 / 255)


def test_filter_bad_kernel_is_one_line(capsys, tmp_path, image):
    code, _, err = _run(capsys, "filter", image, "--kernel", "sobelx", "-o", tmp_path / "o.png")
    assert code == 1
    assert "Did you mean 'sobel-x'" in err and len(err.strip().splitlines()) == 1


def test_explain_conv_text(capsys):
    code, out, err = _run(
        capsys,
        "explain",
        "conv",
        "--input",
        "32x32x3",
        "--filters",
        "10",
        "--kernel",
        "5",
        "--stride",
        "1",
        "--padding",
        "2",
    )
    assert code == 0, err
    assert "32x32x10" in out and "(32 - 5 + 2*2)/1 + 1 = 32" in out and "760" in out


def test_explain_conv_not_tiling(capsys):
    code, out, _ = _run(
        capsys, "explain", "conv", "--input", "7x7x1", "--kernel", "3", "--stride", "3"
    )
    assert code == 0
    assert "2.33" in out and "stride 2" in out and "padding 1" in out


def test_explain_conv_frames_gif(capsys, tmp_path, image):
    from PIL import Image

    gif = tmp_path / "slide.gif"
    code, out, err = _run(
        capsys,
        "explain",
        "conv",
        "--image",
        image,
        "--kernel",
        "sobel-x",
        "--frames",
        gif,
        "--max-frames",
        "12",
    )
    assert code == 0, err
    with Image.open(gif) as im:
        assert 1 < im.n_frames <= 12
        im.seek(0)
        first = np.asarray(im.convert("RGB")).astype(int)
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB")).astype(int)

    def red(a):
        ys, xs = np.nonzero((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60))
        return xs.min(), ys.min()

    assert red(first)[0] < red(last)[0] and red(first)[1] < red(last)[1]  # top-left first


def test_explain_conv_png_frames(capsys, tmp_path, image):
    folder = tmp_path / "frames"
    code, _, err = _run(
        capsys,
        "explain",
        "conv",
        "--image",
        image,
        "--kernel",
        "3",
        "--padding",
        "same",
        "--frames",
        folder,
        "--png",
        "--max-frames",
        "4",
    )
    assert code == 0, err
    assert len(list(folder.glob("frame_*.png"))) == 4


def test_explain_pool_and_model(capsys):
    code, out, _ = _run(capsys, "explain", "pool", "--input", "28x28x32", "--pool", "2")
    assert code == 0 and "(28 - 2)/2 + 1 = 14" in out
    code, out, err = _run(capsys, "explain", "model", "mnist_cnn")
    assert code == 0, err
    assert "(5*5*1 + 1)*32 = 832" in out and "(14 - 5 + 2*2)/1 + 1 = 14" in out
    assert "(3136 + 1)*1024" in out and "Total params: 3,274,634" in out


def test_explain_usage_errors(capsys):
    code, _, err = _run(capsys, "explain")
    assert code == 2 and "conv, pool or model" in err
    code, _, err = _run(capsys, "explain", "conv", "--kernel", "3")
    assert code == 2 and "--input" in err
    code, _, err = _run(capsys, "explain", "conv", "--input", "abc", "--kernel", "3")
    assert code == 2 and "HxWxD" in err

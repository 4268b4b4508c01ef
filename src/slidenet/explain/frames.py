"""The sliding window, drawn: frames of a kernel moving over an image (needs Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slidenet._validation import unknown_name
from slidenet.explain.text import parse_kernel

__all__ = ["fit_size", "render_frames", "save_frames"]

_RED = (255, 0, 0)
_MARGIN = 8
_TITLE = 14


def render_frames(
    image,
    kernel,
    mode: str = "valid",
    boundary: str = "zero",
    stride: int = 1,
    max_frames: int = 60,
    max_size: int = 48,
    cell: int | None = None,
):
    """Frames of the kernel sliding over an image: the (padded) input with the current window
    outlined in red, the activation map filling in, and the dot product for that position.

    Args:
        image: (H, W) or (H, W, C) array in [0, 1] (colour is turned to gray by the mean).
        kernel: a (Fh, Fw) array or a spec for ``parse_kernel``.
        mode, boundary: as ``slidenet.filters.correlate2d``. stride: step between positions.
        max_frames: at most this many frames; positions are sampled evenly (first and last kept).
        max_size: images larger than this (either side) are downscaled first.
        cell: screen pixels per image pixel (default: about 256 / the padded size).

    Returns:
        A list of RGB ``PIL.Image`` frames, all the same size. The first shows the top-left window.
    """
    from slidenet.filters.correlate import _PAD_MODES, _padding
    from slidenet.filters.io import _pil_image

    Image = _pil_image("render_frames")
    from PIL import ImageDraw, ImageFont

    k = parse_kernel(kernel)
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3:
        x = x.mean(axis=2)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"render_frames: image must be (H, W) or (H, W, C), got {np.shape(image)}")
    if max(x.shape) > max_size:
        h, w = fit_size(x.shape, max_size)
        size = (w, h)
        small = Image.fromarray(np.clip(x * 255, 0, 255).astype(np.uint8)).resize(
            size, Image.Resampling.BILINEAR
        )
        x = np.asarray(small, dtype=np.float64) / 255.0
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"render_frames: {unknown_name('mode', mode, ('valid', 'same', 'full'))}")
    if boundary not in _PAD_MODES:
        raise ValueError(f"render_frames: {unknown_name('boundary', boundary, _PAD_MODES)}")
    Fh, Fw = k.shape
    pads = [_padding(F, mode, False) for F in (Fh, Fw)]
    xp = np.pad(x, pads, mode=_PAD_MODES[boundary])
    Hp, Wp = xp.shape
    stride = int(stride)
    if Fh > Hp or Fw > Wp:
        raise ValueError(
            f"render_frames: kernel {Fh}x{Fw} does not fit image {x.shape[0]}x{x.shape[1]} with "
            f"mode={mode!r}; use mode='same' or a smaller kernel"
        )
    rows = list(range(0, Hp - Fh + 1, stride))
    cols = list(range(0, Wp - Fw + 1, stride))
    y = np.array([[np.sum(k * xp[i : i + Fh, j : j + Fw]) for j in cols] for i in rows])
    Ho, Wo = y.shape
    lo, hi = float(y.min()), float(y.max())
    y_show = (y - lo) / (hi - lo) if hi > lo else np.full_like(y, 0.5)

    c = cell or max(2, min(16, 256 // max(Hp, Wp)))
    font = ImageFont.load_default()
    in_w, in_h = Wp * c, Hp * c
    out_x = _MARGIN * 3 + in_w
    top = _MARGIN + _TITLE
    text_top = top + max(in_h, Ho * c) + _MARGIN
    n_text = min(Fh, 8) + 2
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sample = _dot_lines(k, xp[:Fh, :Fw], 0, 0, y[0, 0])
    text_w = max(probe.textbbox((0, 0), line, font=font)[2] for line in sample)
    width = max(out_x + Wo * c + _MARGIN, text_w + 2 * _MARGIN)
    height = text_top + n_text * 12 + _MARGIN

    base = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(base)
    gray = np.clip(xp * 255, 0, 255).astype(np.uint8)
    tint = np.zeros((Hp, Wp), dtype=bool)
    tint[pads[0][0] : Hp - pads[0][1], pads[1][0] : Wp - pads[1][1]] = True
    panel = np.repeat(gray[:, :, None], 3, axis=2)
    panel[~tint] = (panel[~tint] * 0.6 + np.array([0, 0, 100])).astype(np.uint8)  # padding: blue
    base.paste(
        Image.fromarray(panel).resize((in_w, in_h), Image.Resampling.NEAREST), (_MARGIN, top)
    )
    draw.text((_MARGIN, _MARGIN - 2), f"input {x.shape[0]}x{x.shape[1]}", fill=0, font=font)
    draw.text((out_x, _MARGIN - 2), f"activation map {Ho}x{Wo}", fill=0, font=font)
    draw.rectangle([out_x, top, out_x + Wo * c - 1, top + Ho * c - 1], fill=(225, 235, 225))

    n_pos = Ho * Wo
    if n_pos <= max_frames:
        picks = list(range(n_pos))
    else:
        picks = sorted(set(np.linspace(0, n_pos - 1, max(2, max_frames)).round().astype(int)))
    out_img = np.clip(y_show * 255, 0, 255).astype(np.uint8)
    frames, done = [], 0
    canvas = base.copy()
    for pos in picks:
        pd = ImageDraw.Draw(canvas)
        while done <= pos:  # fill the activation map up to this position (raster order)
            a, b = divmod(done, Wo)
            v = int(out_img[a, b])
            x0, y0 = out_x + b * c, top + a * c
            pd.rectangle([x0, y0, x0 + c - 1, y0 + c - 1], fill=(v, v, v))
            done += 1
        frame = canvas.copy()
        fd = ImageDraw.Draw(frame)
        a, b = divmod(pos, Wo)
        i, j = rows[a], cols[b]
        x0, y0 = _MARGIN + j * c, top + i * c
        fd.rectangle([x0 - 1, y0 - 1, x0 + Fw * c, y0 + Fh * c], outline=_RED, width=2)
        ox, oy = out_x + b * c, top + a * c
        fd.rectangle([ox - 1, oy - 1, ox + c, oy + c], outline=(0, 160, 0), width=2)
        for n, line in enumerate(_dot_lines(k, xp[i : i + Fh, j : j + Fw], a, b, y[a, b])):
            fd.text((_MARGIN, text_top + 12 * n), line, fill=0, font=font)
        frames.append(frame)
    return frames


def fit_size(shape, max_size: int) -> tuple[int, int]:
    """(H, W) of an image of ``shape`` after ``render_frames`` downscales it to ``max_size``."""
    h, w = int(shape[0]), int(shape[1])
    if max(h, w) <= max_size:
        return h, w
    scale = max_size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _dot_lines(k, window, a, b, value) -> list[str]:
    """The dot product at output (a, b), one kernel row per line (abbreviated for big kernels)."""
    Fh, Fw = k.shape
    lines = [f"y[{a},{b}] = sum of kernel * window ="]
    for u in range(min(Fh, 8)):
        terms = [f"{k[u, v]:.2f}*{window[u, v]:.2f}" for v in range(min(Fw, 6))]
        more = " + ..." if Fw > 6 else ""
        lines.append(("  " if u == 0 else "+ ") + " + ".join(terms) + more)
    if Fh > 8:
        lines[-1] += "  + ... more rows"
    lines.append(f"= {value:.3f}")
    return lines


def save_frames(frames, path, png: bool = False, duration_ms: int = 150) -> list[Path]:
    """Write frames as an animated GIF at ``path``, or (``png=True``) as ``frame_000.png``, ...
    in the folder ``path`` (created). Returns the files written."""
    path = Path(path)
    if not frames:
        raise ValueError("save_frames: no frames to write")
    if png:
        path.mkdir(parents=True, exist_ok=True)
        files = []
        for n, frame in enumerate(frames):
            files.append(path / f"frame_{n:03d}.png")
            frame.save(files[-1])
        return files
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {str(path.parent)!r} does not exist; create it first")
    frames[0].save(
        path, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0
    )
    return [path]

"""The report in a real browser: headless Chromium decodes every picture, logs no error.

Chromium is driven over the DevTools protocol on a pipe (viz_cdp.py, standard library only).
Without Chromium the test is skipped, unless SLIDENET_REQUIRE_BROWSER is set (CI sets it, and
.ci/run installs Debian's chromium), in which case it fails.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image
from viz_cdp import Browser, find_chromium
from viz_helpers import trained_tiny

import slidenet.viz as viz

IMAGES = (
    "JSON.stringify(Array.from(document.images).map("
    "i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt]))"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_chromium()
    if binary is None:
        if os.environ.get("SLIDENET_REQUIRE_BROWSER"):
            pytest.fail(
                "SLIDENET_REQUIRE_BROWSER is set but no chromium was found; install Debian's "
                "chromium (apt-get install chromium chromium-driver) or set SLIDENET_CHROMIUM"
            )
        pytest.skip("chromium is not installed (set SLIDENET_REQUIRE_BROWSER=1 to fail instead)")
    b = Browser(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def _images(browser):
    import json

    return json.loads(browser.evaluate(IMAGES))


def test_report_renders_in_chromium_with_every_image_decoded(browser, tmp_path):
    model, x, y = trained_tiny()
    path = tmp_path / "report.html"
    viz.write_report(path, model, x[:30], y[:30], class_names=["bottom", "top"], examples=2)
    browser.open(path.as_uri())
    images = _images(browser)
    assert len(images) == 12
    for complete, width, height, alt in images:
        assert complete and width > 0 and height > 0, alt
    assert browser.evaluate("document.title") == f"slidenet report: {model.name}"
    assert browser.errors == []
    shot = browser.screenshot()
    (tmp_path / "report.png").write_bytes(shot)
    with Image.open(io.BytesIO(shot)) as image:
        assert image.size == (1200, 1600)
        assert np.asarray(image.convert("L"), dtype=float).std() > 10  # content, not a blank page


def test_the_browser_check_catches_a_broken_image_and_a_blocked_resource(browser, tmp_path):
    """The checks above can fail: a PNG that does not decode has naturalWidth 0, and anything the
    report's Content-Security-Policy blocks (a script here) is logged as an error."""
    model, x, y = trained_tiny(epochs=1, n=16)
    text = viz.build_report(model, x[:8], y[:8], examples=0)
    broken = text.replace(
        "</body>",
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="broken">'
        "<script>console.log('not allowed')</script></body>",
    )
    path = tmp_path / "broken.html"
    path.write_text(broken, encoding="utf-8")
    browser.open(path.as_uri())
    widths = {alt: width for _, width, _, alt in _images(browser)}
    assert widths.pop("broken") == 0
    assert all(w > 0 for w in widths.values())
    assert any("Content Security Policy" in e for e in browser.errors), browser.errors

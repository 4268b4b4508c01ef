"""The report in a real browser: headless Chromium decodes every picture, logs no error.

Chromium is driven by Playwright (tests/browser_harness.py, shared with the explore tests).
Without Playwright or Chromium the test is skipped, unless SLIDENET_REQUIRE_BROWSER is set (CI
sets it, and .ci/run installs Debian's chromium), in which case it fails.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from viz_helpers import trained_tiny

import slidenet.viz as viz
from browser_harness import Watch, launch

IMAGES = (
    "() => Array.from(document.images).map("
    "i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])"
)


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 1600})
    page = context.new_page()
    page.watch = Watch(page)
    yield page
    context.close()


def test_report_renders_in_chromium_with_every_image_decoded(page, tmp_path):
    model, x, y = trained_tiny()
    path = tmp_path / "report.html"
    viz.write_report(path, model, x[:30], y[:30], class_names=["bottom", "top"], examples=2)
    page.goto(path.as_uri(), wait_until="load")
    images = page.evaluate(IMAGES)
    assert len(images) == 12
    for complete, width, height, alt in images:
        assert complete and width > 0 and height > 0, alt
    assert page.title() == f"slidenet report: {model.name}"
    assert page.watch.errors == []
    shot = page.screenshot()
    (tmp_path / "report.png").write_bytes(shot)
    with Image.open(io.BytesIO(shot)) as image:
        assert image.size == (1200, 1600)
        assert np.asarray(image.convert("L"), dtype=float).std() > 10  # content, not a blank page


def test_the_browser_check_catches_a_broken_image_and_a_blocked_resource(page, tmp_path):
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
    page.goto(path.as_uri(), wait_until="load")
    widths = {alt: width for _, width, _, alt in page.evaluate(IMAGES)}
    assert widths.pop("broken") == 0
    assert all(w > 0 for w in widths.values())
    errors = page.watch.errors
    assert any("Content Security Policy" in e for e in errors), errors

"""The explore page in a real browser (Playwright + Debian's Chromium, tests/browser_harness.py).

A live server runs the small digits CNN in a thread; the tests draw, pick test images, click
units and upload bad files, and check what the page shows against slidenet's own numbers. No
console error, page exception, failed request or unexpected 4xx may happen. The README's
screenshot comes from here: SLIDENET_UPDATE_SCREENSHOTS=1 writes it to docs/images/explore.png
(otherwise it goes to the test's temporary folder).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from explore_helpers import digits, digits_cnn, graph_cnn, layer_outputs, live_server, png
from PIL import Image

from browser_harness import Watch, launch

pytest.importorskip("starlette")
from slidenet.explore import create_app  # noqa: E402

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "explore.png"
N_DATA = 200
SETTLED = (
    "n => Number(document.body.dataset.runs || 0) > n && !window.exploreState.busy"
    " && !window.exploreState.pending"
)


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


@pytest.fixture(scope="module")
def server():
    x, y = digits()
    test_split = SimpleNamespace(name="mnist-sample", x_test=x[:N_DATA], y_test=y[:N_DATA])
    app = create_app(digits_cnn(), dataset=test_split)
    with live_server(app) as base:
        yield base


def open_page(browser, base):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.watch = Watch(page)
    page.goto(base + "/")
    page.wait_for_function(SETTLED, arg=0)
    return context, page


@pytest.fixture
def page(browser, server):
    context, page = open_page(browser, server)
    yield page
    assert page.watch.errors == []
    context.close()


def runs(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.runs)"))


def settle(page, before: int) -> None:
    page.wait_for_function(SETTLED, arg=before)


def show_index(page, index: int) -> None:
    before = runs(page)
    page.fill("#dataset-index", str(index))
    page.click("#dataset-load")
    settle(page, before)


def map_canvas(page, layer: str, k: int):
    return page.locator(f'.column[data-layer="{layer}"] canvas.map[data-k="{k}"]')


def click_unit(page, layer: str, shape, y: int, x: int, k: int) -> dict:
    """Click unit (y, x, k) of a map and wait for its panel; returns the panel's numbers."""
    canvas = map_canvas(page, layer, k)
    box = canvas.bounding_box()
    h, w = shape[:2]
    canvas.click(position={"x": (x + 0.5) * box["width"] / w, "y": (y + 0.5) * box["height"] / h})
    page.wait_for_selector(f'#unit-body[data-ready="{layer}:{y}:{x}:{k}"]')
    return panel_numbers(page)


def panel_numbers(page) -> dict:
    return page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('#unit-body [data-value]'))
            .map(e => [e.id.replace('unit-', ''), Number(e.dataset.value)]))"""
    )


def test_drawing_a_stroke_changes_the_activations_and_the_probabilities(page):
    model = digits_cnn()
    before = runs(page)
    page.click("#clear")
    settle(page, before)
    first = map_canvas(page, model.layers[0].name, 2)
    blank_map = first.evaluate("c => c.toDataURL()")
    blank_probs = page.locator("#probs").inner_text()
    box = page.locator("#draw").bounding_box()
    before = runs(page)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=12)
    page.mouse.up()
    settle(page, before)
    assert runs(page) > before + 1  # it updated while drawing, not only at the end
    assert first.evaluate("c => c.toDataURL()") != blank_map
    assert page.locator("#probs").inner_text() != blank_probs
    state = page.evaluate("window.exploreState.result")
    assert state["source"] == {"upload": True}
    assert sum(state["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert state["server_ms"] < 1000


def test_test_images_of_three_classes_are_predicted_as_model_predict(page):
    model = digits_cnn()
    x, y = digits()
    indices = [int(np.flatnonzero(y[:N_DATA] == c)[1]) for c in (0, 3, 7)]
    expected = model.predict(x[indices, :, :, None] / np.float32(255)).argmax(axis=1)
    for index, want, label in zip(indices, expected, (0, 3, 7), strict=True):
        show_index(page, index)
        assert page.get_attribute("#prediction", "data-class") == str(want)
        assert page.get_attribute("#true-label", "data-label") == str(label)
        assert f"test image {index}" in page.inner_text("#true-label")
    before = runs(page)  # the gallery: the first test image of each class, each decoded
    page.click(f'#gallery img[data-index="{np.flatnonzero(y == 0)[0]}"]')
    settle(page, before)
    assert page.get_attribute("#true-label", "data-label") == "0"
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('#gallery img'), i => i.naturalWidth)"
    )
    assert len(widths) == 10 and min(widths) == 28


def test_clicking_units_shows_the_arithmetic_that_equals_the_map(page, tmp_path):
    model = digits_cnn()
    x, _ = digits()
    show_index(page, 5)
    outputs = layer_outputs(model, x[5, :, :, None] / np.float32(255))
    conv = model.layers[2]  # second conv: 5x5x6 patches of the pooled map
    out = outputs[conv.name]
    y0, x0, k0 = np.argwhere(out == out.max())[0]
    numbers = click_unit(page, conv.name, out.shape, y0, x0, k0)
    assert numbers["sum"] + numbers["bias"] == pytest.approx(numbers["value"], abs=1e-9)
    assert numbers["value"] == pytest.approx(numbers["map-value"], rel=1e-5)  # ReLU of > 0
    assert numbers["map-value"] == pytest.approx(float(out[y0, x0, k0]), rel=1e-6)
    assert numbers["activated"] == pytest.approx(float(out[y0, x0, k0]), rel=1e-5)
    assert page.locator("#unit-body .equation .ok").count() == 1
    assert page.locator("#unit-body .channel").count() == 6
    # the slide: the filter moves over the layer below and the map fills in; stop it midway
    full = map_canvas(page, conv.name, k0).evaluate("c => c.toDataURL()")
    page.click("#slide")
    page.wait_for_function("() => window.exploreState.slide && window.exploreState.slide.pos > 20")
    assert map_canvas(page, conv.name, k0).evaluate("c => c.toDataURL()") != full
    page.click("#slide")
    assert page.evaluate("window.exploreState.slide") is None

    pool = model.layers[1]
    out = outputs[pool.name]
    numbers = click_unit(page, pool.name, out.shape, 7, 7, 1)
    assert numbers["value"] == numbers["map-value"] == pytest.approx(float(out[7, 7, 1]))
    assert page.locator("#unit-body td.win").count() == 1

    dense = model.layers[6]  # the softmax layer: its units are the class scores
    page.click('#probs tr[data-class="4"]')
    page.wait_for_selector(f'#unit-body[data-ready="{dense.name}:undefined:undefined:4"]')
    numbers = panel_numbers(page)
    assert numbers["activated"] == pytest.approx(float(outputs[dense.name][4]), rel=1e-5)
    assert page.locator("#unit-body table.contrib tr").count() == 13

    first = model.layers[0]  # the README's screenshot: a first-layer unit, 5x5x1 patch
    out = outputs[first.name]
    k1 = 3
    y1, x1 = np.argwhere(out[:, :, k1] == out[:, :, k1].max())[0]
    numbers = click_unit(page, first.name, out.shape, y1, x1, k1)
    assert numbers["map-value"] == pytest.approx(float(out[y1, x1, k1]), rel=1e-6)
    path = SCREENSHOT if os.environ.get("SLIDENET_UPDATE_SCREENSHOTS") else tmp_path / "e.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('network').scrollLeft = 0")
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as image:
        assert image.size[0] == 1600
        assert np.asarray(image.convert("L"), dtype=float).std() > 20


def test_bad_uploads_show_a_one_line_message_and_the_page_keeps_working(page):
    page.watch.allow(r"HTTP 4(00|13): .*/api/run|status of 4(00|13)")
    page.set_input_files("#upload", files=[_file("notes.txt", "text/plain", b"not a picture")])
    page.wait_for_selector("#message.error")
    assert "not an image" in page.inner_text("#message")
    page.evaluate(  # 10 MB + 1 byte, made in the page (sending it over the pipe is slow)
        """() => { const input = document.getElementById('upload'), t = new DataTransfer();
            t.items.add(new File([new Uint8Array(10 * 1024 * 1024 + 1)], 'huge.png'));
            input.files = t.files; input.dispatchEvent(new Event('change')); }"""
    )
    page.wait_for_function("() => document.getElementById('message').textContent.includes('10 MB')")
    before = runs(page)
    x, _ = digits()
    paper = png(1.0 - x[9] / 255.0)
    page.check("#invert")
    page.set_input_files("#upload", files=[_file("digit.png", "image/png", paper)])
    settle(page, before)
    assert page.get_attribute("#message", "class") == ""
    want = digits_cnn().predict(x[9:10, :, :, None] / np.float32(255)).argmax()
    assert page.get_attribute("#prediction", "data-class") == str(want)


def _file(name, mime, data):
    return {"name": name, "mimeType": mime, "buffer": data}


def test_graph_models_get_one_column_per_layer(browser):
    model = graph_cnn()
    with live_server(create_app(model)) as base:
        context, page = open_page(browser, base)
        try:
            names = page.eval_on_selector_all(".column", "cs => cs.map(c => c.dataset.layer)")
            assert names == [layer.name for layer in model.layers]
            meta = page.inner_text('.column[data-layer="merge"] .meta')
            assert "branch_a + branch_b" in meta
            box = page.locator("#draw").bounding_box()
            before = runs(page)
            page.mouse.move(box["x"] + 20, box["y"] + 20)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 30, steps=6)
            page.mouse.up()
            settle(page, before)
            image = np.asarray(
                Image.open(io.BytesIO(page.locator("#draw").screenshot())).convert("L")
            )
            assert image.max() > 200  # the stroke is there
            numbers = click_unit(page, "branch_a", (12, 12, 3), 6, 6, 0)
            assert numbers["sum"] + numbers["bias"] == pytest.approx(numbers["value"])
            assert numbers["activated"] == pytest.approx(numbers["map-value"], rel=1e-5)
            assert page.watch.errors == []
        finally:
            context.close()

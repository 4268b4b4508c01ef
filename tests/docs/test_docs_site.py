"""The documentation site builds with ``mkdocs build --strict`` and every page works in Chromium.

The build renders the notebooks that tests/docs/test_notebooks.py executed (the shared runner in
conftest.py; run alone, this file executes them itself), with SLIDENET_DOCS_EXECUTE=false, so CI
runs each notebook once. ``make docs`` builds the same site and executes the notebooks itself.

The browser test opens every page from disk (file://, as `site/index.html` is meant to be opened)
in headless Chromium through Playwright, with every non-file request blocked and recorded: a page
passes when it logs no console error, raises nothing, fetches nothing from the network and
decodes every image. Without Chromium it is skipped, unless SLIDENET_REQUIRE_BROWSER is set (CI
sets it), in which case it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from notebook_runner import NOTEBOOKS, ROOT

from slidenet.cli import COMMANDS

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def build(docs_dir: Path, site_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        SLIDENET_DOCS_DIR=str(docs_dir),
        SLIDENET_DOCS_EXECUTE="false",
        NO_MKDOCS_2_WARNING="1",
    )
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    return subprocess.run(
        [*command, "-d", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def copy_docs(target: Path, executed: Path | None = None) -> Path:
    shutil.copytree(ROOT / "docs", target)
    if executed is not None:
        for path in NOTEBOOKS:
            shutil.copy(executed / path.name, target / "tutorials" / path.name)
    return target


@pytest.fixture(scope="module")
def site(notebooks, tmp_path_factory):
    for path in NOTEBOOKS:
        notebooks.run(path)
    work = tmp_path_factory.mktemp("docs-site")
    docs = copy_docs(work / "docs", notebooks.out_dir)
    start = time.perf_counter()
    result = build(docs, work / "site")
    seconds = time.perf_counter() - start
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    print(f"\nsite build (notebooks already executed): {seconds:.1f}s")
    return work / "site"


def test_the_site_has_every_tutorial_guide_command_and_api_page(site):
    for path in NOTEBOOKS:
        page = (site / "tutorials" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert "data:image/png;base64" in page or "<img" in page, f"{path.name}: no figure"
        assert "jp-OutputArea" in page, f"{path.name} was rendered without outputs"
        assert (site / "tutorials" / path.name).exists()  # the download link's target
    for name in COMMANDS:
        page = (site / "cli" / f"{name}.html").read_text(encoding="utf-8")
        assert f"usage: slidenet {name}" in page
    for guide in (
        "installation",
        "command-line",
        "file-format",
        "distributed",
        "interop",
        "performance",
        "reliability",
    ):
        assert (site / "guides" / f"{guide}.html").exists(), guide
    layers = (site / "api" / "layers.html").read_text(encoding="utf-8")
    assert "slidenet.layers.Conv2D" in layers and "kernel_size" in layers
    assert (site / "search" / "search_index.js").exists()  # search works from disk


def test_a_broken_link_fails_the_strict_build(tmp_path):
    docs = copy_docs(tmp_path / "docs")
    shutil.rmtree(docs / "api")  # quicker without the API pages (their absence warns too)
    index = docs / "index.md"
    index.write_text(index.read_text() + "\n[gone](no-such-page.md)\n", encoding="utf-8")
    result = build(docs, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def _chromium() -> str | None:
    path = os.environ.get("SLIDENET_CHROMIUM")
    if path:
        return path
    return next((p for p in CHROMIUM_PATHS if Path(p).exists()), None) or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    binary = _chromium()
    missing = None
    if binary is None:
        missing = "chromium is not installed"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing = "playwright is not installed"
    if missing:
        if os.environ.get("SLIDENET_REQUIRE_BROWSER"):
            pytest.fail(f"SLIDENET_REQUIRE_BROWSER is set but {missing} (apt-get install chromium)")
        pytest.skip(f"{missing} (set SLIDENET_REQUIRE_BROWSER=1 to fail instead)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        yield b
        b.close()


IMAGES = "Array.from(document.images).map(i => [i.src.slice(0, 80), i.complete, i.naturalWidth])"


def check_page(context, url: str) -> list[str]:
    """Problems found on one page: console errors, page errors, network requests, bad images."""
    problems = []
    page = context.new_page()
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(100)  # let the theme's scripts run
    for src, complete, width in page.evaluate(IMAGES):
        if not (complete and width > 0):
            problems.append(f"broken image: {src}")
    page.close()
    return problems


def test_every_page_loads_in_chromium_without_errors_or_broken_images(site, browser):
    context = browser.new_context()
    outside = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    # 404.html is the page a web server returns for a missing path: its links are absolute (/)
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    assert len(pages) >= len(NOTEBOOKS) + len(COMMANDS) + 20
    problems = {}
    for path in pages:
        found = check_page(context, path.as_uri())
        if found:
            problems[str(path.relative_to(site))] = found
    context.close()
    assert problems == {}
    assert outside == [], "the site fetched from the network"


def test_the_browser_check_catches_a_broken_image_and_a_console_error(browser, tmp_path):
    """The page check above can fail."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="missing.png" alt="x">'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    context = browser.new_context()
    problems = check_page(context, page.as_uri())
    context.close()
    assert any(p.startswith("broken image") for p in problems), problems
    assert any("boom" in p for p in problems), problems

"""report.html in a real browser (Debian's chromium through Playwright): it opens with no
console error, every section is there, its images decode, and the diagram folds.

Needs `apt-get install -y chromium` (Playwright cannot download its own browser here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbuilder import api as kb
from tests.conftest import DATASETS
from tests.test_use import TINY

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = (
    "metrics",
    "spec",
    "layers",
    "diagram",
    "curves",
    "evaluation",
    "confusion",
    "per-class",
    "calibration",
    "mistakes",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "the browser test needs Debian's chromium: apt-get install -y chromium"
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    kb.train(TINY, data_dir=DATASETS, out=run_dir, verbose=0, export=False)
    kb.evaluate(run_dir, data_dir=DATASETS)  # refreshes report.html with the evaluation
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("request", lambda request: requests.append(request.url))
        page.goto((run_dir / "report.html").as_uri())
        page.frame_locator("#diagram-frame").locator("#visible:not(:empty)").wait_for()
        page.errors = errors
        page.requests = requests
        yield page
        browser.close()


def test_opens_without_errors_and_fetches_nothing(page):
    assert page.errors == []
    assert [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))] == []


def test_every_section_is_present_and_its_images_decode(page):
    for section in SECTIONS:
        assert page.locator(f"section#{section}").is_visible(), section
    widths = page.eval_on_selector_all("section img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 4 and min(widths) > 100
    assert page.locator("section#per-class tbody tr").count() == 12  # ten classes, two averages


def test_the_diagram_folds(page):
    frame = page.frame_locator("#diagram-frame")
    before = int(frame.locator("#visible").inner_text().split()[0])
    group = frame.locator("g.cluster").first
    outline = group.locator("path, polygon").first
    height = outline.bounding_box()["height"]
    outline.click(position={"x": 3, "y": height / 2})  # on the frame's margin, beside its boxes
    folded = frame.locator("g.folded").first
    assert folded.is_visible()
    assert int(frame.locator("#visible").inner_text().split()[0]) < before
    folded.click()
    assert int(frame.locator("#visible").inner_text().split()[0]) == before

"""The HTML diagram in a real browser (Debian's chromium through Playwright): it renders,
every layer appears, and folding a group hides its boxes behind one box and back.

Needs `apt-get install -y chromium` (Playwright cannot download its own browser here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbuilder import api
from kbuilder.diagram import make_diagram
from kbuilder.diagram.dot import element_ids
from tests.conftest import SPECS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "the browser test needs Debian's chromium: apt-get install -y chromium"
    target = tmp_path_factory.mktemp("html") / "resnet50.html"
    api.diagram(SPECS / "resnet50.yaml", target, shapes=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(target.as_uri())
        page.wait_for_selector("#visible:not(:empty)")
        page.errors = errors
        yield page
        browser.close()


def visible_count(page) -> int:
    return int(page.inner_text("#visible").split()[0])


def test_renders_every_layer(page):
    graph = api.validate(SPECS / "resnet50.yaml")
    assert page.errors == []
    titles = page.eval_on_selector_all("g.node > title", "els => els.map(e => e.textContent)")
    assert sorted(titles) == sorted(node.name for node in graph.nodes)
    sizes = page.eval_on_selector_all("g.node", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(sizes) == len(graph.nodes) and min(sizes) > 10  # drawn, not just present
    assert visible_count(page) == len(graph.nodes)


def test_folding_a_group_hides_its_layers_behind_one_box(page):
    graph = api.validate(SPECS / "resnet50.yaml")
    diagram = make_diagram(graph)
    box_ids, group_ids = element_ids(diagram)
    group = "conv2_x-block1-unit"  # the first bottleneck's residual unit
    members = [box for box in diagram.boxes if group in box.group]
    frame = page.locator(f"#{group_ids[group]}").locator("path, polygon").first
    height = frame.bounding_box()["height"]
    frame.click(position={"x": 3, "y": height / 2})  # on the frame's margin, beside its boxes
    overlay = page.locator(f'g.folded[data-group="{group}"]')
    assert overlay.is_visible() and f"{len(members)} layers" in overlay.text_content()
    assert all(page.locator(f"#{box_ids[box.id]}").is_hidden() for box in members)
    assert visible_count(page) == len(graph.nodes) - len(members) + 1
    overlay.click()
    assert overlay.is_hidden() and all(page.locator(f"#{box_ids[box.id]}").is_visible() for box in members)
    assert visible_count(page) == len(graph.nodes)


def test_open_levels_matches_depth(page):
    graph = api.validate(SPECS / "resnet50.yaml")
    for level in (0, 1, 2):
        page.select_option("#levels", str(level))
        assert visible_count(page) == len(make_diagram(graph, depth=level).boxes)
    page.click("#expand-all")
    assert visible_count(page) == len(graph.nodes)


def test_every_line_of_text_stays_inside_its_box(page, tmp_path):
    """dot sizes boxes by Helvetica's widths; Chromium here draws DejaVu Sans, wider: the page
    squeezes lines that would overflow (boxes now carry arguments, the longest lines): without
    it, ResNet-50's `filters 128, kernel 1×1, stride 2×2` ran 7.9 px past both sides of its
    box and `global_average_pooling2d` kept 0.5 px."""
    target = tmp_path / "resnet50.html"
    api.diagram(SPECS / "resnet50.yaml", target)
    measure = """els => els.map(node => {
        const shape = node.querySelector('path, polygon').getBoundingClientRect();
        return [node.querySelector('title').textContent, shape.left, shape.right,
                ...[...node.querySelectorAll('text')].map(t => {
                    const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right];
                })];
    })"""
    other = page.context.browser.new_page()  # the module's browser; its page stays as it was
    other.goto(target.as_uri())
    other.wait_for_selector("#visible:not(:empty)")
    boxes = other.eval_on_selector_all("g.node", measure)
    squeezed = other.eval_on_selector_all("g.node text[textLength]", "els => els.length")
    other.close()
    graph = api.validate(SPECS / "resnet50.yaml")
    assert len(boxes) == len(graph.nodes)
    overflowing = [
        (name, text, round(left - x0, 1), round(x1 - right, 1))
        for name, left, right, *texts in boxes
        for text, x0, x1 in texts
        if x0 < left + 2 or x1 > right - 2  # at least 2 px clear of each side
    ]
    assert overflowing == []
    assert squeezed > 0  # the font here is wider: without the squeeze these lines overflowed

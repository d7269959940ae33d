"""`kbuilder diagram`: every zoo spec draws, the SVG names every layer, collapsing folds
blocks into the number of boxes the spec's structure says, and failures leave no file."""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kbuilder import api
from kbuilder.cli.app import main
from kbuilder.diagram import Box, Diagram, make_diagram
from kbuilder.diagram import render as render_module
from kbuilder.diagram.dot import to_dot
from kbuilder.diagram.draw import layer_shapes
from kbuilder.diagram.pdf import xdot_figure
from kbuilder.diagram.render import layout_command, run_layout
from tests.conftest import REPO, SPECS

SVG = "{http://www.w3.org/2000/svg}"
ZOO = sorted(SPECS.glob("*.yaml"))


def svg_parts(path: Path) -> tuple[set[str], int, list[str]]:
    """Node titles, the number of edges and every text of a Graphviz SVG."""
    root = ET.parse(path).getroot()
    groups = list(root.iter(f"{SVG}g"))
    titles = {g.find(f"{SVG}title").text for g in groups if g.get("class") == "node"}
    edges = sum(1 for g in groups if g.get("class") == "edge")
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    return titles, edges, texts


def connections(graph) -> set[tuple[str, str]]:
    return {(src, node.name) for node in graph.nodes for src in node.inputs}


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", ZOO, ids=[p.stem for p in ZOO])
def test_every_zoo_spec_draws_an_svg_naming_every_layer(spec, tmp_path):
    target = tmp_path / f"{spec.stem}.svg"
    diagram = api.diagram(spec, target, shapes=False)
    graph = api.validate(spec)
    titles, edges, texts = svg_parts(target)
    assert titles == {node.name for node in graph.nodes}
    assert edges == len(connections(graph)) == diagram.counts()["edges"]
    # Each box shows its name inside its group and its kind.
    for box in diagram.boxes:
        assert box.label in texts and (box.kind in texts or box.kind == box.label)
    assert {label for label in diagram.groups.values()} <= set(texts)


@pytest.mark.parametrize("spec", ZOO, ids=[p.stem for p in ZOO])
def test_depth_0_draws_each_top_level_entry_as_one_box(spec):
    loaded = api.load(spec)
    graph = api.validate(loaded)
    diagram = make_diagram(graph, depth=0)
    assert len(diagram.boxes) == len(loaded.spec.inputs) + len(loaded.spec.layers)
    assert diagram.counts()["layers"] == len(graph.nodes) and not diagram.groups


def _uses(entries: list, block: str) -> list[dict]:
    return [entry["block"] for entry in entries if "block" in entry and entry["block"]["use"] == block]


def test_collapsed_resnet50_is_16_bottlenecks_between_stem_and_head(tmp_path):
    loaded = api.load(SPECS / "resnet50.yaml")
    plain = [entry for entry in loaded.spec.layers if "block" not in entry]
    stages = _uses(loaded.spec.layers, "stage")
    bottlenecks = sum(stage["args"]["blocks"] for stage in stages)  # block1 + (blocks - 1) repeats
    assert bottlenecks == 16  # Table 1 of the paper: 3 + 4 + 6 + 3
    target = tmp_path / "resnet50.svg"
    diagram = api.diagram(loaded, target, collapse=True, shapes=False)
    assert sum(box.kind == "bottleneck" for box in diagram.boxes) == bottlenecks
    assert len(diagram.boxes) == len(loaded.spec.inputs) + len(plain) + bottlenecks
    # Stages and their repeats stay open as labelled groups around the bottlenecks.
    assert len(diagram.groups) == 2 * len(stages)
    titles, edges, _ = svg_parts(target)
    assert titles == {box.id for box in diagram.boxes} and edges == len(diagram.boxes) - 1
    assert sum(box.layers for box in diagram.boxes) == len(api.validate(loaded).nodes)


def test_collapsed_densenet121_and_googlenet_count_their_units():
    loaded = api.load(SPECS / "densenet121.yaml")
    plain = [entry for entry in loaded.spec.layers if "block" not in entry]
    dense_layers = sum(use["args"]["size"] for use in _uses(loaded.spec.layers, "dense_block"))
    transitions = len(_uses(loaded.spec.layers, "transition"))
    diagram = make_diagram(api.validate(loaded), collapse=True)
    assert sum(box.kind == "dense_layer" for box in diagram.boxes) == dense_layers == 58
    assert len(diagram.boxes) == len(loaded.spec.inputs) + len(plain) + dense_layers + transitions

    loaded = api.load(SPECS / "googlenet.yaml")
    inceptions = sum("inception" in entry for entry in loaded.spec.layers)
    diagram = make_diagram(api.validate(loaded), collapse=True)
    assert sum(box.kind == "inception" and box.collapsed for box in diagram.boxes) == inceptions == 9
    assert len(diagram.boxes) == len(loaded.spec.inputs) + len(loaded.spec.layers)


def test_fold_names_the_blocks_to_draw_as_one_box(capsys):
    loaded = api.load(SPECS / "resnet50.yaml")
    graph = api.validate(loaded)
    stages = len(_uses(loaded.spec.layers, "stage"))
    by_stage = make_diagram(graph, fold=["stage"])
    assert sum(box.kind == "stage" for box in by_stage.boxes) == stages
    assert len(by_stage.boxes) == len(make_diagram(graph, depth=0).boxes)
    by_unit = make_diagram(graph, fold=["bottleneck"])
    assert [b.id for b in by_unit.boxes] == [b.id for b in make_diagram(graph, collapse=True).boxes]
    # The outermost composite wins where several folds apply.
    assert [b.id for b in make_diagram(graph, fold=["bottleneck", "stage"]).boxes] == [
        b.id for b in by_stage.boxes
    ]
    googlenet = api.validate(SPECS / "googlenet.yaml")
    assert sum(b.collapsed for b in make_diagram(googlenet, fold=["inception"]).boxes) == 9
    code, _, err = run(capsys, "diagram", "resnet50", "--fold", "bottlenek", "-o", "never.svg")
    assert code == 2 and "did you mean 'bottleneck'?" in err and "stage" in err
    assert not Path("never.svg").exists()


def test_depth_keeps_outer_groups_open():
    graph = api.validate(SPECS / "resnet50.yaml")
    counts = [len(make_diagram(graph, depth=d).boxes) for d in range(5)]
    assert counts == sorted(counts) and counts[-1] == len(graph.nodes)  # deeper: more boxes
    one = make_diagram(graph, depth=1)
    assert set(one.groups) == {"conv2_x", "conv3_x", "conv4_x", "conv5_x"}
    # Collapse and depth together: the shallower rule wins for each layer.
    assert len(make_diagram(graph, collapse=True, depth=1).boxes) == len(one.boxes)


def test_shapes_come_from_the_built_model(tmp_path):
    spec = SPECS / "fashion_cnn.yaml"
    built = api.build(spec)  # one build; Keras's import is shared with the rest of the suite
    rows = {row.name: row.output_shape for row in api.report(built).rows}
    diagram = make_diagram(built.graph, layer_shapes(built))
    assert {box.id: box.shape for box in diagram.boxes} == rows
    collapsed = make_diagram(built.graph, layer_shapes(built), collapse=True)
    assert any(box.collapsed for box in collapsed.boxes)
    for box in (b for b in collapsed.boxes if b.collapsed):
        assert box.shape == rows[built.graph.resolve(box.id)]  # the composite's output
    text = to_dot(diagram)
    assert all("(" + ", ".join(map(str, shape)) + ")" in text for shape in rows.values())
    # The API's default path builds for shapes too (a tiny spec keeps it quick).
    small = api.diagram(SPECS / "xor_mlp.yaml", tmp_path / "x.svg")
    _, _, texts = svg_parts(tmp_path / "x.svg")
    assert all(box.shape and "(" + ", ".join(map(str, box.shape)) + ")" in texts for box in small.boxes)


def test_png_pdf_and_html(tmp_path):
    spec = SPECS / "lenet5.yaml"
    api.diagram(spec, tmp_path / "m.html", shapes=False)
    page = (tmp_path / "m.html").read_text()
    # Self-contained: the SVG inline, nothing fetched (tests/test_diagram_browser.py runs it).
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and "<?xml" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    api.diagram(spec, tmp_path / "m.png", shapes=False)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    api.diagram(spec, tmp_path / "m.pdf", shapes=False)
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    # The PDF is drawn from dot's own layout: every label and every box is there.
    figure = xdot_figure(run_layout(to_dot(api.diagram(spec, shapes=False)), "json"))
    drawn = {text.get_text() for text in figure.axes[0].texts}
    graph = api.validate(spec)
    assert {node.name for node in graph.nodes} <= drawn
    assert len(figure.axes[0].collections[0].get_paths()) >= len(graph.nodes) + len(connections(graph))


@pytest.mark.slow
def test_a_very_long_drawing_is_scaled_to_what_viewers_open():
    from PIL import Image

    boxes = [Box(f"layer{i}", f"layer{i}", "dense", [8], ()) for i in range(400)]  # ~20 m at 150 dpi
    edges = [(a.id, b.id) for a, b in itertools.pairwise(boxes)]
    png = run_layout(to_dot(Diagram("chain", boxes, edges)), "png")
    image = Image.open(io.BytesIO(png))
    assert (
        max(image.size) <= render_module.PNG_MAX_PIXELS
        and max(image.size) > render_module.PNG_MAX_PIXELS // 2
    )
    # The PDF page likewise stays within PDF's 200 inches a side.
    figure = xdot_figure(run_layout(to_dot(Diagram("chain", boxes, edges)), "json"))
    assert 100 < max(figure.get_size_inches()) <= 200


def test_untrusted_names_are_quoted(tmp_path):
    names = ['a"b', "back\\slash", "x -> y; }", "n\\N"]
    boxes = [Box(name, name, "dense", [3], ()) for name in names]
    edges = list(itertools.pairwise(names))
    dot_text = to_dot(Diagram('g"raph', boxes, edges, {}, [names[-1]]))
    target = tmp_path / "q.svg"
    target.write_bytes(run_layout(dot_text, "svg"))
    titles, edge_count, texts = svg_parts(target)
    # Ids: a quote or DOT syntax in a name stays itself; a backslash stays safe (doubled).
    assert titles == {name.replace("\\", "\\\\") for name in names} and edge_count == len(edges)
    # Labels, where Graphviz reads escapes such as \N, show the names exactly.
    assert set(names) <= set(texts) and 'g"raph' in texts


@pytest.mark.subprocess
def test_layout_program_is_the_wheel_next_to_python():
    assert Path(layout_command()).parent == Path(sys.executable).parent


def test_cli_json_is_one_document_with_counts(capsys, tmp_path):
    target = tmp_path / "r.svg"
    code, out, _ = run(
        capsys, "diagram", "resnet50", "--collapse", "--no-shapes", "-o", str(target), "--format", "json"
    )
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["output"] == str(target) and target.stat().st_size > 0
    assert data["boxes"] == 25 and data["collapsed_boxes"] == 16 and data["layers"] == 177
    code, out, _ = run(capsys, "diagram", "lenet5", "--no-shapes")
    assert code == 0 and out.startswith('digraph "lenet5"')


def test_cli_refuses_bad_targets_and_specs(capsys, tmp_path):
    code, _, err = run(capsys, "diagram", "lenet5", "--no-shapes", "-o", str(tmp_path / "m.jpg"))
    assert code == 2 and "did you mean '.png'?" in err
    code, _, err = run(capsys, "diagram", "lenet5", "--no-shapes", "-o", str(tmp_path / "missing" / "m.svg"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n  - dense: {units: 3}\n  - dense: {units: 2, inputs: [nope]}\n"
    )
    code, out, _ = run(
        capsys, "diagram", str(bad), "--no-shapes", "-o", str(tmp_path / "m.svg"), "--format", "json"
    )
    data = json.loads(out)
    assert (
        code == 2 and f"{bad}:5:" in data["problems"][0] and "undefined layer 'nope'" in data["problems"][0]
    )
    assert not (tmp_path / "m.svg").exists()


def test_a_failed_layout_leaves_the_old_file_alone(capsys, tmp_path, monkeypatch):
    fake = tmp_path / "broken-dot"
    fake.write_text("#!/bin/sh\necho 'Error: out of memory' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(render_module, "layout_command", lambda: str(fake))
    target = tmp_path / "old.svg"
    target.write_text("keep me")
    code, _, err = run(capsys, "diagram", "lenet5", "--no-shapes", "-o", str(target))
    assert code == 3 and "out of memory" in err
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == [
        "broken-dot",
        "old.svg",
    ]


@pytest.mark.subprocess
def test_no_shapes_never_imports_keras(tmp_path):
    script = (
        "import sys; from kbuilder import api; "
        f"api.diagram({str(SPECS / 'googlenet.yaml')!r}, {str(tmp_path / 'g.svg')!r}, collapse=True, shapes=False); "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]" and (tmp_path / "g.svg").exists()


@pytest.mark.subprocess
def test_shapes_come_from_the_spec_without_keras(tmp_path):
    script = (
        "import sys; from kbuilder import api; "
        f"d = api.diagram({str(SPECS / 'googlenet.yaml')!r}, {str(tmp_path / 'g.svg')!r}, collapse=True); "
        "print(all(b.shape for b in d.boxes), d.notes, sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True [] []" and (tmp_path / "g.svg").exists()

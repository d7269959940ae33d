"""What diagram boxes say (issue 20): main arguments and parameters by `--detail` level,
`--rankdir LR`, a note when the drawing is too long to read, and group labels that
GoogLeNet's edges do not cross."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from kbuilder import api
from kbuilder.cli.app import main
from kbuilder.diagram import make_diagram
from kbuilder.diagram.details import arguments
from kbuilder.diagram.dot import to_dot
from tests.conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def label_of(dot: str, name: str) -> list[str]:
    found = re.search(rf'^\s*"{re.escape(name)}" \[label="([^"]*)"', dot, re.MULTILINE)
    assert found, name
    return found[1].split("\\n")


def test_detail_levels_of_a_convolution(capsys):
    dots = {d: run(capsys, "diagram", "resnet50", "--detail", d)[1] for d in ("minimal", "normal", "full")}
    assert label_of(dots["minimal"], "conv1") == ["conv1", "conv2d", "(112, 112, 64)"]
    assert label_of(dots["normal"], "conv1") == [
        "conv1",
        "conv2d",
        "filters 64, kernel 7×7, stride 2×2",
        "(112, 112, 64)",
        "9,472 params",
    ]
    assert label_of(dots["full"], "conv1")[2:5] == ["filters 64", "kernel 7×7", "stride 2×2"]
    assert label_of(dots["normal"], "predictions")[2] == "units 1000, activation softmax"
    assert label_of(dots["normal"], "conv1_relu")[2] == "relu"  # the kind names the argument
    assert label_of(dots["normal"], "conv1_bn")[2:] == ["(112, 112, 64)", "256 params"]
    # full lists every argument the spec sets, defaults left out
    assert "epsilon 1.001e-05" in label_of(dots["full"], "conv1_bn")


def test_collapsed_boxes_count_every_layer_they_stand_for():
    diagram = api.diagram(SPECS / "resnet50.yaml", collapse=True)
    groups = api.report(SPECS / "resnet50.yaml").group_summaries
    collapsed = [box for box in diagram.boxes if box.collapsed]
    assert collapsed and all(box.params == groups[box.id].params for box in collapsed)
    assert sum(box.params or 0 for box in diagram.boxes) == api.report(SPECS / "resnet50.yaml").params


def test_arguments_read_only_what_the_spec_sets():
    graph = api.validate(SPECS / "lenet5_modern.yaml")
    for node in graph.nodes:
        assert arguments(node.spec, node.kind, "minimal") == []
        full = arguments(node.spec, node.kind, "full")
        assert not any(line.startswith(("name ", "inputs ")) for line in full)
    assert make_diagram(graph, detail="minimal").boxes[1].arguments == []


def test_bad_detail_and_rankdir_are_usage_errors(capsys):
    code, _, err = run(capsys, "diagram", "mnist_mlp", "--detail", "ful")
    assert code == 2 and "did you mean 'full'" in err
    code, _, err = run(capsys, "diagram", "mnist_mlp", "--rankdir", "XY")
    assert code == 2 and "--rankdir XY" in err and "LR" in err


def _svg_size(path) -> tuple[float, float]:
    root = ET.parse(path).getroot()
    return float(root.get("width").removesuffix("pt")), float(root.get("height").removesuffix("pt"))


def test_rankdir_lr_lays_the_chain_across(capsys, tmp_path):
    code, out, _ = run(capsys, "diagram", "mnist_mlp", "--rankdir", "lr")
    assert code == 0 and "rankdir=LR" in out
    run(capsys, "diagram", "mnist_mlp", "-o", str(tmp_path / "tb.svg"))
    run(capsys, "diagram", "mnist_mlp", "-o", str(tmp_path / "lr.svg"), "--rankdir", "LR")
    (tb_w, tb_h), (lr_w, lr_h) = _svg_size(tmp_path / "tb.svg"), _svg_size(tmp_path / "lr.svg")
    assert tb_h > tb_w and lr_w > lr_h


@pytest.mark.slow
def test_a_too_long_drawing_says_how_to_draw_it_smaller(capsys, tmp_path):
    from PIL import Image

    code, _, err = run(capsys, "diagram", "resnet50", "-o", str(tmp_path / "full.png"))
    width, height = Image.open(tmp_path / "full.png").size
    assert code == 0 and height > 10_000
    assert f"the drawing is {width:,} × {height:,} pixels" in err
    assert "--collapse (25 boxes instead of 177)" in err and "--rankdir LR" in err
    code, _, err = run(capsys, "diagram", "resnet50", "-o", str(tmp_path / "short.png"), "--collapse")
    assert code == 0 and "too long" not in err and max(Image.open(tmp_path / "short.png").size) <= 10_000
    code, _, err = run(capsys, "diagram", "mnist_mlp", "-o", str(tmp_path / "m.svg"))
    assert code == 0 and "too long" not in err


def label_crossings(svg_path) -> tuple[list[tuple[str, str]], int]:
    """(group label, edge) pairs where an edge's path runs through a group's label text (its
    box estimated from the font size: 0.55 em a character), and the number of labels."""
    root = ET.parse(svg_path).getroot()
    labels = []
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "cluster":
            continue
        for text in group.iter(f"{SVG}text"):
            x, y, size = float(text.get("x")), float(text.get("y")), float(text.get("font-size"))
            width = len(text.text or "") * size * 0.55
            anchor = text.get("text-anchor", "start")
            left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
            labels.append((text.text, left, y - size, left + width, y + 2))
    hits = set()
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "edge":
            continue
        for path in group.iter(f"{SVG}path"):
            numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*", path.get("d"))]
            points = list(zip(numbers[::2], numbers[1::2]))
            for (ax, ay), (bx, by) in itertools.pairwise(points):
                for step in range(21):
                    x, y = ax + (bx - ax) * step / 20, ay + (by - ay) * step / 20
                    for text, x0, y0, x1, y1 in labels:
                        if x0 <= x <= x1 and y0 <= y <= y1:
                            hits.add((text, group.find(f"{SVG}title").text))
    return sorted(hits), len(labels)


def test_googlenet_edges_do_not_cross_its_group_labels(tmp_path):
    target = tmp_path / "googlenet.svg"
    api.diagram(SPECS / "googlenet.yaml", target)
    hits, labels = label_crossings(target)
    assert labels == 9 and hits == []  # centred labels were crossed 14 times
    dot = to_dot(make_diagram(api.validate(SPECS / "googlenet.yaml")))
    assert dot.count("labeljust=l") == labels

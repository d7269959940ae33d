"""report.html: one self-contained page per run, ensemble or study (nothing is fetched).

A run's page: its metrics, the resolved spec, the layer table, the foldable diagram (the
page kbuilder.diagram.html makes, inline in an iframe's srcdoc), the learning curves and,
once `kbuilder evaluate` ran, the confusion matrix, the per-class table, the reliability
diagram and the most confident mistakes. A study's page: its summary, trials table and
plots. An ensemble's: its members' and its own figures. Images are inlined as data URIs.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from kbuilder.build import build
from kbuilder.diagram.dot import to_dot
from kbuilder.diagram.draw import layer_shapes
from kbuilder.diagram.html import to_html
from kbuilder.diagram.render import render
from kbuilder.diagram.structure import make_diagram
from kbuilder.errors import KBuilderError
from kbuilder.report import RENDERERS, make_report
from kbuilder.spec import load_spec
from kbuilder.storage import rundir as rd
from kbuilder.storage.atomic import readable_mode, write_text
from kbuilder.storage.run_reader import read_json
from kbuilder.use.evaluate import EVALUATION_FILE
from kbuilder.use.targets import SUMMARY_FILE, NotAModel, target_kind

REPORT_FILE = "report.html"
MAX_IMAGE_BYTES = 20_000_000


def _image(path: Path, alt: str) -> str:
    if not path.is_file() or path.stat().st_size > MAX_IMAGE_BYTES:
        return f"<p class='missing'>{html.escape(alt)}: no figure ({html.escape(path.name)})</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape("" if value is None else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(ident: str, title: str, body: str) -> str:
    return f"<section id='{ident}'><h2>{html.escape(title)}</h2>{body}</section>"


def _scalars(values: dict[str, Any]) -> list[list[Any]]:
    return [[k, v] for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None]


def _model_sections(run_dir: Path) -> list[str]:
    """The spec, layer table and diagram of the run's resolved spec (built, untrained)."""
    spec_file = run_dir / rd.SPEC_FILE
    loaded = load_spec(spec_file)
    built = build(loaded)
    diagram = make_diagram(built.graph, layer_shapes(built))
    page = to_html(diagram, render(to_dot(diagram), "svg")).decode("utf-8")
    frame = f"<iframe id='diagram-frame' title='diagram' srcdoc=\"{html.escape(page, quote=True)}\"></iframe>"
    return [
        _section(
            "spec",
            "Spec (resolved)",
            (
                "<details><summary>spec.yaml</summary>"
                f"<pre>{html.escape(spec_file.read_text(encoding='utf-8'))}</pre></details>"
            ),
        ),
        _section("layers", "Layers", f"<pre>{html.escape(RENDERERS['plain'](make_report(built)))}</pre>"),
        _section("diagram", "Diagram (click a group's frame to fold it)", frame),
    ]


def _evaluation_sections(folder: Path) -> list[str]:
    file = folder / EVALUATION_FILE
    if not file.is_file():
        return [
            _section(
                "evaluation", "Evaluation", "<p>not evaluated yet: run <code>kbuilder evaluate</code></p>"
            )
        ]
    found = read_json(file, dict)
    figures = found.get("metrics") or {}
    summary = _table(
        ["figure", "value"], _scalars(figures) + [["samples", found.get("data", {}).get("samples")]]
    )
    sections = [
        _section(
            "evaluation", f"Evaluation ({html.escape(str(found.get('data', {}).get('origin')))})", summary
        )
    ]
    if found.get("task") == "classification":
        rows = [[r["name"], r["precision"], r["recall"], r["f1"], r["support"]] for r in figures["per_class"]]
        rows += [
            [f"{k} average", v["precision"], v["recall"], v["f1"], v["support"]]
            for k, v in figures["averages"].items()
        ]
        ece = figures["calibration"]["expected_calibration_error"]
        sections += [
            _section(
                "confusion", "Confusion matrix", _image(folder / "confusion_matrix.png", "confusion matrix")
            ),
            _section(
                "per-class", "Per class", _table(["class", "precision", "recall", "F1", "support"], rows)
            ),
            _section(
                "calibration",
                f"Calibration (ECE {ece:.4f})",
                _image(folder / "reliability.png", "reliability"),
            ),
            _section("mistakes", "Most confident mistakes", _image(folder / "mistakes.png", "mistakes")),
        ]
    else:
        sections.append(
            _section("scatter", "Predicted against true", _image(folder / "predicted_vs_true.png", "scatter"))
        )
    return sections


def run_sections(run_dir: Path) -> list[str]:
    metrics_file = run_dir / rd.METRICS_FILE
    metrics = read_json(metrics_file, dict) if metrics_file.is_file() else {}
    return [
        _section(
            "metrics",
            "Metrics",
            _table(["figure", "value"], _scalars(metrics)) if metrics else "<p>unfinished run</p>",
        ),
        *_model_sections(run_dir),
        _section("curves", "Learning curves", _image(run_dir / rd.CURVES, "learning curves")),
        *_evaluation_sections(run_dir),
    ]


def study_sections(study_dir: Path) -> list[str]:
    summary = read_json(study_dir / SUMMARY_FILE, dict)
    trials = [t for t in summary.get("trials") or [] if isinstance(t, dict)]
    headers = sorted({k for t in trials for k in t}, key=lambda k: (k != "trial", k != "state", k))
    plots = summary.get("plots") or {}
    images = "".join(
        _image(Path(p), name) for name, p in plots.items() if isinstance(p, str) and p.endswith(".png")
    )
    return [
        _section("metrics", "Study", _table(["figure", "value"], _scalars(summary))),
        _section("trials", "Trials", _table(headers, [[t.get(h) for h in headers] for t in trials])),
        _section("plots", "Plots", images or "<p>no plots</p>"),
        *_evaluation_sections(study_dir),
    ]


def ensemble_sections(ensemble_dir: Path) -> list[str]:
    metrics_file = ensemble_dir / rd.METRICS_FILE
    metrics = read_json(metrics_file, dict) if metrics_file.is_file() else {}
    members = [m for m in metrics.get("members") or [] if isinstance(m, dict)]
    headers = sorted({k for m in members for k in m if not isinstance(m[k], (dict, list))})
    return [
        _section("metrics", "Ensemble", _table(["figure", "value"], _scalars(metrics))),
        _section("members", "Members", _table(headers, [[m.get(h) for h in headers] for m in members])),
        *_evaluation_sections(ensemble_dir),
    ]


def write_report(directory: str | Path) -> Path:
    """Write `directory`/report.html for a run, a study or an ensemble; returns its path."""
    directory = Path(directory)
    kind = target_kind(directory)
    if kind == "export":
        raise NotAModel(
            f"{directory}: an export; report.html is written for run, ensemble and study directories"
        )
    sections = {"run": run_sections, "study": study_sections, "ensemble": ensemble_sections}[kind](directory)
    title = html.escape(f"{directory.name}: kbuilder {kind} report")
    nav = "".join(f"<a href='#{ident}'>{ident}</a> " for ident in (s.split("'")[1] for s in sections))
    page = _PAGE.format(title=title, style=_STYLE, nav=nav, body="\n".join(sections), kind=json.dumps(kind))
    target = directory / REPORT_FILE
    write_text(target, page, mode=readable_mode())
    return target


_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}h2{border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}img{max-width:100%}
iframe{width:100%;height:640px;border:1px solid #ccc}nav a{margin-right:.6em}.missing{color:#a00}"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}</style></head>
<body data-kind={kind}><h1>{title}</h1><nav>{nav}</nav>
{body}
</body></html>
"""


def report_after_training(run_dir: str | Path) -> str:
    """report.html at the end of `kbuilder train`: its path, or why it was skipped (a report
    problem never fails a finished training run)."""
    try:
        return str(write_report(run_dir))
    except (KBuilderError, OSError, ValueError) as exc:
        return f"skipped: {exc}"

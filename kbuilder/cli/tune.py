"""`kbuilder tune`: hyperparameter search over the spec's `search` section, on Optuna.

kbuilder tune specs/mnist_mlp.yaml --data-dir ../shared/datasets            # SQLite in runs/tune-mnist_mlp
kbuilder tune specs/mnist_mlp.yaml --workers 2 --set search.trials=8 --epochs 2
kbuilder tune SPEC --storage postgresql://user@db/optuna --study lr-width     # on each machine: joins
kbuilder tune --report runs/tune-mnist_mlp                                     # table, best.yaml, plots again
"""

from __future__ import annotations

from pathlib import Path

import typer

from kbuilder.cli.common import FormatOpt, SetOpt, pick_format, quiet_tensorflow
from kbuilder.cli.output import Output
from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.zoo import spec_path


def _summary_text(summary: dict, search, fmt: str) -> str:
    from kbuilder.experiments.tune import render_table

    if fmt == "csv":
        return render_table(summary["trials"], search, "csv")
    text = render_table(summary["trials"], search, "markdown" if fmt == "markdown" else "plain")
    lines = [
        f"study '{summary['study']}' in {summary['storage']}: {summary['counted']} of {summary['target']} trials "
        f"({summary['complete']} complete, {summary['pruned']} pruned, {summary['failed']} failed)"
    ]
    best = summary.get("best")
    if best:
        values = ", ".join(f"{k}={best[k]}" for k in search.space)
        lines.append(f"best: trial {best['trial']} {search.metric}={best[search.metric]:.4f} ({values})")
        lines.append(
            f"best spec: {summary['best_spec']} (train it with `kbuilder train {summary['best_spec']}`)"
        )
    plots = [p for p in summary["plots"].values() if not p.startswith("skipped")]
    skipped = [f"{k} {p}" for k, p in summary["plots"].items() if p.startswith("skipped")]
    lines.append(f"plots: {', '.join(plots) or 'none'}" + (f" ({'; '.join(skipped)})" if skipped else ""))
    lines.append(
        f"trials table: {Path(summary['study_dir']) / 'trials.csv'}; summary: {Path(summary['study_dir']) / 'summary.json'}"
    )
    return text + "\n" + "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command()
    def tune(
        spec: str | None = typer.Argument(
            None, help="Spec file (YAML) with `train` and `search` sections, or a bundled spec name."
        ),
        overrides: list[str] | None = SetOpt,
        trials: int | None = typer.Option(
            None, "--trials", min=1, help="Trials to finish (default: search.trials)."
        ),
        workers: int = typer.Option(
            1, "--workers", "-w", min=1, max=256, help="Worker processes on this machine."
        ),
        storage: str | None = typer.Option(
            None,
            "--storage",
            help="Optuna RDB URL shared by workers on several machines "
            "(default: SQLite in the study folder).",
        ),
        study: str | None = typer.Option(
            None,
            "--study",
            help="Study name (default: the spec's name); the same name and storage join a running study.",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            help="Study folder: trials' run directories and the report (default runs/tune-<study>).",
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Only write and show the report of this study folder."
        ),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help="Folder searched first for the Keras data sets (also KBUILDER_DATA_DIR)."
        ),
        backend: str | None = typer.Option(
            None, "--backend", help="Keras backend: tensorflow (default), jax or torch."
        ),
        epochs: int | None = typer.Option(
            None, "--epochs", min=1, help="Shorthand for --set train.epochs=N."
        ),
        export: bool = typer.Option(
            False,
            "--export",
            help="Export every trial's model (off: trials are compared, the best retrained).",
        ),
        heartbeat: int = typer.Option(
            10,
            "--heartbeat",
            min=1,
            max=3600,
            help="Seconds between a running trial's heartbeats; "
            "a trial silent for 3 beats is failed and retried.",
        ),
        fmt: str | None = FormatOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per finished trial."),
    ) -> None:
        """Search the spec's `search` space: every trial is a run directory in the study folder."""
        fmt = pick_format(fmt)
        from kbuilder.experiments.tune import load_study_for_report, write_report
        from kbuilder.storage.atomic import finite

        if report is not None:
            if spec is not None:
                raise UsageError("--report reads a finished study; leave out SPEC")
            found, search, shown = load_study_for_report(report, storage, study)
            summary = write_report(found, search, Path(out or report), shown)
            Output(fmt == "json").result(finite(summary), _summary_text(summary, search, fmt))
            return
        if spec is None:
            raise UsageError("give a SPEC file with a search section (or --report STUDY_FOLDER)")
        if backend is not None and backend not in ("tensorflow", "jax", "torch"):
            from kbuilder.errors import did_you_mean

            raise UsageError(
                f"unknown backend '{backend}'{did_you_mean(backend, ('tensorflow', 'jax', 'torch'))}"
            )
        quiet_tensorflow()
        from kbuilder.experiments.tune import (
            Progress,
            TuneConfig,
            default_study_dir,
            open_study,
            run_study,
            shown_url,
            target_of,
        )
        from kbuilder.spec import load_spec

        path = spec_path(spec)
        extra = [f"train.epochs={epochs}"] if epochs is not None else []
        all_overrides = [*(overrides or ()), *extra]
        loaded = load_spec(path, overrides=all_overrides)
        if loaded.spec.search is None:
            raise UsageError(f"{path} has no search section (see README.md, 'Hyperparameter search')")
        if loaded.spec.train is None:
            raise UsageError(
                f"{path} has no train section: trials train the model (see README.md, 'Training')"
            )
        name = study or loaded.spec.name
        study_dir = Path(out) if out is not None else default_study_dir(name)
        config = TuneConfig(
            spec_file=str(path.resolve()),
            overrides=all_overrides,
            study_name=name,
            study_dir=str(study_dir),
            storage=storage or "",
            workers=workers,
            trials=trials,
            heartbeat=heartbeat,
            export=export,
            data_dir=str(data_dir) if data_dir else None,
            backend=backend,
        )
        study_dir.mkdir(parents=True, exist_ok=True)
        search = loaded.spec.search
        progress = Progress(search, target_of(config, search), enabled=not quiet)
        run_study(config, loaded, progress)
        found = open_study(config, search, loaded.data)
        summary = write_report(found, search, study_dir, shown_url(config.resolved_storage()))
        if summary["complete"] == 0:
            errors = [r["error"] for r in summary["trials"] if r.get("error")]
            raise RuntimeFailure(
                f"no trial of the study in {study_dir} completed"
                + (f"; the first error: {errors[0]}" if errors else "")
            )
        Output(fmt == "json").result(finite({"ok": True, **summary}), _summary_text(summary, search, fmt))

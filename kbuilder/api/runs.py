"""The training commands: train, tune (and its report), ensemble, compare.

Each one validates its specs (kbuilder.api.loading) before Keras, Optuna or matplotlib is
imported: that is why those modules are imported inside the functions, each saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbuilder.api.loading import SpecSource, is_yaml_text, load, validated
from kbuilder.backend import before_keras, check_backend, select_backend
from kbuilder.errors import Interrupted, RuntimeFailure, SpecError, UsageError
from kbuilder.experiments.sources import refuse_repeated
from kbuilder.spec import LoadedSpec
from kbuilder.spec.search import SearchSpec
from kbuilder.train.data import check_data_files, data_directory
from kbuilder.zoo import spec_path

if TYPE_CHECKING:
    from kbuilder.experiments.compare import Comparison
    from kbuilder.experiments.ensemble import EnsembleResult
    from kbuilder.train.options import TrainResult


def _train_source(
    spec: SpecSource | None, resume: str | Path | None, out: str | Path | None
) -> tuple[SpecSource, Path | None]:
    """(spec, run directory): `resume` reads the run's own resolved spec and writes back into it."""
    if resume is None:
        if spec is None:
            raise UsageError("give a SPEC file (or --resume RUN_DIR to continue an interrupted run)")
        return spec, None if out is None else Path(out)
    from kbuilder.storage.rundir import SPEC_FILE

    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise UsageError("--resume writes into the run directory it continues; leave out --out")
    if Path(resume).is_file():
        raise UsageError(
            f"--resume takes the run directory of an interrupted run; {resume} is a file "
            "(kbuilder never loads a model file to resume)"
        )
    saved = Path(resume) / SPEC_FILE
    if not saved.is_file():
        raise UsageError(f"{resume} is not a run directory (it has no {SPEC_FILE})")
    given = spec_path(spec) if isinstance(spec, str) else spec
    if given is not None and not (isinstance(given, Path) and given.resolve() == saved.resolve()):
        raise UsageError(f"--resume uses the spec saved in {resume}; leave out SPEC (or pass {saved})")
    return saved, Path(resume)


def _require_train_section(source: SpecSource) -> None:
    """A spec without a train section is refused as such, before overrides such as
    `--epochs 1` (train.epochs=1) make a train section of one field that then lacks `data`."""
    try:
        spec = load(source).spec
    except SpecError:  # perhaps one the overrides mend: validated() below says what is left
        return
    if spec.train is None:
        raise UsageError(f"the spec '{spec.name}' has no train section (see docs/training.md)")


def train(
    spec: SpecSource | None = None,
    overrides: Sequence[str] = (),
    *,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    backend: str | None = None,
    verbose: int | None = None,
    export: bool = True,
    export_formats: Sequence[str] = (),
    quantize: str = "none",
) -> TrainResult:
    """Train a spec as its `train` section says; returns a TrainResult (`run_dir`, `metrics`,
    `history`). Everything lands in the run directory `out` (default runs/<name>-<timestamp>;
    an unfinished one resumes); `resume` continues an interrupted run from the spec saved in
    it. `backend` (tensorflow, jax, torch) is also recorded as `train.backend`; `verbose=0`
    prints nothing per epoch; `export=False` skips the SavedModel export; `export_formats`
    ("onnx", "tflite") and `quantize` (the TFLite file's) add files to it.

    Example: `kb.train("mnist_mlp", ["train.epochs=1"], data_dir="datasets").metrics["test_accuracy"]`"""
    if quantize not in ("none", "float16", "int8") or (quantize != "none" and "tflite" not in export_formats):
        raise UsageError(f"quantize '{quantize}': choose none, float16 or int8, with the tflite format")
    source, run_dir = _train_source(spec, resume, out)
    if backend is not None:
        overrides = [*overrides, f"train.backend={check_backend(backend)}"]
    if overrides:
        _require_train_section(source)
    loaded = validated(source, overrides)
    _check_data_files(loaded, data_dir)
    chosen = select_backend(backend or (loaded.spec.train.backend if loaded.spec.train else None))
    before_keras(chosen)
    from kbuilder.train import TrainOptions  # Keras loads now, after the backend was chosen
    from kbuilder.train import train as run_training

    options = TrainOptions(
        data_dir=data_dir,
        out=run_dir,
        backend=chosen,
        verbose=verbose,
        export=export,
        export_formats=tuple(export_formats),
        quantize=quantize,
    )
    result = run_training(loaded, options)
    from kbuilder.use.report_html import report_after_training  # report.html beside the run's files

    result.metrics["report"] = report_after_training(result.run_dir)
    return result


def _check_data_files(loaded: LoadedSpec, data_dir: str | Path | None) -> None:
    """A data bomb or a label-count mismatch is refused from the files' headers before Keras loads."""
    if loaded.spec.train is not None:
        spec_dir = loaded.path.parent if loaded.path else None
        check_data_files(loaded.spec.train.data, spec_dir=spec_dir, data_dir=data_directory(data_dir))


@dataclass
class TuneResult:
    """A study's summary (as summary.json holds it) and the search section it ran."""

    summary: dict[str, Any]
    search: SearchSpec


def _spec_file(spec: SpecSource) -> Path:
    """Tune's workers read the spec from its file, so a file it must be."""
    if isinstance(spec, LoadedSpec) and spec.path is not None:
        return spec.path
    if isinstance(spec, Path):
        return spec
    if isinstance(spec, str) and not is_yaml_text(spec):
        return spec_path(spec)
    raise UsageError("tune's worker processes read the spec from a file: save the spec and pass its path")


def tune(
    spec: SpecSource,
    overrides: Sequence[str] = (),
    *,
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    backend: str | None = None,
    export: bool = False,
    heartbeat: int = 10,
    progress: bool = True,
    epochs: int | None = None,
) -> TuneResult:
    """Search the spec's `search` space on Optuna: every trial is a run directory in the study
    folder `out` (default runs/tune-<study>); `storage` (an RDB URL) and `study` join a study
    shared with other machines. Writes the report (trials.csv, best.yaml, plots, summary.json);
    `progress` shows the running trials and a line per finished one on stderr. `epochs` is
    what each trial trains (a cheaper search); best.yaml keeps the recipe's (an override
    `train.epochs=N` changes the recipe, and best.yaml with it).

    Example: `kb.tune("specs/mnist_mlp.yaml", ["search.trials=4"], data_dir="datasets").summary["best"]`"""
    if backend is not None:
        check_backend(backend)
    path = _spec_file(spec)
    recipe = validated(path, overrides)
    trial_overrides = [*overrides, *([] if epochs is None else [f"train.epochs={epochs}"])]
    loaded = validated(path, trial_overrides) if epochs is not None else recipe
    if loaded.spec.search is None:
        raise UsageError(f"{path} has no search section (see docs/experiments.md, 'Hyperparameter search')")
    if loaded.spec.train is None:
        raise UsageError(f"{path} has no train section: trials train the model (see docs/training.md)")
    _check_data_files(loaded, data_dir)
    # Optuna loads here, only after the spec validated; Keras after the workers and the storage
    # URL are checked too (before_keras below).
    from kbuilder.experiments.tune import (
        Progress,
        TuneConfig,
        check_workers,
        default_study_dir,
        open_study,
        run_study,
        shown_url,
        storage_url,
        target_of,
        write_report,
    )

    check_workers(workers)
    if storage:
        storage_url(storage)  # an in-memory or driverless URL is refused before the folder is made
    try:
        before_keras(backend)
        name = study or loaded.spec.name
        study_dir = Path(out) if out is not None else default_study_dir(name)
        config = TuneConfig(
            spec_file=str(path.resolve()),
            overrides=trial_overrides,
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
        run_study(config, loaded, Progress(search, target_of(config, search), enabled=progress), recipe.data)
        found = open_study(config, search, loaded.data)
        summary = write_report(found, search, study_dir, shown_url(config.resolved_storage()))
        if summary["complete"] == 0:
            errors = [r["error"] for r in summary["trials"] if r.get("error")]
            raise RuntimeFailure(
                f"no trial of the study in {study_dir} completed"
                + (f"; the first error: {errors[0]}" if errors else "")
            )
        return TuneResult(summary, search)
    except KeyboardInterrupt:  # Ctrl-C outside the workers (opening the study, the report)
        raise Interrupted(
            "interrupted; run the same command to resume the study (finished trials are kept)"
        ) from None


def tune_report(
    folder: str | Path, *, storage: str | None = None, study: str | None = None, out: str | Path | None = None
) -> TuneResult:
    """Write and return the report of a study (its folder, or `storage` and `study`) again,
    into `out` (default: the folder).

    Example: `kb.tune_report("runs/tune-mnist_mlp").summary["best_spec"]`"""
    # Optuna and matplotlib load only for a study's report.
    from kbuilder.experiments.tune import load_study_for_report, write_report

    found, search, shown = load_study_for_report(Path(folder), storage, study)
    return TuneResult(write_report(found, search, Path(out or folder), shown), search)


def ensemble(
    sources: Sequence[str],
    overrides: Sequence[str] = (),
    *,
    members: int = 1,
    bagging: bool = False,
    combine: str = "average",
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    backend: str | None = None,
    verbose: int | None = None,
    export: bool = True,
) -> EnsembleResult:
    """Train (spec files, `members` seeds each; `bagging`: bootstrap resamples) or collect (run
    directories) the members, evaluate each and the ensemble (`combine`: average or vote),
    export one combined model. Returns an EnsembleResult (`directory`, `metrics`).

    Example: `kb.ensemble(["mnist_mlp"], members=3, data_dir="datasets").metrics["test_accuracy"]`"""
    if backend is not None:
        check_backend(backend)
    refuse_repeated(sources)  # before Keras loads
    for source in sources:
        if not Path(source).is_dir():  # a spec to train: refused now if it is bad
            validated(source, overrides)
    before_keras(backend)
    from kbuilder.experiments.ensemble import EnsembleOptions, run_ensemble  # Keras: after validation

    options = EnsembleOptions(
        sources=list(sources),
        members=members,
        bagging=bagging,
        combine=combine,
        overrides=list(overrides),
        data_dir=data_dir,
        out=out,
        backend=backend,
        verbose=verbose,
        export=export,
    )
    return run_ensemble(options)


def compare(
    runs: Sequence[str | Path], figure: str | Path | None = None, *, all_settings: bool = False
) -> Comparison:
    """Runs side by side: the settings that differ (`search` and `expect` aside; two
    architectures summarized as params, MACs and layers unless `all_settings`) and the final
    figures (a Comparison); with `figure`, their learning curves overlaid in one PNG.

    Example: `kb.compare(["runs/relu", "runs/sigmoid"], "relu_vs_sigmoid.png").settings`"""
    from kbuilder.experiments.compare import (  # matplotlib, for the figure
        check_figure_target,
        compare_runs,
        plot_curves,
    )

    if figure is not None:
        check_figure_target(figure)
    comparison = compare_runs(runs, all_settings)
    if figure is not None:
        plot_curves(comparison, figure)
    return comparison

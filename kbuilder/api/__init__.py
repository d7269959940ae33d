"""The Python API: one function per `kbuilder` command, shared by the CLI, scripts and notebooks.

    import kbuilder.api as kb

    built = kb.build("lenet5_modern")        # a path, a bundled name, YAML text or a dict
    print(kb.table(built))                   # the layer table as text
    kb.check(built)                          # raises CheckFailed when it differs from `expect`
    kb.export(built, "out/lenet5", formats=["onnx"])
    run = kb.train("mnist_mlp", ["train.epochs=1"], data_dir="datasets")   # .metrics, .run_dir

Commands and functions: validate -> `validate` (and `load`), build -> `build`, `table`,
`report` (and `static`: the figures from the spec alone), check -> `check` (and
`differences`), diagram -> `diagram`, export -> `export` (and `manifest`), train -> `train`,
tune -> `tune` and `tune_report`, ensemble -> `ensemble`, compare -> `compare`, schema ->
`schema`, zoo -> `zoo`, evaluate -> `evaluate`, inspect -> `inspect`, report -> `run_report`
(`report` is the layer figures of a model), predict -> `predict`, export RUN_DIR -> `export_trained`,
`--weights` -> `load_weights` (and `weights_table`), profile -> `profile`.

A spec is loaded and validated before Keras is imported, so a bad one is refused in a
fraction of a second with located problems (`file:line:column: path: message`; a spec given
as text is called `<string>`, a dict `<dict>`). Errors are kbuilder.errors types (SpecError,
BuildError, CheckFailed, UsageError, DataError, RuntimeFailure).
"""

from kbuilder.api.importing import ImportResult, import_model
from kbuilder.api.loading import SpecSource, load, validate
from kbuilder.api.models import (
    build,
    check,
    diagram,
    differences,
    export,
    load_weights,
    manifest,
    report,
    schema,
    static,
    table,
    weights_table,
    zoo,
)
from kbuilder.api.profile import profile
from kbuilder.api.runs import TuneResult, compare, ensemble, train, tune, tune_report
from kbuilder.api.use import evaluate, inspect, run_report
from kbuilder.api.using import export_trained, predict

__all__ = [
    "ImportResult",
    "SpecSource",
    "TuneResult",
    "build",
    "check",
    "compare",
    "diagram",
    "differences",
    "ensemble",
    "evaluate",
    "export",
    "export_trained",
    "import_model",
    "inspect",
    "load",
    "load_weights",
    "manifest",
    "predict",
    "profile",
    "report",
    "run_report",
    "schema",
    "static",
    "table",
    "train",
    "tune",
    "tune_report",
    "validate",
    "weights_table",
    "zoo",
]

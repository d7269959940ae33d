"""The stages of one training run, in order, each filling its part of the `TrainingRun`."""

from __future__ import annotations

from kbuilder.train import fit, phases, prepare, report
from kbuilder.train.options import TrainResult
from kbuilder.train.run import TrainingRun


def run_stages(run: TrainingRun) -> TrainResult:
    """data -> build and compile -> fit -> finish (after runner.set_up_process); Keras's
    global settings are restored after."""
    prepare.load_data(run)
    with prepare.keras_settings(run):
        prepare.build_model(run)
        prepare.prepare_inputs(run)
        prepare.compile_model(run)
        fit.fit(run, phases.fit_phases if run.train_spec.phases else None)
        return report.finish(run)

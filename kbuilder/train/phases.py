"""A phased run's fits (train.phases): at each phase the frozen layers are set and the model
compiled again with the phase's optimizer (Keras's transfer-learning guide: a change of
`trainable` takes effect at the next compile), then `model.fit` trains the phase's epochs,
counted over the whole run (phase 2 of 3 + 5 epochs is epochs 4 to 8).

Resuming: the backup after epoch E was written by the phase that trained epoch E; its
optimizer state fits that phase's optimizer. So the run compiles that phase, restores the
backup into it, and moves on to the next phase if E was that phase's last epoch (a fresh
optimizer, as an uninterrupted run gets there).
"""

from __future__ import annotations

import sys

from kbuilder.train import freeze, pipeline, prepare
from kbuilder.train.checkpoints import RunBackup
from kbuilder.train.fit import fit_arguments
from kbuilder.train.freeze import PhasePlan
from kbuilder.train.run import TrainingRun


def fit_phases(run: TrainingRun) -> None:
    """Each phase not finished yet, in order; a diverged phase ends the run (fit.fit reports it)."""
    plans, resume = run.phase_plans, run.start_epoch
    run.phases = [describe(run, plan) for plan in plans]
    writer = _phase_of_epoch(plans, resume)
    backup = next((c for c in run.callbacks if isinstance(c, RunBackup)), None)
    if backup is not None:
        backup.restore_on_begin = False
        if resume:
            enter(run, plans[writer])
            backup.set_model(run.model)  # fit sets it too, later: the restore comes first
            backup.restore()
    for index, plan in enumerate(plans):
        if plan.end <= resume:
            continue
        if not (resume and index == writer and backup is not None):
            enter(run, plan)
        first = max(plan.start, resume)
        run.recorder.phase = plan.name
        run.train_input = prepare.train_input(run, first)
        run.model.fit(run.train_input, initial_epoch=first, epochs=plan.end, verbose=0, **fit_arguments(run))
        if run.guard.diverged_at is not None:
            return


def _phase_of_epoch(plans: list[PhasePlan], epoch: int) -> int:
    """The phase that trained `epoch` (counted from 1); the first for 0 (a fresh run)."""
    return next((i for i, p in enumerate(plans) if p.start < epoch <= p.end), 0)


def enter(run: TrainingRun, plan: PhasePlan) -> None:
    """The phase's frozen layers set and the model compiled with its optimizer, said on stderr."""
    pipeline.remove_fused_train_step(run.model)  # compile_model installs it again
    trainable = freeze.apply(run.model, plan)
    prepare.compile_model(run, plan.optimizer, plan.epochs)
    if run.options.verbose != 0:
        frozen = f"{len(plan.frozen)} layers frozen" if plan.frozen else "nothing frozen"
        print(
            f"phase {plan.name}: epochs {plan.start + 1}-{plan.end}, {frozen}, "
            f"{trainable:,} trainable parameters, {plan.optimizer.type} "
            f"learning rate {plan.optimizer.learning_rate:g}",
            file=sys.stderr,
        )


def describe(run: TrainingRun, plan: PhasePlan) -> dict:
    """The phase's entry in metrics.json; a phase that leaves nothing to train is refused."""
    trainable = freeze.require_trainable(freeze.apply(run.model, plan), plan)
    return {
        "name": plan.name,
        "epochs": [plan.start + 1, plan.end],
        "optimizer": plan.optimizer.type,
        "learning_rate": plan.optimizer.learning_rate,
        "trainable_params": trainable,
        "frozen": sorted(plan.frozen),
    }

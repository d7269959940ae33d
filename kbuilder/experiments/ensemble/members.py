"""Ensemble members: which runs make up an ensemble, and training the ones that do not exist yet.

A member is an ordinary run directory. Given a run directory it is used as it is; given a spec,
`kbuilder ensemble` trains it through `kbuilder.train.train` into `<ensemble>/members/<name>/`
with `--set`-style overrides for its seed (and, for bagging, `train.data.bootstrap`), so each
member is validated, recorded in its resolved spec.yaml and resumable like any run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.experiments.sources import refuse_repeated
from kbuilder.spec import load_spec
from kbuilder.storage import rundir as rd
from kbuilder.storage.atomic import write_json
from kbuilder.storage.run_reader import RunError, is_run_dir, read_json
from kbuilder.train import TrainOptions, train
from kbuilder.zoo import spec_path

MEMBERS_DIR = "members"
PLAN_FILE = "plan.json"
MAX_MEMBERS = 100


@dataclass
class MemberPlan:
    """One member: an existing run, or a spec to train into `run_dir` with `overrides`."""

    name: str
    run_dir: str
    spec_file: str | None = None  # None: an existing run directory, used as it is
    overrides: list[str] = field(default_factory=list)
    seed: int | None = None
    bootstrap: int | None = None

    @property
    def trained_here(self) -> bool:
        return self.spec_file is not None


def plan_members(
    sources: Sequence[str], *, members: int, bagging: bool, overrides: Sequence[str], ensemble_dir: Path
) -> list[MemberPlan]:
    """Run directories count once; each spec is trained `members` times with seeds base, base+1, ...

    The base seed is the spec's train.seed (after --set), or 0 when the spec asks for a random one.
    With bagging, member k trains on bootstrap resample k of the training set.
    """
    if not 1 <= members <= MAX_MEMBERS:
        raise UsageError(f"--members must be between 1 and {MAX_MEMBERS}, got {members}")
    refuse_repeated(sources)
    plans: list[MemberPlan] = []
    spec_sources = 0
    for source in sources:
        path = Path(source)
        if is_run_dir(path):
            plans.append(MemberPlan(name=f"m{len(plans)}-{path.name}", run_dir=str(path)))
            continue
        if path.is_dir():
            raise RunError(f"{path}: neither a spec file nor a run directory (it has no {rd.SPEC_FILE})")
        spec_file = spec_path(source)
        loaded = load_spec(spec_file, overrides=overrides)  # located errors before anything trains
        if loaded.spec.train is None:
            raise UsageError(
                f"{spec_file}: the spec has no train section, so it cannot train ensemble members"
            )
        spec_sources += 1
        base = loaded.spec.train.seed or 0
        for offset in range(members):
            index = len(plans)
            seed = base + offset
            bootstrap = index if bagging else None
            extra = [f"train.seed={seed}"] + ([f"train.data.bootstrap={bootstrap}"] if bagging else [])
            name = f"m{index}-{loaded.spec.name}-seed{seed}" + (f"-bag{bootstrap}" if bagging else "")
            plans.append(
                MemberPlan(
                    name=name,
                    run_dir=str(ensemble_dir / MEMBERS_DIR / name),
                    spec_file=str(spec_file),
                    overrides=[*overrides, *extra],
                    seed=seed,
                    bootstrap=bootstrap,
                )
            )
    if not spec_sources and (members > 1 or bagging or overrides):
        raise UsageError(
            "--members, --bagging and --set apply to specs that are trained; all sources given are run directories"
        )
    if len(plans) < 2:
        raise UsageError(
            f"an ensemble needs at least 2 members, got {len(plans)}; "
            "give more sources, or one spec with --members N"
        )
    if len(plans) > MAX_MEMBERS:
        raise UsageError(f"{len(plans)} members; the limit is {MAX_MEMBERS}")
    return plans


def record_plan(ensemble_dir: Path, plans: list[MemberPlan], settings: dict[str, Any]) -> None:
    """plan.json: what the ensemble is made of; a rerun with --out continues only the same plan."""
    # Trained members are recorded relative to the ensemble, so a moved ensemble still continues.
    members = [
        {**asdict(p), "run_dir": f"{MEMBERS_DIR}/{p.name}"} if p.trained_here else asdict(p) for p in plans
    ]
    plan = {"settings": settings, "members": members}
    file = ensemble_dir / PLAN_FILE
    if file.is_file():
        if read_json(file, dict) != plan:
            raise UsageError(
                f"{ensemble_dir} holds an unfinished ensemble of other members or settings ({file}); "
                "repeat its command to continue it, or choose a new --out"
            )
        return
    write_json(file, plan)


def train_members(
    plans: list[MemberPlan], *, data_dir, backend: str, verbose: int | None
) -> list[dict[str, Any]]:
    """Train (or resume) every planned member that has not finished; returns what each one did."""
    done: list[dict[str, Any]] = []
    for number, plan in enumerate(plans, start=1):
        run_dir = Path(plan.run_dir)
        if plan.spec_file is None or (run_dir / rd.METRICS_FILE).is_file():  # not trained here, or done
            done.append({"member": plan.name, "trained": False})
            continue
        verb = "resuming" if (run_dir / rd.BACKUP_DIR).is_dir() else "training"
        print(f"member {number}/{len(plans)}: {verb} {plan.name}", file=sys.stderr, flush=True)
        loaded = load_spec(plan.spec_file, overrides=plan.overrides)
        try:
            result = train(
                loaded,
                TrainOptions(data_dir=data_dir, out=run_dir, backend=backend, verbose=verbose, export=False),
            )
        except RuntimeFailure as exc:
            # The member's own advice (`kbuilder train --resume`) would finish only this member.
            raise RuntimeFailure(
                f"member {plan.name} ({run_dir}): {exc}; run the same `kbuilder ensemble` command "
                f"with --out {run_dir.parent.parent} to continue the ensemble"
            ) from None
        done.append(
            {"member": plan.name, "trained": True, "train_seconds": result.metrics.get("train_seconds")}
        )
        import keras  # only now: the member's run chose the backend, which importing Keras fixes

        keras.backend.clear_session()  # the next member starts from a clean graph and name counters
    return done

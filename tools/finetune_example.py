"""Fine-tuning against training from scratch, end to end (tools/finetune_example.md).

1. Trains lenet5_modern on MNIST (specs/lenet5_modern.yaml; --pretrain-epochs to shorten it)
   into runs/lenet5_modern, the run specs/lenet5_finetune_fashion.yaml names in
   `weights.from`, or reuses that run when it finished before (--pretrained elsewhere).
2. `--select`: picks the recipe. Each candidate (RECIPES) trains on 800 of the 1,000
   Fashion-MNIST images and is scored on the other 200 (train.data.validation split 0.2);
   the test set is not looked at. The winner is what the spec's train section holds.
3. Otherwise, for each seed: the spec as written (its recipe, the MNIST weights through its
   `weights` section: every layer but `output`); the same network trained from scratch on the
   same images for as many epochs with train.optimizer, no freezing, no phases; and that
   from-scratch recipe from the MNIST weights ("warm start"). Prints the test accuracy (10,000
   Fashion-MNIST test images) of each, mean and sample std over the seeds, and writes them with
   the load average to <out>/summary.json.

    PYTHONPATH=$PWD python tools/finetune_example.py --data-dir ../shared/datasets --select
    PYTHONPATH=$PWD python tools/finetune_example.py --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

import kbuilder.api as kb

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_SPEC = REPO / "specs" / "lenet5_modern.yaml"
FINETUNE_SPEC = REPO / "specs" / "lenet5_finetune_fashion.yaml"
SELECT_SEED = 0
HELD_OUT = {"type": "split", "fraction": 0.2}  # 200 of the 1,000 images score the candidates

# Candidate recipes, 30 epochs each (as the from-scratch arm): train-section fields over the spec's.
RECIPES: dict[str, dict] = {
    "two-phase, 1e-4": {  # Keras's transfer-learning guide: a head on frozen features, then all at /10
        "freeze": ["c1", "c3", "c5"],
        "phases": [
            {"name": "head", "epochs": 10},
            {"name": "all", "epochs": 20, "unfreeze": "all", "learning_rate": 0.0001},
        ],
    },
    "two-phase, 1e-3": {
        "freeze": ["c1", "c3", "c5"],
        "phases": [
            {"name": "head", "epochs": 10},
            {"name": "all", "epochs": 20, "unfreeze": "all", "learning_rate": 0.001},
        ],
    },
    "freeze c1 only": {"freeze": ["c1"], "epochs": 30},
    "no freeze, 3e-4": {"epochs": 30, "optimizer": {"type": "adam", "learning_rate": 0.0003}},
    "no freeze, 1e-3 (warm start)": {"epochs": 30},
}
RECIPE_FIELDS = ("freeze", "phases", "epochs", "optimizer")
SCRATCH_OPTIMIZER = {"type": "adam", "learning_rate": 0.001}  # lenet5_modern's, for both baselines


def pretrain(run: Path, epochs: int | None, data_dir: Path) -> Path:
    """The MNIST run's directory (its last.keras holds the weights); trained unless it finished."""
    if (run / "metrics.json").is_file():
        print(f"reusing {run}", file=sys.stderr)
        return run
    overrides = [f"train.epochs={epochs}"] if epochs else []
    result = kb.train(PRETRAIN_SPEC, overrides, data_dir=data_dir, out=run, verbose=0, export=False)
    print(f"MNIST: test accuracy {result.metrics['test_accuracy']:.4f} after {len(result.history)} epochs")
    return run


def finetune_spec(seed: int, pretrained: Path) -> dict:
    """The fine-tuning spec as committed, with `seed`; its `weights.from` pointed at
    `pretrained` (what `--weights` does on the command line)."""
    tuned = yaml.safe_load(FINETUNE_SPEC.read_text())
    tuned["weights"]["from"] = str(pretrained.resolve())
    tuned["train"]["seed"] = seed
    return tuned


def with_recipe(spec: dict, name: str, recipe: dict, *, pretrained: bool = True) -> dict:
    """`spec` with its train section's recipe replaced by `recipe` (no weights unless `pretrained`)."""
    spec = copy.deepcopy(spec)
    spec["name"] = name
    train = spec["train"]
    for field in RECIPE_FIELDS:
        train.pop(field, None)
    train["optimizer"] = dict(SCRATCH_OPTIMIZER)
    train.update(copy.deepcopy(recipe))
    if not pretrained:
        spec.pop("weights")
    return spec


def arms(seed: int, pretrained: Path) -> list[tuple[str, dict]]:
    """The three arms of one seed: the spec's recipe, from scratch, warm start."""
    tuned = finetune_spec(seed, pretrained)
    train = tuned["train"]
    epochs = sum(p["epochs"] for p in train["phases"]) if train.get("phases") else train["epochs"]
    scratch = {"epochs": epochs}  # Adam 0.001, no freezing, no phases
    return [
        ("fine-tuned", tuned),
        ("from scratch", with_recipe(tuned, "lenet5_scratch_fashion", scratch, pretrained=False)),
        ("warm start", with_recipe(tuned, "lenet5_warm_fashion", scratch)),
    ]


def train_one(spec: dict, out: Path, data_dir: Path) -> dict:
    """One run: its test accuracy, last training and validation accuracy, epochs and seconds."""
    started = time.perf_counter()
    result = kb.train(spec, data_dir=data_dir, out=out, verbose=0, export=False)
    last = result.history[-1] if result.history else {}
    return {
        "test_accuracy": result.metrics["test_accuracy"],
        "val_accuracy": last.get("val_accuracy"),
        "train_accuracy": last.get("accuracy"),
        "epochs": len(result.history),
        "seconds": round(time.perf_counter() - started, 1),
    }


def summary(values: list[float]) -> dict:
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def select(pretrained: Path, out: Path, data_dir: Path) -> dict:
    """Each candidate recipe on the 800/200 split of the 1,000 images: validation accuracy only."""
    base = finetune_spec(SELECT_SEED, pretrained)
    base["train"]["data"]["validation"] = dict(HELD_OUT)
    rows = {}
    for index, (label, recipe) in enumerate(RECIPES.items()):
        spec = with_recipe(base, f"lenet5_select{index}_fashion", recipe)
        figures = train_one(spec, out / f"select-{index}", data_dir)
        del figures["test_accuracy"]  # not looked at: the choice is made on validation alone
        rows[label] = figures
        print(f"{label:>30}: validation accuracy {figures['val_accuracy']:.4f} ({figures['seconds']} s)")
    best = max(rows, key=lambda label: rows[label]["val_accuracy"])
    print(f"chosen on validation: {best}")
    return {"candidates": rows, "chosen": best, "recipe": RECIPES[best]}


def compare(pretrained: Path, out: Path, data_dir: Path, seeds: list[int]) -> dict:
    """The spec's recipe, from scratch and warm start for each seed; test accuracy summarized."""
    results: dict[str, list[dict]] = {}
    for seed in seeds:
        for label, spec in arms(seed, pretrained):
            figures = train_one(spec, out / f"{spec['name']}-seed{seed}", data_dir)
            results.setdefault(label, []).append({"seed": seed, **figures})
            print(
                f"seed {seed} {label:>12}: test accuracy {figures['test_accuracy']:.4f} ({figures['seconds']} s)"
            )
    report: dict = {
        label: {"runs": rows, "test_accuracy": summary([r["test_accuracy"] for r in rows])}
        for label, rows in results.items()
    }
    for label in results:
        s = report[label]["test_accuracy"]
        print(f"{label:>12}: {s['mean']:.4f} +- {s['std']:.4f} (min {s['min']:.4f}, max {s['max']:.4f})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "finetune_example")
    parser.add_argument("--pretrained", type=Path, default=REPO / "runs" / "lenet5_modern")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: the spec's 10")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--select", action="store_true", help="score the candidate recipes on validation")
    args = parser.parse_args(argv)
    started, load_before = time.perf_counter(), os.getloadavg()
    pretrained = pretrain(args.pretrained, args.pretrain_epochs, args.data_dir)
    if args.select:
        report = select(pretrained, args.out, args.data_dir)
    else:
        report = compare(pretrained, args.out, args.data_dir, args.seeds)
    report.update(
        pretrained_run=str(pretrained),
        seconds=round(time.perf_counter() - started, 1),
        load_average={"start": load_before, "end": os.getloadavg()},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    name = "select.json" if args.select else "summary.json"
    (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{time.perf_counter() - started:.0f} s; load average {load_before} -> {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

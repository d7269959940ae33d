"""Fine-tuning against training from scratch, end to end (tools/finetune_example.md).

1. Trains lenet5_modern on MNIST (specs/lenet5_modern.yaml; --pretrain-epochs to shorten it),
   or reuses that run when it finished before in --out.
2. For each seed: fine-tunes specs/lenet5_finetune_fashion.yaml (1,000 Fashion-MNIST images,
   a head phase on frozen features, then everything at a lower learning rate) from the MNIST
   weights; trains the same network from scratch on the same images for as many epochs
   with train.optimizer, no freezing, no phases; and, to tell the starting weights from the
   recipe, trains that from-scratch recipe from the MNIST weights ("warm start").
3. Prints the test accuracy (10,000 Fashion-MNIST test images) of both, mean and spread over
   the seeds, and writes them to <out>/summary.json.

Until the spec's `weights: {from: ...}` field is merged, the fine-tuned runs get their
starting weights here: the model is built from the spec, then each layer but the new head
takes the MNIST run's weights by name (Keras `set_weights`).

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
NEW_HEAD = ("output",)  # the layer the fine-tuned network does not take from MNIST


def pretrain(out: Path, epochs: int | None, data_dir: Path) -> Path:
    """The MNIST run's directory (its last.keras holds the weights); trained unless it exists."""
    run = out / "lenet5_modern"
    if (run / "metrics.json").is_file():
        print(f"reusing {run}", file=sys.stderr)
        return run
    overrides = [f"train.epochs={epochs}"] if epochs else []
    result = kb.train(PRETRAIN_SPEC, overrides, data_dir=data_dir, out=run, verbose=0, export=False)
    print(f"MNIST: test accuracy {result.metrics['test_accuracy']:.4f} after {len(result.history)} epochs")
    return run


def specs(seed: int) -> tuple[dict, dict, dict]:
    """The fine-tuning spec, its from-scratch twin and the twin for a warm start, with `seed`."""
    tuned = yaml.safe_load(FINETUNE_SPEC.read_text())
    tuned.pop("weights", None)  # loaded by `starting_from` below until the field exists
    tuned["train"]["seed"] = seed
    scratch = copy.deepcopy(tuned)
    scratch["name"] = "lenet5_scratch_fashion"
    train = scratch["train"]
    train["epochs"] = sum(p["epochs"] for p in train.pop("phases"))
    train.pop("freeze")
    warm = {**copy.deepcopy(scratch), "name": "lenet5_warm_fashion"}
    return tuned, scratch, warm


def starting_from(run: Path):
    """A model factory: the spec's model with every layer but the new head from `run`."""

    def build(loaded):
        # Deferred: the build and Keras import only after kbuilder.train selected the backend.
        from kbuilder.build import build_model
        from kbuilder.train.safe_keras import load_keras_file

        model = build_model(loaded)
        pretrained = load_keras_file(run / "last.keras", compile=False)
        for layer in model.layers:
            if layer.weights and layer.name not in NEW_HEAD:
                layer.set_weights(pretrained.get_layer(layer.name).get_weights())
        return model

    return build


def train_one(spec: dict, out: Path, data_dir: Path, build=None) -> dict:
    """One run; its test accuracy, epochs and seconds."""
    from kbuilder.train import TrainOptions, train

    options = TrainOptions(data_dir=data_dir, out=out, verbose=0, export=False, build=build)
    started = time.perf_counter()
    result = train(kb.load(spec), options)
    return {
        "test_accuracy": result.metrics["test_accuracy"],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "finetune_example")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: the spec's 10")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pretrained = pretrain(args.out, args.pretrain_epochs, args.data_dir)
    results: dict[str, list[dict]] = {"fine-tuned": [], "from scratch": [], "warm start": []}
    for seed in args.seeds:
        tuned, scratch, warm = specs(seed)
        runs = (
            ("fine-tuned", tuned, starting_from(pretrained)),
            ("from scratch", scratch, None),
            ("warm start", warm, starting_from(pretrained)),
        )
        for label, spec, build in runs:
            out = args.out / f"{spec['name']}-seed{seed}"
            figures = train_one(spec, out, args.data_dir, build)
            results[label].append({"seed": seed, **figures})
            print(
                f"seed {seed} {label:>12}: test accuracy {figures['test_accuracy']:.4f} ({figures['seconds']} s)"
            )
    report = {
        label: {"runs": rows, "test_accuracy": summary([r["test_accuracy"] for r in rows])}
        for label, rows in results.items()
    }
    report["pretrained_run"] = str(pretrained)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average"] = os.getloadavg()
    (args.out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    for label in results:
        s = report[label]["test_accuracy"]
        print(f"{label:>12}: {s['mean']:.4f} +- {s['std']:.4f} (min {s['min']:.4f}, max {s['max']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export measurements too heavy for the test suite.

python tools/bench_export.py zoo [--specs lenet5,alexnet] [--json out.json]
    every bundled spec at full size: SavedModel + .keras + ONNX + TFLite written and
    checked by `kbuilder.export` (two batch sizes, max(1e-5, 1e-5 x each sample's largest |output|));
    prints per spec the seconds, file sizes and each file's worst tolerance ratio
    (difference over its bound; at most 1 passes), or the error. One process per spec.

python tools/bench_export.py quantize [--epochs 2] [--data-dir ../shared/datasets]
    trains lenet5_modern on MNIST, exports TFLite as float32, float16 and int8 (calibrated
    on 200 training samples) and prints each file's size and MNIST test accuracy next to
    the Keras model's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _sizes(directory: Path) -> dict[str, float]:
    sizes = {}
    for entry in sorted(directory.iterdir()):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = round(sum(p.stat().st_size for p in files) / 2**20, 2)
    return sizes


def export_one(spec: str, formats: tuple[str, ...] = ("onnx", "tflite")) -> dict:
    """In a child process: build `spec` at full size and export `formats`, checked."""
    from kbuilder import api

    started = time.perf_counter()
    built = api.build(spec)
    from kbuilder.export.check import randomize_weights

    randomize_weights(built.model)  # untrained deep nets give one output for every input
    built_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as work:
        try:
            out = api.export(built, Path(work) / "export", formats=list(formats))
        except Exception as error:  # noqa: BLE001  reported, the next spec goes on
            return {
                "spec": Path(spec).stem,
                "params": built.model.count_params(),
                "error": f"{type(error).__name__}: {error}"[:600],
            }
        manifest = json.loads((out / "manifest.json").read_text())
        return {
            "spec": Path(spec).stem,
            "params": built.model.count_params(),
            "build_s": round(built_s, 1),
            "export_s": round(time.perf_counter() - started - built_s, 1),
            "mib": _sizes(out),
            "tolerance_ratio": manifest["check"]["tolerance_ratio"],
            "max_abs_diff": manifest["check"]["max_abs_diff"],
        }


def zoo(args: argparse.Namespace) -> list[dict]:
    specs = sorted((REPO / "specs").glob("*.yaml"))
    if args.specs:
        wanted = set(args.specs.split(","))
        specs = [s for s in specs if s.stem in wanted]
    results = []
    for spec in specs:
        code = (
            f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from tools.bench_export import export_one; "
            f"print(json.dumps(export_one({str(spec)!r}, {tuple(args.formats.split(','))!r})))"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run(
                [sys.executable, "-W", "ignore", "-c", code],
                check=False,  # a failed spec is reported from its output, the next one goes on
                capture_output=True,
                text=True,
                env=env,
                timeout=args.timeout,
            )
            lines = done.stdout.strip().splitlines()
            errors = [
                line
                for line in done.stderr.splitlines()
                if line.strip() and not line.startswith(("I0000", "W0000", "E0000"))
            ]
            result = (
                json.loads(lines[-1])
                if done.returncode == 0 and lines
                else {
                    "spec": spec.stem,
                    "error": f"exit code {done.returncode}"
                    + (" (killed: out of memory?)" if done.returncode == -9 else "")
                    + (f": {errors[-1]}" if errors else ""),
                }
            )
        except subprocess.TimeoutExpired:
            result = {"spec": spec.stem, "error": f"over {args.timeout} s"}
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def _tflite_predictions(path: Path, x, batch: int = 500):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return np.concatenate(
        [
            np.argmax(next(iter(runner(**{name: x[start : start + batch]}).values())), -1)
            for start in range(0, len(x), batch)
        ]
    )


def quantize(args: argparse.Namespace) -> list[dict]:
    import keras
    import numpy as np

    from kbuilder import api
    from kbuilder.export import export_model
    from kbuilder.train import TrainOptions, train
    from kbuilder.train.calibration import spec_samples

    spec = REPO / "specs" / "lenet5_modern.yaml"
    loaded = api.load(spec, [f"train.epochs={args.epochs}"])
    results = []
    with tempfile.TemporaryDirectory() as work:
        run = train(
            loaded, TrainOptions(data_dir=args.data_dir, out=Path(work) / "run", verbose=0, export=False)
        )
        model = keras.saving.load_model(run.run_dir / "last.keras", safe_mode=True)
        x_test, y_test = spec_samples(loaded, args.data_dir, split="test", limit=10**9)
        calibration = [spec_samples(loaded, args.data_dir)[0]]
        keras_predictions = np.argmax(model.predict(x_test, verbose=0), -1)
        keras_accuracy = float(np.mean(keras_predictions == y_test))
        results.append(
            {
                "file": "keras",
                "test_accuracy": keras_accuracy,
                "epochs": args.epochs,
                "run_test_accuracy": run.metrics.get("test_accuracy"),
            }
        )
        print(json.dumps(results[-1]), flush=True)
        for mode in ("none", "float16", "int8"):
            out = export_model(
                model,
                Path(work) / f"export-{mode}",
                manifest={},
                formats=["tflite"],
                quantize=mode,
                calibration=calibration if mode == "int8" else None,
            )
            predictions = _tflite_predictions(out / "model.tflite", x_test)
            accuracy = float(np.mean(predictions == y_test))
            results.append(
                {
                    "file": f"tflite {mode}",
                    "kib": round((out / "model.tflite").stat().st_size / 1024, 1),
                    "test_accuracy": accuracy,
                    "change_pp": round(100 * (accuracy - keras_accuracy), 2),
                    "predictions_differing_from_keras": int(np.sum(predictions != keras_predictions)),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    zoo_parser = sub.add_parser("zoo")
    zoo_parser.add_argument("--specs", default="")
    zoo_parser.add_argument("--timeout", type=int, default=1800)
    zoo_parser.add_argument("--formats", default="onnx,tflite", help="besides the SavedModel and .keras file")
    quantize_parser = sub.add_parser("quantize")
    quantize_parser.add_argument("--epochs", type=int, default=2)
    quantize_parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "datasets"))
    for each in (zoo_parser, quantize_parser):
        each.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = zoo(args) if args.command == "zoo" else quantize(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

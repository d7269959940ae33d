"""Issue 18's hostile inputs for tools/measure_hostile.py (`--round3`): search spaces, data
bombs, storage URLs, command-line floods and crafted `.keras` files.

Each case is a `kbuilder` command line; the inputs no command line can carry (250,000 `--set`
values pass the kernel's argument limit) or that have no command of their own (a crafted
`.keras` is refused wherever kbuilder reads one) are measured inside the helper process, after
kbuilder's imports, by the functions of IN_PROCESS.
"""

from __future__ import annotations

import io
import json
import resource
import time
import zipfile
from pathlib import Path

import numpy as np

TUNE_SPEC = """\
name: xor_tune
inputs: {x: {shape: [2]}}
params: {width: 8}
layers:
  - dense: {units: "${width}", activation: tanh}
  - dense: {name: out, units: 1, activation: sigmoid}
train:
  data:
    source: %s
    validation: {type: none}
  optimizer: {type: sgd, learning_rate: %s}
  loss: binary_crossentropy
  epochs: 1
  batch_size: 4
"""
INLINE = "{type: inline, x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0]}"
SEARCHES = {
    "grid over {int: [1, 1e9]}": "  sampler: grid\n  space: {layers.0.dense.units: {int: [1, 1000000000]}}\n",
    "grid over {float: [0.001, 0.1], step: 1e-12}": (
        "  sampler: grid\n  space: {train.optimizer.learning_rate: {float: [0.001, 0.1], step: 1e-12}}\n"
    ),
    "grid of 3 x 1,000 values (1e9 points)": (
        "  sampler: grid\n  space: {layers.0.dense.units: {int: [1, 1000]}, params.width: {int: [1, 1000]},"
        " train.batch_size: {int: [1, 1000]}}\n"
    ),
    "search.fixed {layers.0.dense.units: -5}": (
        "  fixed: {layers.0.dense.units: -5}\n  space: {params.width: {int: [1, 4]}}\n"
    ),
    "a choice no trial accepts (batch_size 0)": "  space: {train.batch_size: {choice: [4, 0]}}\n",
}


def _bomb(path: Path, x_shape: tuple, y_shape: tuple) -> None:
    """An .npz of deflated zeros whose headers declare `x_shape` and `y_shape` uint8 arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, shape in (("x_train.npy", x_shape), ("y_train.npy", y_shape)):
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(
                header, {"descr": "|u1", "fortran_order": False, "shape": shape}
            )
            left = int(np.prod(shape))
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(header.getvalue())
                zeros = bytes(64 << 20)
                while left > 0:
                    member.write(zeros[: min(left, len(zeros))])
                    left -= len(zeros)


def round3_cases(work: Path) -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []
    for name, search in SEARCHES.items():
        path = work / f"search-{len(cases)}.yaml"
        path.write_text(TUNE_SPEC % (INLINE, "0.5") + "search:\n" + search)
        cases.append((f"validate: {name}", ["validate", str(path)]))
    # 2.4 GB of uint8 inputs and 0.6 GB of labels in about 3 MB (the bomb).
    _bomb(work / "bomb.npz", (3_000_000, 800), (3_000_000, 200))
    _bomb(work / "mismatch.npz", (3_000_000, 800), (2_999_999,))
    x = np.ones((8, 2), "float64")
    x[5, 1] = 1e300
    np.savez(work / "huge_values.npz", x_train=x, y_train=np.zeros(8, "int64"))
    data_spec = TUNE_SPEC.replace("{shape: [2]}", "{shape: [800]}")
    for name, source, spec in (
        ("train: npz bomb, 2.4 GB uint8 + 0.6 GB labels declared", "bomb.npz", data_spec),
        ("train: npz bomb with a label count that differs", "mismatch.npz", data_spec),
        ("train: float64 features of 1e300", "huge_values.npz", TUNE_SPEC),
    ):
        path = work / f"data-{len(cases)}.yaml"
        path.write_text(spec % (f"{{type: npz, path: {work / source}}}", "0.5"))
        cases.append((name, ["train", str(path), "--out", str(work / f"run-{len(cases)}"), "--no-export"]))
    tune_spec = work / "tune.yaml"
    tune_spec.write_text(TUNE_SPEC % (INLINE, "0.5") + "search:\n  space: {params.width: {int: [2, 16]}}\n")
    lr = work / "lr.yaml"
    lr.write_text(TUNE_SPEC % (INLINE, "1e30"))
    run = work / "a-run"
    run.mkdir()
    (run / "spec.yaml").write_text(TUNE_SPEC % (INLINE, "0.5"))
    study = str(work / "study")
    cases += [
        (
            "tune --storage sqlite:// (in memory)",
            ["tune", str(tune_spec), "--storage", "sqlite://", "-o", study],
        ),
        ("tune --workers 256", ["tune", str(tune_spec), "--workers", "256", "-o", study]),
        ("compare -o /nonexistent/x.png", ["compare", str(run), str(run), "-o", "/nonexistent/x.png"]),
        ("ensemble RUN RUN", ["ensemble", str(run), str(run), "-o", str(work / "ensemble")]),
        ("validate: learning_rate 1e30", ["validate", str(lr)]),
        ("250,000 --set values (in process)", ["many-set", str(tune_spec)]),
    ]
    cases += [(f".keras: {name} (in process)", ["keras-file", str(work), name]) for name in KERAS_CASES]
    return cases


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _many_set(args: list[str]) -> tuple[int, float, float, str]:
    import contextlib

    from kbuilder.cli.app import main

    argv = ["validate", args[0]] + ["--set", "train.epochs=1"] * 250_000
    stderr = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(stderr):
        code = main(argv)
    seconds = time.perf_counter() - start
    lines = [line.strip() for line in stderr.getvalue().splitlines() if line.strip().startswith("--set")]
    return code, seconds, _peak_mib(), (lines or [""])[0]


def _external_link(weights) -> None:
    import h5py

    weights["layers/leak"] = h5py.ExternalLink("/etc/passwd", "/")


def _external_dataset(weights) -> None:
    weights.create_dataset("layers/leak", shape=(16,), dtype="u1", external=[("/etc/passwd", 0, 16)])


def _vocabulary(config) -> None:
    config["config"]["layers"].append(
        {"module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
         "config": {"name": "lookup", "vocabulary": "/etc/passwd"}}
    )  # fmt: skip


def _load_model(config) -> None:
    config["config"]["layers"][-1].update({"module": "keras.models", "class_name": "load_model"})


KERAS_CASES = {
    "HDF5 ExternalLink in the weights": ("weights", _external_link),
    "HDF5 external dataset in the weights": ("weights", _external_dataset),
    "StringLookup(vocabulary='/etc/passwd')": ("config", _vocabulary),
    "keras.models.load_model named as a class": ("config", _load_model),
}


def _keras_file(args: list[str]) -> tuple[int, float, float, str]:
    import h5py
    import keras

    from kbuilder.train.safe_keras import UnsafeModelFile, inspect_keras_file

    work, name = Path(args[0]), args[1]
    good = work / "good.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(good)
    part, change = KERAS_CASES[name]
    crafted = work / "crafted.keras"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(crafted, "w") as out:
        for member in source.namelist():
            data = source.read(member)
            if member == "config.json" and part == "config":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            if member == "model.weights.h5" and part == "weights":
                (work / "w.h5").write_bytes(data)
                with h5py.File(work / "w.h5", "a") as weights:
                    change(weights)
                data = (work / "w.h5").read_bytes()
            out.writestr(member, data)
    start = time.perf_counter()
    try:
        inspect_keras_file(crafted)
        code, message = 0, "accepted"
    except UnsafeModelFile as exc:
        code, message = exc.exit_code, str(exc)
    return code, time.perf_counter() - start, _peak_mib(), message


IN_PROCESS = {"many-set": _many_set, "keras-file": _keras_file}

"""`kbuilder export`: SavedModel + .keras (+ ONNX, TFLite) + manifest, atomically, verified on reload."""

from __future__ import annotations

from pathlib import Path

import typer

from kbuilder.cli.common import MaxParamsOpt, SetOpt, apply_max_params, quiet_tensorflow
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError
from kbuilder.zoo import spec_path

EXTRA_FORMATS = ("onnx", "tflite")
# Names accepted for the pair that is always written, so `--format savedmodel,keras,onnx` reads naturally.
ALWAYS_WRITTEN = {"savedmodel": "saved_model", "saved_model": "saved_model", "keras": "keras"}


def parse_formats(values: list[str]) -> list[str]:
    """`--format onnx --format tflite` or `--format onnx,tflite` -> ["onnx", "tflite"]."""
    from kbuilder.errors import did_you_mean

    chosen: list[str] = []
    for value in values:
        for name in filter(None, (part.strip().lower() for part in value.split(","))):
            if name in ALWAYS_WRITTEN:
                continue
            if name not in EXTRA_FORMATS:
                choices = (*EXTRA_FORMATS, "savedmodel", "keras")
                raise UsageError(
                    f"unknown export format '{name}'{did_you_mean(name, choices)}; choose from "
                    f"{', '.join(choices)} (the SavedModel and .keras file are always written)"
                )
            chosen.append(name)
    return chosen


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        spec: str = typer.Argument(..., help="Spec file (YAML) or bundled spec name."),
        directory: Path = typer.Argument(..., help="Output directory (replaced atomically)."),
        overrides: list[str] | None = SetOpt,
        formats: list[str] | None = typer.Option(
            None,
            "--format",
            "-f",
            help="Also write onnx and/or tflite (comma-separated or repeated); SavedModel + .keras always.",
        ),
        quantize: str = typer.Option(
            "none",
            "--quantize",
            help="TFLite post-training quantization: none, float16 or int8 (calibrated on the spec's train.data).",
        ),
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Folder of the Keras data sets for int8 calibration (also KBUILDER_DATA_DIR).",
        ),
        no_verify: bool = typer.Option(False, "--no-verify", help="Skip reloading and comparing outputs."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        max_params: str | None = MaxParamsOpt,
    ) -> None:
        """Export an (untrained) model built from SPEC; `kbuilder train` exports trained ones."""
        apply_max_params(max_params)
        chosen = parse_formats(formats or [])
        if quantize not in ("none", "float16", "int8"):
            raise UsageError(f"unknown quantization '{quantize}'; choose none, float16 or int8")
        if quantize != "none" and "tflite" not in chosen:
            raise UsageError(f"--quantize {quantize} applies to the TFLite file: add --format tflite")
        quiet_tensorflow()
        from kbuilder.api import build
        from kbuilder.api import export as export_built

        built = build(spec_path(spec), overrides or ())
        path = export_built(
            built, directory, verify=not no_verify, formats=chosen, quantize=quantize, data_dir=data_dir
        )
        import json

        files = sorted(str(p.relative_to(path)) for p in path.iterdir())
        check = json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("check")
        worst = max((check or {}).get("tolerance_ratio", {}).values(), default=None)
        verified = "" if worst is None else f" (verified: worst output at {worst:.2g} of its tolerance)"
        Output(json_out).result(
            {"ok": True, "export": str(path), "files": files, "check": check},
            f"exported {built.graph.name} to {path}: {', '.join(files)}{verified}\n",
        )

"""`kbuilder export`: SavedModel + .keras (+ ONNX, TFLite) + manifest, atomically, verified on reload."""

from __future__ import annotations

import json
from pathlib import Path

import typer

import kbuilder.api as kb
from kbuilder.cli.common import (
    TEXT_FORMATS,
    DataDirOpt,
    JsonOpt,
    MaxParamsOpt,
    SetOpt,
    WeightsOpt,
    apply_max_params,
    format_option,
    pick_format,
    weights_override,
)
from kbuilder.cli.output import Output
from kbuilder.errors import UsageError, did_you_mean
from kbuilder.zoo import spec_path

EXTRA_FORMATS = ("onnx", "tflite")
# Names accepted for the pair that is always written, so `--to savedmodel,keras,onnx` reads naturally.
ALWAYS_WRITTEN = {"savedmodel": "saved_model", "saved_model": "saved_model", "keras": "keras"}
FILE_FORMATS = (*EXTRA_FORMATS, *ALWAYS_WRITTEN)


def parse_file_formats(values: list[str]) -> list[str]:
    """`--to onnx --to tflite` or `--to onnx,tflite` -> ["onnx", "tflite"]."""
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


def output_format(fmt: str | None, json_out: bool) -> str:
    """`--format` is the output's format; file formats are `--to`'s (it was `--format` once)."""
    named = [part.strip().lower() for part in (fmt or "").split(",")]
    if fmt is not None and all(name in FILE_FORMATS for name in named):
        raise UsageError(
            f"--format chooses the output ({', '.join(TEXT_FORMATS)}); name the files to write with --to {fmt}"
        )
    return pick_format(fmt, json_out, TEXT_FORMATS)


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        spec: str = typer.Argument(
            ...,
            help="A run, ensemble, tune study or export directory (trained weights), or a spec file or "
            "bundled name (untrained weights).",
        ),
        directory: Path = typer.Argument(..., help="Output directory (replaced atomically)."),
        overrides: list[str] | None = SetOpt,
        to: list[str] | None = typer.Option(
            None,
            "--to",
            "-t",
            help="Also write onnx and/or tflite (comma-separated or repeated); SavedModel + .keras always.",
        ),
        quantize: str = typer.Option(
            "none",
            "--quantize",
            help="TFLite post-training quantization: none, float16 or int8 (calibrated on the spec's train.data).",
        ),
        data_dir: Path | None = DataDirOpt,
        no_verify: bool = typer.Option(False, "--no-verify", help="Skip reloading and comparing outputs."),
        fmt: str | None = format_option(TEXT_FORMATS),
        json_out: bool = JsonOpt,
        max_params: str | None = MaxParamsOpt,
        which: str = typer.Option(
            "best", "--model", help="A run's best or last model (SPEC a run directory)."
        ),
        weights: str | None = WeightsOpt,
    ) -> None:
        """Export the trained model of a run, ensemble, study or export directory (SPEC a directory),
        or a model built from SPEC: random weights, or the trained ones its `weights` (--weights) names."""
        json_mode = output_format(fmt, json_out) == "json"
        apply_max_params(max_params)
        chosen = parse_file_formats(to or [])
        if quantize != "none" and "tflite" not in chosen:
            raise UsageError(f"--quantize {quantize} applies to the TFLite file: add --to tflite")
        warnings: list[str] = []
        if Path(spec).is_dir():
            if overrides or weights is not None:
                option = "--set" if overrides else "--weights"
                raise UsageError(f"{option} changes a spec; a trained model is exported as it was trained")
            path = kb.export_trained(
                spec,
                directory,
                which=which,
                verify=not no_verify,
                formats=chosen,
                quantize=quantize,
                data_dir=data_dir,
            )
        else:
            overrides = [*(overrides or ()), *weights_override(weights)]
            if kb.load(spec_path(spec), overrides).spec.weights is None:
                warnings.append(
                    f"the weights are UNTRAINED (random): {spec} is a spec, so the export predicts nothing "
                    "useful (manifest: trained: false); export a run directory for trained weights, or give "
                    "the spec weights (--weights)"
                )
                Output(json_mode).warn([] if json_mode else warnings)
            path = kb.export(
                spec_path(spec),
                directory,
                verify=not no_verify,
                formats=chosen,
                quantize=quantize,
                data_dir=data_dir,
                overrides=overrides,
            )
        files = sorted(str(p.relative_to(path)) for p in path.iterdir())
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        check = manifest.get("check")
        worst = max((check or {}).get("tolerance_ratio", {}).values(), default=None)
        verified = "" if worst is None else f" (verified: worst output at {worst:.2g} of its tolerance)"
        raw = manifest.get("raw_inputs") or {}
        raw_note = "".join(
            f"\n  {name}: "
            + (entry.get("signature") or entry.get("file") or f"bare model only ({entry.get('why')})")
            for name, entry in raw.items()
        )
        Output(json_mode).result(
            {
                "ok": True,
                "export": str(path),
                "files": files,
                "trained": manifest.get("trained"),
                "weights": manifest.get("weights"),
                "raw_inputs": raw or None,
                "check": check,
                **({"warnings": warnings} if warnings else {}),
            },
            f"exported {manifest['model']} to {path}: {', '.join(files)}{verified}"
            + (f"\nraw-input exports:{raw_note}" if raw_note else "")
            + "\n",
        )

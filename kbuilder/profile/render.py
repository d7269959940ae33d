"""A profile as text for people (aligned columns), markdown, or CSV (JSON is `Profile.as_json`)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the measurement imports Keras; rendering needs only its data
    from kbuilder.profile.run import Profile

LAYER_COLUMNS = (
    ("name", "layer"),
    ("kind", "kind"),
    ("output_shape", "output"),
    ("macs", "MACs"),
    ("forward_ms", "forward ms"),
    ("backward_ms", "backward ms"),
    ("share", "share"),
    ("forward_gflop_per_s", "fwd GFLOP/s"),
    ("step_gflop_per_s", "step GFLOP/s"),
    ("activation_bytes", "activation"),
)
BLOCK_COLUMNS = (
    ("block", "block"),
    ("layers", "layers"),
    ("macs", "MACs"),
    ("forward_ms", "forward ms"),
    ("backward_ms", "backward ms"),
    ("share", "share"),
)
BATCH_COLUMNS = (
    ("batch_size", "batch"),
    ("inference_samples_per_s", "inference/s"),
    ("inference_fraction_of_peak", "of peak"),
    ("training_samples_per_s", "training/s"),
    ("training_fraction_of_peak", "of peak"),
    ("memory_parameters", "parameters"),
    ("memory_gradients", "gradients"),
    ("memory_optimizer_state", "optimizer"),
    ("memory_activations", "activations"),
    ("memory_total", "memory"),
)


def size(n: int | None) -> str:
    if n is None:
        return ""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "output_shape":
        return "x".join(str(d) for d in value)
    if key.endswith("fraction_of_peak") or key == "share":
        return f"{100 * value:.1f}%"
    if key == "activation_bytes" or key.startswith("memory_"):
        return size(value)
    if key.endswith("_ms"):
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _columns(data: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], list[list[str]], list[list[str]]]:
    train = data["layers"]["train"]
    layer_columns = tuple(
        c for c in LAYER_COLUMNS if train or c[0] not in ("backward_ms", "step_gflop_per_s")
    )
    layers = [[_cell(k, row[k]) for k, _ in layer_columns] for row in data["layers"]["layers"]]
    batches = [[_cell(k, row[k]) for k, _ in BATCH_COLUMNS] for row in data["batch_sizes"]]
    return layer_columns, layers, batches


def _blocks(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    train = data["layers"]["train"]
    columns = [c for c in BLOCK_COLUMNS if train or c[0] != "backward_ms"]
    rows = [[_cell(k, row[k]) for k, _ in columns] for row in data["layers"]["blocks"]]
    return [h for _, h in columns], rows


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The lines around the tables: the machine, the peak, how far the layers' sum is from the
    measured step, the largest batch that fits."""
    layers, memory = data["layers"], data["memory"]
    gap = layers["difference"]
    lines = [
        (
            f"sum of the layers {layers['sum_of_layers_ms']:.3f} ms, measured {layers['measured']} "
            f"{layers['measured_ms']:.3f} ms: the sum is {abs(100 * gap):.1f}% {'above' if gap >= 0 else 'below'} it"
        ),
        (
            f"memory per batch size: parameters, gradients, optimizer state ({memory['optimizer']}) and the "
            f"activations kept for the backward pass ({size(memory['activation_bytes_per_sample'])} a sample); "
            "the framework's own memory comes on top"
        ),
    ]
    if memory["budget"] is not None:
        largest = memory["largest_batch_size"]
        fits = (
            f"batch size {largest:,}"
            if largest
            else "no batch size (the weights and optimizer state alone do not)"
        )
        lines.append(f"largest batch that fits {size(memory['budget'])}: {fits}")
    if data["plot"]:
        lines.append(f"throughput plot: {data['plot']}")
    lines += [f"note: {note}" for note in data["notes"]]
    return lines


def heading(data: dict[str, Any]) -> str:
    return (
        f"{data['name']} on {data['backend']}, {data['device']}; peak {data['peak_flop_per_s'] / 1e9:.1f} GFLOP/s "
        f"({data['peak_source']}); {data['macs_per_sample']:,} MACs a sample"
    )


def _aligned(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    numeric = [i > 1 for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def as_text(data: dict[str, Any]) -> str:
    layer_columns, layers, batches = _columns(data)
    what = "forward and backward" if data["layers"]["train"] else "forward"
    out = [heading(data), "", f"per layer, {what}, batch size {data['layers']['batch_size']}:"]
    out += _aligned([h for _, h in layer_columns], layers)
    headers, blocks = _blocks(data)
    if blocks:
        out += ["", "per block (its layers' sum):", *_aligned(headers, blocks)]
    out += ["", "per batch size:"]
    out += _aligned([h for _, h in BATCH_COLUMNS], batches)
    out += ["", *summary_lines(data)]
    return "\n".join(out) + "\n"


def _markdown_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(headers), "| " + " | ".join("---" for _ in headers) + " |", *(line(r) for r in rows)]


def as_markdown(data: dict[str, Any]) -> str:
    layer_columns, layers, batches = _columns(data)
    what = "forward and backward" if data["layers"]["train"] else "forward"
    out = [f"**{heading(data)}**", "", f"Per layer, {what}, batch size {data['layers']['batch_size']}:", ""]
    out += _markdown_table([h for _, h in layer_columns], layers)
    headers, blocks = _blocks(data)
    if blocks:
        out += ["", "Per block (its layers' sum):", "", *_markdown_table(headers, blocks)]
    out += ["", "Per batch size:", ""]
    out += _markdown_table([h for _, h in BATCH_COLUMNS], batches)
    out += ["", *(f"- {line}" for line in summary_lines(data))]
    return "\n".join(out) + "\n"


def as_csv(data: dict[str, Any]) -> str:
    """Two tables, raw numbers (milliseconds, bytes, fractions): the layers, a blank line, the
    batch sizes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    layer_keys = [k for k, _ in LAYER_COLUMNS]
    writer.writerow(layer_keys)
    for row in data["layers"]["layers"]:
        writer.writerow(["x".join(map(str, row[k])) if k == "output_shape" else row[k] for k in layer_keys])
    writer.writerow([])
    batch_keys = [k for k, _ in BATCH_COLUMNS]
    writer.writerow(batch_keys)
    for row in data["batch_sizes"]:
        writer.writerow([row[k] for k in batch_keys])
    return buffer.getvalue()


RENDERERS = {"table": as_text, "plain": as_text, "markdown": as_markdown, "csv": as_csv}


def render(profile: Profile, fmt: str) -> tuple[dict[str, Any], str]:
    data = profile.as_json()
    return data, ("" if fmt == "json" else RENDERERS[fmt](data))

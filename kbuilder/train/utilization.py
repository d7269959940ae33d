"""How much of the machine's peak a training run reached (metrics.json's `utilization`).

Training arithmetic per sample = the spec's MACs for one sample (the layer table's figure)
x 2 FLOPs per multiply-accumulate x 3 (the forward pass, and a backward pass that costs about
twice the forward: gradients with respect to the inputs and to the weights). The achieved rate
is that times the samples per second of the epochs after the first (the first one compiles);
with a single epoch, that epoch's. The peak is kbuilder.train.peak's.
"""

from __future__ import annotations

from typing import Any

from kbuilder.train.peak import Peak

FLOPS_PER_MAC = 2
TRAINING_PASSES = 3  # forward + backward (about twice the forward)


def training_flops_per_sample(macs_per_sample: int) -> int:
    return int(macs_per_sample) * FLOPS_PER_MAC * TRAINING_PASSES


def utilization(
    macs_per_sample: int, samples_per_second: float | None, peak: Peak, *, basis: str
) -> dict[str, Any]:
    """The `utilization` entry of metrics.json: achieved training FLOP/s and its fraction of `peak`."""
    per_sample = training_flops_per_sample(macs_per_sample)
    achieved = per_sample * samples_per_second if samples_per_second else None
    return {
        "macs_per_sample": int(macs_per_sample),
        "training_flop_per_sample": per_sample,
        "samples_per_second": samples_per_second,
        "samples_per_second_from": basis,
        "achieved_flop_per_s": round(achieved, 1) if achieved is not None else None,
        "peak_flop_per_s": round(peak.flop_per_s, 1),
        "peak_precision": peak.precision,
        "peak_source": peak.source,
        # Four significant digits: a tiny model's fraction (0.0002) keeps its precision.
        "fraction_of_peak": float(f"{achieved / peak.flop_per_s:.4g}")
        if achieved and peak.flop_per_s
        else None,
    }


def utilization_line(entry: dict[str, Any] | None) -> str | None:
    """One line for the end-of-run summary (None when the run has no figure for it)."""
    if not entry or entry.get("achieved_flop_per_s") is None:
        return None
    achieved, peak = entry["achieved_flop_per_s"], entry["peak_flop_per_s"]
    return (
        f"utilization: {achieved / 1e9:.1f} GFLOP/s of training arithmetic "
        f"({entry['macs_per_sample']:,} MACs x 6 per sample), {100 * entry['fraction_of_peak']:.1f}% "
        f"of the peak {peak / 1e9:.1f} GFLOP/s ({entry['peak_precision']})"
    )

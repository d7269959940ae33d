"""Run by tests/test_profile_memory.py in a fresh process: the resident memory one training
step of a spec's model takes at a batch size (not a test module itself).

    python tests/memory_probe.py SPEC BATCH_SIZE   -> one JSON line

The model is built and the optimizer's slots allocated first; the resident size then is the
baseline (the runtime, the weights, the optimizer state). The peak is reset (Linux's
/proc/self/clear_refs), three training steps run (kbuilder.profile.calls.training_step: the
compiled call `kbuilder profile` times), and the peak resident size after them, minus the
baseline, is what the step needed: gradients, activations, and a constant (tracing the step,
kernels' scratch space) that the test measures at batch size 1 and subtracts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def main(spec: str, batch_size: int) -> None:
    import kbuilder.api as kb
    from kbuilder.profile import calls
    from kbuilder.profile.layers import random_inputs
    from kbuilder.profile.memory import memory_model
    from kbuilder.profile.run import optimizer_factory

    built = kb.build(spec)
    new_optimizer, _, _ = optimizer_factory(built)
    optimizer = new_optimizer()
    model = built.model
    inputs = random_inputs(list(model.inputs), batch_size)
    step = calls.training_step(model, inputs, optimizer)  # builds the optimizer's slots
    baseline = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    for _ in range(3):
        calls.synchronize(step())
    estimate = memory_model(model, new_optimizer(), "").at(batch_size)
    print(
        json.dumps(
            {
                "batch_size": batch_size,
                "baseline_kib": baseline,
                "peak_kib": status_kib("VmHWM"),
                "estimated_step_bytes": estimate.gradients + estimate.activations,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

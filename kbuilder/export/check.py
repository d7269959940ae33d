"""What every export check compares: a seeded random batch, the outputs of the model and
of an exported file, and the tolerance rule they must meet (see DEFAULT_RTOL).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kbuilder.errors import RuntimeFailure

# Two batch sizes: a file whose batch dimension was frozen at one size, or that mixes up
# samples within a batch, fails at the other.
CHECK_BATCH_SIZES = (2, 3)
CHECK_SEED = 0
# The rule every export check uses, for each sample of each output:
#     |exported - expected| <= max(ATOL, RTOL * max |expected of that sample|)
# An export recomputes the model with other kernels (the SavedModel runs a graph that
# TensorFlow's grappler fuses and oneDNN may block differently from the eager ops; ONNX
# Runtime, LiteRT and another Keras backend have their own), so each dot product's float32
# sum is taken in another order. Its rounding error grows with the layer's fan-in n and with
# the size of the terms summed, not with the result: about sqrt(n) * u times the scale the
# layer's outputs run at (u = 2**-24 ~ 6e-8), n * u at worst. A sample's largest output
# stands for that scale, so a logit that happens to be near zero among logits of 25 gets the
# same bound as its neighbours (an elementwise numpy-style rule failed AlexNet's ONNX file
# there: 2.7e-5 off at an element near zero). RTOL = 1e-5 ~ 168 u covers sqrt(n) for fan-ins
# up to 28,000 (the zoo's largest is VGG-16's fc6, 7*7*512 = 25,088); LeNet-5's RBF outputs in
# the hundreds differ by 1.5e-5 between eager and SavedModel under oneDNN (AVX-512), which a
# purely absolute 1e-5 wrongly failed. ATOL = 1e-5 keeps unit-scale outputs (probabilities)
# at the strict absolute bound.
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-5


def input_structure(model: keras.Model) -> Any:
    """The model's inputs as the structure its `call` expects (tensor/list/dict)."""
    try:
        return model.input  # functional models: keeps a dict of inputs a dict
    except (AttributeError, ValueError):
        inputs = list(getattr(model, "inputs", None) or [])  # Sequential: only .inputs
    if not inputs:
        raise RuntimeFailure(
            "cannot check the export: the model has no defined inputs (build it "
            "from keras.Input), or export with check disabled"
        )
    return inputs[0] if len(inputs) == 1 else inputs


def random_array(tensor: Any, rng: np.random.Generator, size: int = CHECK_BATCH_SIZES[0]) -> np.ndarray:
    shape = (size,) + tuple(tensor.shape[1:])
    if any(size is None for size in shape):
        raise RuntimeFailure(
            f"cannot check the export: input {tensor.name!r} has an unknown "
            f"dimension {tuple(tensor.shape)}; fix its shape or disable the check"
        )
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if dtype == "bool" or "int" in dtype:  # ints in [0, 10): safe as embedding ids
        return rng.integers(0, 2 if dtype == "bool" else 10, size=shape).astype(dtype)
    if "float" in dtype:
        return rng.standard_normal(size=shape).astype(dtype)
    raise RuntimeFailure(
        f"cannot check the export: no random data for input {tensor.name!r} of dtype {dtype}"
    )


def flat_numpy(outputs: Any) -> list[np.ndarray]:
    flat = keras.tree.flatten(outputs)
    return [np.asarray(keras.ops.convert_to_numpy(tensor), "float64") for tensor in flat]


def max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    diff = np.abs(expected - actual)
    diff[np.isnan(expected) & np.isnan(actual)] = 0.0  # NaN in both: agree
    diff[np.isnan(diff)] = np.inf  # NaN on one side only: disagree
    return float(diff.max())


def tolerance_ratio(
    expected: np.ndarray, actual: np.ndarray, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
) -> float:
    """max over elements of |actual - expected| / max(atol, rtol * the sample's largest
    |expected|) (the first axis is the batch): at most 1 passes.

    inf for a shape mismatch or a NaN on one side only; 0 for NaN on both sides (agree)."""
    if expected.shape != actual.shape:
        return float("inf")
    if expected.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.abs(expected - actual)
    agree = (np.isnan(expected) & np.isnan(actual)) | (np.isinf(expected) & (expected == actual))
    diff[agree] = 0.0  # NaN on both sides, or the same infinity
    diff[np.isnan(diff)] = np.inf  # NaN (or an infinity) on one side only: disagree
    size = np.abs(np.nan_to_num(expected, nan=0.0, posinf=0.0, neginf=0.0))
    if size.ndim >= 2:  # each sample's scale, broadcast over its elements
        size = size.reshape(size.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (size.ndim - 1))
    allowed = np.maximum(atol, rtol * size)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    return float(ratio.max())


def compare_outputs(
    artifact: str,
    expected: list[np.ndarray],
    outputs: list[np.ndarray],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> tuple[float, float, list[str]]:
    """(max abs diff, max tolerance ratio, problems) of one artifact's outputs against the
    model's; a problem names the output, its worst element's difference and the bound."""
    problems: list[str] = []
    if len(outputs) != len(expected):
        problems.append(f"{artifact}: {len(outputs)} outputs, the model has {len(expected)}")
    diffs, ratios = [], []
    for index, (e, o) in enumerate(zip(expected, outputs)):
        diff = max_abs_diff(e, o)
        ratio = tolerance_ratio(e, o, atol=atol, rtol=rtol)
        diffs.append(diff)
        ratios.append(ratio)
        if not ratio <= 1.0:  # also catches NaN
            if e.shape != o.shape:
                problems.append(f"{artifact} output {index}: shape {o.shape}, the model's is {e.shape}")
                continue
            scale = float(np.nanmax(np.abs(e))) if e.size else 0.0
            problems.append(
                f"{artifact} output {index}: max abs diff {diff:.3g} exceeds max(atol {atol:g}, "
                f"rtol {rtol:g} x the sample's largest |output|) (outputs up to {scale:.3g}; worst element at "
                f"{ratio:.3g}x its bound)"
            )
    return max(diffs, default=0.0), max(ratios, default=0.0), problems


def check_batch(
    model: keras.Model, size: int = CHECK_BATCH_SIZES[0]
) -> tuple[Any, list[Any], list[np.ndarray]]:
    """The seeded random batch of `size` exports are checked on: (batch in the model's
    input structure, the input tensors and their arrays, both in flat order)."""
    structure = input_structure(model)
    rng = np.random.default_rng(CHECK_SEED + size)
    tensors = keras.tree.flatten(structure)
    arrays = [random_array(tensor, rng, size) for tensor in tensors]
    return keras.tree.pack_sequence_as(structure, arrays), tensors, arrays


def match_inputs(file_names: list[str], named_inputs: dict[str, Any], what: str) -> dict[str, Any]:
    """The model's inputs keyed by an exported file's input names: by name, or the single
    input whatever its name; RuntimeFailure when they do not correspond."""
    if sorted(file_names) == sorted(named_inputs):
        return dict(named_inputs)
    if len(file_names) == 1 and len(named_inputs) == 1:
        return {file_names[0]: next(iter(named_inputs.values()))}
    raise RuntimeFailure(
        f"the {what} takes inputs {sorted(file_names)}, the model has {sorted(named_inputs)}"
    )


def randomize_weights(model: keras.Model, seed: int = 0) -> None:
    """Random, variance-preserving values in every variable, for checking an untrained model's
    exports: at initialization deep networks such as MobileNetV3 give one output for every
    input (Keras's own reference too), and weights of a fixed large scale saturate a softmax to
    exact 0s and 1s; either way no conversion error could show. Kernels get He's std sqrt(2/fan-in),
    batch-norm variances lie in [0.5, 1.5], scales near 1, everything else near 0."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape, name = tuple(variable.shape), variable.path.rsplit("/", 1)[-1]
        if len(shape) >= 2:  # He's scale keeps the signal through ReLUs; a depthwise kernel sees one channel
            fan_in = int(np.prod(shape[:-2] if "depthwise" in name else shape[:-1]))
            values = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        elif "variance" in name:
            values = rng.uniform(0.5, 1.5, shape)
        elif name in ("gamma", "scale"):
            values = 1.0 + rng.normal(0.0, 0.1, shape)
        else:
            values = rng.normal(0.0, 0.05, shape)
        variable.assign(values.astype(variable.dtype))
    for layer in model.layers:  # Normalization reads its variables into tensors once (as after adapt)
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()

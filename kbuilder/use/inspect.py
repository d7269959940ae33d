"""`kbuilder inspect`: what a trained network computes on one image.

    feature_maps_<layer>.png   every channel's activation of each convolution and pooling
                               layer (or the layers asked for), one tile per channel
    filters_<layer>.png        the first convolution's kernels as images
    gradcam.png                Grad-CAM (Selvaraju et al. 2017) for the predicted class, or
                               the one asked for, over the image the network sees

Grad-CAM weighs the chosen layer's channels by the mean gradient of the class score (the
output before its softmax) with respect to them. The gradient is taken with the backend's
own automatic differentiation: tf.GradientTape on TensorFlow, autograd on PyTorch, jax.grad
on JAX (through the part of the model after the chosen layer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from kbuilder.errors import DataError, UsageError
from kbuilder.use import inspect_figures as drawn
from kbuilder.use.inputs import raw_target, read_image
from kbuilder.use.source import TrainedModel

MAX_PIXELS = 40_000_000  # 40 megapixels: larger than any camera image a network here takes

INSPECT_DIR = "inspect"
SQUASHING = ("softmax", "sigmoid")


def _spatial_layers(model: Any) -> list[Any]:
    """Layers whose output is an image-like [batch, height, width, channels] tensor."""
    return [
        layer
        for layer in model.layers
        if len(getattr(getattr(layer, "output", None), "shape", ()) or ()) == 4
    ]


def _is_conv(layer: Any) -> bool:
    return "Conv" in type(layer).__name__


def _is_feature_layer(layer: Any) -> bool:
    return _is_conv(layer) or "Pooling" in type(layer).__name__


def pick_layers(model: Any, names: list[str] | None) -> list[Any]:
    spatial = _spatial_layers(model)
    if not names:
        return [layer for layer in spatial if _is_feature_layer(layer)]
    by_name = {layer.name: layer for layer in spatial}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UsageError(
            f"--layers {', '.join(unknown)}: no such layer with a spatial output; "
            f"the model has {', '.join(by_name) or 'none'}"
        )
    return [by_name[name] for name in names]


def cam_layer(model: Any, name: str | None) -> Any:
    """The layer Grad-CAM looks at: the last convolution whose output is more than 1x1."""
    if name is not None:
        return pick_layers(model, [name])[0]
    spatial = [layer for layer in _spatial_layers(model) if _is_conv(layer)]
    wide = [layer for layer in spatial if (layer.output.shape[1] or 2) * (layer.output.shape[2] or 2) > 1]
    if not wide:
        raise UsageError("the model has no convolution with a spatial output; Grad-CAM needs one")
    return wide[-1]


def class_score_gradients(
    model: Any, layer: Any, x: np.ndarray, class_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """(activations, gradient of the class score) of `layer` on the batch `x`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # the TensorFlow backend's autodiff

        both = keras.Model(model.inputs, [layer.output, model.outputs[0]])
        with tf.GradientTape() as tape:
            activations, outputs = both([tf.convert_to_tensor(x)], training=False)
            score = outputs[:, class_index]
        return np.asarray(activations), np.asarray(tape.gradient(score, activations))
    if backend == "torch":
        import torch  # the PyTorch backend's autodiff

        both = keras.Model(model.inputs, [layer.output, model.outputs[0]])
        activations, outputs = both([torch.as_tensor(x)], training=False)
        activations.retain_grad()
        outputs[:, class_index].sum().backward()
        return activations.detach().cpu().numpy(), activations.grad.detach().cpu().numpy()
    if backend == "jax":
        import jax  # the JAX backend's autodiff

        head = keras.Model(layer.output, model.outputs[0])  # refused by Keras when a skip bypasses the layer
        activations = keras.Model(model.inputs, layer.output)([x], training=False)
        gradient = jax.grad(lambda a: head(a, training=False)[:, class_index].sum())(activations)
        return np.asarray(activations), np.asarray(gradient)
    raise UsageError(f"Grad-CAM has no gradient for the {backend} backend")


def grad_cam(model: Any, layer: Any, x: np.ndarray, class_index: int) -> np.ndarray:
    """The class activation map in [0, 1] at the layer's resolution."""
    output_layer = model.outputs[0]._keras_history[0]
    activation = getattr(output_layer, "activation", None)
    squashed = getattr(activation, "__name__", "") in SQUASHING
    if squashed:  # the class score before the softmax: a saturated probability has no gradient
        output_layer.activation = keras.activations.linear
    try:
        activations, gradients = class_score_gradients(model, layer, x, class_index)
    finally:
        if squashed:
            output_layer.activation = activation
    weights = gradients[0].mean(axis=(0, 1))
    cam = np.maximum((activations[0] * weights).sum(axis=-1), 0.0)
    return cam / cam.max() if cam.max() > 0 else cam


def inspect_image(
    trained: TrainedModel,
    image: str | Path,
    *,
    layers: list[str] | None = None,
    class_index: int | None = None,
    cam_layer_name: str | None = None,
    out: str | Path | None = None,
    max_channels: int = 64,
) -> dict[str, Any]:
    """Feature maps, first filters and Grad-CAM of `image`; returns what was written."""
    if trained.kind == "ensemble":
        raise UsageError(f"{trained.path}: inspect one of the ensemble's members (a run directory)")
    model = trained.model
    if not Path(image).is_file():
        raise DataError(f"{image}: no such image file")
    # The image as the data delivered its samples: another channel count is refused rather
    # than converted (the maps would show what the conversion made), and so is a huge image.
    pixels = read_image(Path(image), raw_target(trained.contract), same_channels=True, max_pixels=MAX_PIXELS)
    chosen = pick_layers(model, layers)
    target_layer = cam_layer(model, cam_layer_name)
    width = trained.output_width
    if class_index is not None and not 0 <= class_index < width:
        raise UsageError(f"--class {class_index}: the model has classes 0 to {width - 1}")
    home = trained.run_dir if trained.run_dir is not None and trained.run_dir.is_dir() else trained.path
    folder = Path(out) if out is not None else home / INSPECT_DIR / Path(image).stem
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: a file is there; give a folder for the figures")
    x = trained.preprocess(pixels[None])
    outputs = np.asarray(model.predict(x, verbose=0))[0]
    names = trained.labels
    predicted = int(np.argmax(outputs)) if width > 1 else int(outputs[0] > (0.0 if trained.logits else 0.5))
    target = predicted if class_index is None else class_index
    activations = keras.Model(model.inputs, [layer.output for layer in chosen])([x], training=False)
    activations = [
        keras.ops.convert_to_numpy(a)
        for a in (activations if isinstance(activations, list | tuple) else [activations])
    ]
    cam = grad_cam(model, target_layer, x, min(target, width - 1))
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        drawn.feature_map_grid(a[0], layer.name, folder / f"feature_maps_{layer.name}.png", max_channels)
        for layer, a in zip(chosen, activations)
    ]
    first_conv = next((layer for layer in model.layers if _is_conv(layer) and layer.get_weights()), None)
    if first_conv is not None:
        kernel = np.asarray(first_conv.get_weights()[0])
        files.append(drawn.filter_grid(kernel, first_conv.name, folder / f"filters_{first_conv.name}.png"))
    caption = f"Grad-CAM at {target_layer.name} for class {names[target] if target < len(names) else target}"
    files.append(drawn.grad_cam_overlay(x[0], cam, caption, folder / "gradcam.png"))
    return {
        "target": str(trained.path),
        "image": str(image),
        "model_file": str(trained.model_file),
        "predicted": predicted,
        "predicted_name": names[predicted] if predicted < len(names) else str(predicted),
        "grad_cam": {"class": target, "layer": target_layer.name, "map": np.round(cam, 6).tolist()},
        "layers": [layer.name for layer in chosen],
        "folder": str(folder),
        "files": files,
    }

"""keras.applications models (weights=None, seeded random values), saved as Keras 3
`.weights.h5` and in the legacy HDF5 layout keras.applications ships, loaded into the zoo's
specs of the same architecture: identical outputs.

The zoo's resnet50 and efficientnet_b0 follow keras.applications' structure layer for layer
but name their layers by their blocks (`conv2_x-block1-unit-conv1` for `conv2_block1_1_conv`,
`block2-blocks-0-block-residual-body-dwconv` for `block2b_dwconv`), so each loads through a
`map` of globs; a repeated block's position (`blocks-0` is keras's block 2, `b`) is spelled out
per repeat, as a glob cannot count. The zoo has no MobileNetV2 spec (only V3), so MobileNetV2
loads into the spec `kbuilder import` writes (tested there).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kbuilder.api as kb
from tests.weights_helpers import randomize, write_legacy

pytestmark = pytest.mark.slow

RESNET50_MAP = {
    "conv1": "conv1_conv",
    "conv*_x-block1-unit-conv*": "conv*_block1_*_conv",
    "conv*_x-block1-unit-bn*": "conv*_block1_*_bn",
    "conv*_x-block1-unit-projection": "conv*_block1_0_conv",
    "conv*_x-block1-unit-projection_bn": "conv*_block1_0_bn",
    **{f"conv*_x-blocks-{i}-block-unit-conv*": f"conv*_block{i + 2}_*_conv" for i in range(5)},
    **{f"conv*_x-blocks-{i}-block-unit-bn*": f"conv*_block{i + 2}_*_bn" for i in range(5)},
}
EFFICIENTNET_B0_MAP = {
    "block*-block1-body-se-gate-*": "block*a_se_*",
    "block*-block1-body-*": "block*a_*",
    **{f"block*-blocks-{i}-block-residual-body-se-gate-*": f"block*{'bcd'[i]}_se_*" for i in range(3)},
    **{f"block*-blocks-{i}-block-residual-body-*": f"block*{'bcd'[i]}_*" for i in range(3)},
    "block1-body-se-gate-*": "block1a_se_*",
    "block1-body-*": "block1a_*",
}
CASES = {
    "resnet50": (keras.applications.ResNet50, RESNET50_MAP),
    "efficientnet_b0": (keras.applications.EfficientNetB0, EFFICIENTNET_B0_MAP),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_applications_weights_load_into_the_zoo_spec_with_identical_outputs(name, tmp_path):
    make, mapping = CASES[name]
    app = make(weights=None)
    randomize(app, seed=3)
    app.save_weights(tmp_path / "app.weights.h5")
    write_legacy(tmp_path / "app.h5", app)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 224, 224, 3)).astype("float32")
    if name == "resnet50":
        x = keras.applications.resnet50.preprocess_input(x)  # what the model is fed (caffe-style)
    expected = np.asarray(app(x))
    spec = kb.load(name).spec.model_dump(mode="json")
    spec["weights"] = {"from": str(tmp_path / "app.weights.h5"), "map": mapping}
    built = kb.build(spec, weights=False)
    assert np.abs(np.asarray(built.model(x)) - expected).max() > 1e-4  # random weights differ
    weighted = len([layer for layer in app.layers if layer.weights])
    for source in ("app.weights.h5", "app.h5"):
        plan = kb.load_weights(built, tmp_path / source)
        assert plan.counts() == {"loaded": weighted, "new": 0, "skipped": 0}
        got = np.asarray(built.model(x))
        worst = float(np.max(np.abs(got - expected) / np.abs(expected).max(axis=-1, keepdims=True)))
        print(f"{name} from {source}: {weighted} layers, max difference {worst:.2e} of the largest output")
        assert worst <= 1e-5, f"{name} from {source}: max difference {worst:.2e} of the largest output"


def test_a_legacy_file_loads_by_order_into_mobilenet_v3_large(tmp_path):
    """The zoo's mobilenet_v3_large follows keras.applications.MobileNetV3Large layer for layer,
    so the order of weighted layers a legacy file records pairs them without any map."""
    app = keras.applications.MobileNetV3Large(weights=None)
    randomize(app, seed=4)
    write_legacy(tmp_path / "app.h5", app)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 224, 224, 3)).astype("float32")
    expected = np.asarray(app(x))
    spec = kb.load("mobilenet_v3_large").spec.model_dump(mode="json")
    spec["weights"] = {"from": str(tmp_path / "app.h5"), "match": "order"}
    built = kb.build(spec)
    assert built.weights.counts() == {"loaded": 110, "new": 0, "skipped": 0}
    worst = float(
        np.max(np.abs(np.asarray(built.model(x)) - expected) / np.abs(expected).max(axis=-1, keepdims=True))
    )
    print(f"mobilenet_v3_large by order: max difference {worst:.2e} of the largest output")
    assert worst <= 1e-5

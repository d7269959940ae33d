import keras
import numpy as np
import pytest

from kbuilder.layers import _testing
from kbuilder.layers.scaled_add import ScaledAdd
from kbuilder.spec.layers.scaled_add import ScaledAdd as ScaledAddSpec


def test_adds_the_scaled_second_input_as_inception_resnet_does():
    rng = np.random.default_rng(0)
    x, r = (rng.normal(size=(2, 5, 5, 4)).astype("float32") for _ in range(2))
    out = keras.ops.convert_to_numpy(ScaledAdd(0.17)([x, r]))
    np.testing.assert_array_equal(out, x + r * np.float32(0.17))  # same order: bit for bit


def test_no_weights_and_no_macs_as_merges_count():
    layer = ScaledAdd(0.1)
    shape = (None, 8, 8, 32)
    layer.build([shape, shape])
    assert layer.count_params() == 0
    kind = ScaledAddSpec(scale=0.1)
    assert kind.output_shape([shape, shape]) == shape
    assert kind.macs([shape, shape], shape) == 0  # MACs count multiplying weights; a constant has none


@pytest.mark.parametrize("scale", [float("nan"), "0.1", None])
def test_a_scale_that_is_not_a_finite_number_is_refused(scale):
    with pytest.raises(ValueError, match="`scale` must be a finite number"):
        ScaledAdd(scale)


def test_config_round_trip():
    clone = _testing.assert_config_round_trip(ScaledAdd(0.2, name="sa"))
    assert clone.scale == 0.2

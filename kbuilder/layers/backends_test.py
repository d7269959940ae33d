"""Every kbuilder layer builds, runs, trains and reloads on the JAX backend.

The Keras backend is fixed when keras is first imported, so the check runs in
a subprocess with KERAS_BACKEND=jax. (PyTorch is not installed here; the
layers use `keras.ops` only, so JAX standing in for "not TensorFlow" shows
that no TensorFlow-only op slipped in.)
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import jax  # noqa: F401  (fails loudly if the backend is missing)

    from kbuilder.layers import (ClassToken, EuclideanRBF, LayerScale, LocalResponseNormalization, Maxout,
                                 PartialConv2D, PositionEmbedding, ScaledTanh, SelectToken,
                                 TrainableSubsampling)

    rng = np.random.default_rng(0)
    cases = [
        (LocalResponseNormalization(2, 2.0, 1e-2, 0.75), (6, 6, 8)),
        (Maxout(4), (12,)),
        (ScaledTanh(), (5,)),
        (TrainableSubsampling(activation="tanh"), (8, 8, 6)),
        (PartialConv2D(16, 5, "lenet5_c3"), (14, 14, 6)),
        (EuclideanRBF(10, as_logits=True), (84,)),
        (LayerScale(0.5), (7, 7, 96)),
        (PositionEmbedding(), (6, 4)),
        (ClassToken(token_initializer="random_normal"), (6, 4)),
        (SelectToken(-1), (6, 4)),
    ]
    for layer, shape in cases:
        x = rng.normal(size=(2,) + shape).astype("float32")
        inputs = keras.Input(shape=shape)
        model = keras.Model(inputs, layer(inputs))
        out = keras.ops.convert_to_numpy(model(x))
        assert out.shape[1:] == tuple(layer.compute_output_shape((None,) + shape))[1:], (
            type(layer).__name__, out.shape)
        assert np.all(np.isfinite(out)), type(layer).__name__
        path = f"{sys.argv[1]}/{type(layer).__name__}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), out)
        if model.trainable_weights:
            before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            model.fit(x, np.ones_like(out), epochs=1, verbose=0)
            after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
            assert all(not np.allclose(b, a) for b, a in zip(before, after)), type(layer).__name__
        print("ok", type(layer).__name__, model.count_params())

    # Numeric spot check on JAX: LRN against a direct numpy evaluation.
    x = rng.normal(size=(1, 2, 2, 7)).astype("float32")
    sq = np.pad(x.astype("float64") ** 2, [(0, 0)] * 3 + [(2, 2)])
    sqr_sum = sum(sq[..., k:k + 7] for k in range(5))
    expected = x / (2.0 + 1e-1 * sqr_sum) ** 0.75
    actual = keras.ops.convert_to_numpy(LocalResponseNormalization(2, 2.0, 1e-1, 0.75)(x))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    print("ok numeric")

    from kbuilder.layers import ScaledAdd
    a, b = (rng.normal(size=(2, 4, 4, 3)).astype("float32") for _ in range(2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ScaledAdd(0.17)([a, b])), a + b * np.float32(0.17))
    print("ok ScaledAdd")
    """
)


def test_layers_run_on_jax_backend(tmp_path):
    env = dict(os.environ)
    env.update(
        {
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "ok PartialConv2D 1516" in lines
    assert "ok EuclideanRBF 840" in lines
    assert "ok TrainableSubsampling 12" in lines
    assert "ok LayerScale 96" in lines
    assert "ok numeric" in lines
    assert "ok ScaledAdd" in lines

"""Crafted `.keras` files (issue 10, "Untrusted specs"): a Lambda, a foreign module/class_name
(CVE-2025-1550, CVE-2025-9906), a pickle in the weights. Given to `--resume` or found in a run
directory, each is refused with a clear message and nothing in it runs: every payload would
create a marker file, and the marker never appears."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

from kbuilder.storage import rundir as rd
from kbuilder.train.safe_keras import UnsafeModelFile, inspect_keras_file, load_keras_file
from tests.test_train_cli import run_cli


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture()
def marker(tmp_path):
    return tmp_path / "PWNED"


@pytest.fixture()
def good(tmp_path):
    import keras

    from kbuilder.layers.scaled_tanh import ScaledTanh

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), ScaledTanh()])
    path = tmp_path / "good.keras"
    model.save(path)
    return path


def _rewrite(good, target, *, config=None, members=None):
    """A copy of `good` with config.json changed by `config(dict)` and members replaced/added."""
    members = dict(members or {})
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name == "config.json" and config is not None:
                loaded = json.loads(data)
                config(loaded)
                data = json.dumps(loaded).encode()
            out.writestr(name, members.pop(name, data))
        for name, data in members.items():
            out.writestr(name, data)
    return target


def _dense(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


def _foreign_activation(module, name):
    def change(config):
        _dense(config)["config"]["activation"] = {
            "module": module,
            "class_name": "function",
            "config": name,
            "registered_name": "function",
        }

    return change


def _foreign_layer(marker):
    def change(config):
        config["config"]["layers"].append(
            {
                "module": "subprocess",
                "class_name": "Popen",
                "registered_name": None,
                "config": {"args": ["touch", str(marker)]},
            }
        )

    return change


def _forged_kbuilder(config):
    _dense(config).update(
        {"module": "kbuilder.cli.app", "class_name": "main", "registered_name": "kbuilder>main"}
    )


def _load_model_as_class(config):
    _dense(config).update({"module": "keras.models", "class_name": "load_model", "registered_name": None})


def _vocabulary_file(config):
    config["config"]["layers"].append(
        {
            "module": "keras.layers",
            "class_name": "StringLookup",
            "registered_name": None,
            "config": {"name": "lookup", "vocabulary": "/etc/passwd"},
        }
    )


def _weights_with(good, tmp_path, change) -> bytes:
    """The good file's model.weights.h5 with `change(h5py.File)` applied."""
    import h5py

    path = tmp_path / "weights.h5"
    with zipfile.ZipFile(good) as source:
        path.write_bytes(source.read("model.weights.h5"))
    with h5py.File(path, "a") as weights:
        change(weights)
    return path.read_bytes()


def _external_link(weights):
    weights["layers/leak"] = __import__("h5py").ExternalLink("/etc/passwd", "/")


def _external_dataset(weights):
    weights.create_dataset("layers/leak", shape=(16,), dtype="u1", external=[("/etc/passwd", 0, 16)])


def _virtual_dataset(weights):
    import h5py

    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource("/tmp/elsewhere.h5", "data", shape=(4,))
    weights.create_virtual_dataset("layers/leak", layout)


HDF5_CRAFTED = {
    "hdf5_external_link": (_external_link, "an HDF5 external link"),
    "hdf5_external_dataset": (_external_dataset, "stores /layers/leak in other files (/etc/passwd)"),
    "hdf5_virtual_dataset": (_virtual_dataset, "a virtual dataset"),
}


@pytest.mark.parametrize("case", sorted(HDF5_CRAFTED))
def test_weights_that_read_other_files_are_refused_by_kbuilder_itself(good, tmp_path, case):
    change, says = HDF5_CRAFTED[case]
    crafted = _rewrite(
        good, tmp_path / "crafted.keras", members={"model.weights.h5": _weights_with(good, tmp_path, change)}
    )
    with pytest.raises(UnsafeModelFile, match="nothing in this file was run") as caught:
        inspect_keras_file(crafted)  # kbuilder's own check, before Keras's safe mode
    assert says in str(caught.value), str(caught.value)


CRAFTED = {
    "load_model_named_as_a_class": (lambda m: {"config": _load_model_as_class}, "keras.models.load_model"),
    "vocabulary_read_from_a_file": (
        lambda m: {"config": _vocabulary_file},
        "StringLookup reads its vocabulary from the file '/etc/passwd'",
    ),
    "keras_get_as_an_activation": (
        lambda m: {"config": _foreign_activation("keras.activations", "deserialize")},
        "keras.activations.deserialize",
    ),
    "os_system_activation": (lambda m: {"config": _foreign_activation("os", "system")}, "os.system"),
    "subprocess_popen_layer": (lambda m: {"config": _foreign_layer(m)}, "subprocess.Popen"),
    "enable_unsafe_deserialization": (
        lambda m: {"config": _foreign_activation("keras.config", "enable_unsafe_deserialization")},
        "keras.config.enable_unsafe_deserialization",
    ),
    "forged_kbuilder_layer": (lambda m: {"config": _forged_kbuilder}, "not a registered kbuilder layer"),
    "pickle_as_weights": (
        lambda m: {"members": {"model.weights.h5": pickle.dumps(Payload(m))}},
        "not an HDF5 file",
    ),
    "pickle_in_npz_weights": (
        lambda m: {"members": {"model.weights.npz": pickle.dumps(Payload(m))}},
        "model.weights.npz",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_keras_file_is_refused_before_anything_is_constructed(good, tmp_path, marker, case):
    make, says = CRAFTED[case]
    crafted = _rewrite(good, tmp_path / "crafted.keras", **make(marker))
    with pytest.raises(UnsafeModelFile, match="nothing in this file was run") as caught:
        inspect_keras_file(crafted)  # kbuilder's own check refuses it, not only Keras's safe mode
    assert says in str(caught.value), str(caught.value)
    with pytest.raises(UnsafeModelFile):
        load_keras_file(crafted)
    assert caught.value.exit_code == 2
    assert not marker.exists()


def test_a_lambda_layer_is_refused_though_its_payload_is_live(tmp_path, marker, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)  # the payload writes PWNED in the current folder
    # An anonymous function: Keras stores its bytecode (`__lambda__`) in config.json.
    payload = lambda x: (open("PWNED", "w").close(), x)[1]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(payload)])
    model.save(tmp_path / "lambda.keras")
    marker.unlink()
    with pytest.raises(UnsafeModelFile, match="Lambda"):
        load_keras_file(tmp_path / "lambda.keras")
    assert not marker.exists()
    # The payload is real: Keras outside safe mode runs it while it rebuilds the model.
    keras.saving.load_model(tmp_path / "lambda.keras", safe_mode=False)
    assert marker.exists()


def test_kbuilder_s_own_files_load(good):
    inspect_keras_file(good)
    model = load_keras_file(good)
    assert model.predict(np.zeros((2, 4), "float32"), verbose=0).shape == (2, 3)


def _interrupted_run(tmp_path):
    from kbuilder.spec import load_spec
    from tests.test_train_support import write_spec

    resolved = load_spec(write_spec(tmp_path)).spec.model_dump(mode="json")
    run = rd.open_run_dir("tiny", tmp_path / "run", resolved=resolved)
    rd.write_spec(run, resolved)
    rd.write_json(run / "history.json", [{"epoch": 1, "loss": 1.0}])
    run.release()
    return tmp_path / "run"


@pytest.mark.parametrize("case", ["subprocess_popen_layer", "pickle_as_weights"])
def test_a_crafted_model_found_in_a_run_directory_stops_the_resume(good, tmp_path, marker, case):
    run = _interrupted_run(tmp_path)
    make, says = CRAFTED[case]
    _rewrite(good, run / "best.keras", **make(marker))
    before = sorted(p.name for p in run.iterdir())
    code, _stdout, stderr = run_cli(["train", "--resume", str(run), "--no-export"])
    assert code == 2 and "refused model file" in stderr and "best.keras" in stderr and says in stderr, stderr
    assert not marker.exists()
    assert sorted(p.name for p in run.iterdir()) == before


def test_resume_refuses_a_model_file(good, tmp_path):
    code, _, stderr = run_cli(["train", "--resume", str(good), "--no-export"])
    assert code == 2 and "takes the run directory" in stderr, stderr

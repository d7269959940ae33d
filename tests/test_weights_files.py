"""Weights files are untrusted input: a truncated or foreign file, a dataset declaring more
elements than the limit, a non-numeric or non-float tensor, a link out of the file: each is
refused with exit 2 and a message naming the file, before any layer changes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from kbuilder.cli.app import main
from kbuilder.weights.h5_layouts import WeightsFileError
from kbuilder.weights.sources import read_source
from tests.weights_helpers import TINY

LIMIT = 1_000_000


def _keras3_file(path, datasets: dict[str, np.ndarray], name: str = "head") -> None:
    """A Keras 3 weights file with one layer (`layers/dense/vars/<i>`)."""
    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.attrs["name"] = name
        for key, value in datasets.items():
            variables.create_dataset(key, data=value)


def test_a_keras3_file_is_read_by_layer_name_with_its_own_order(tmp_path):
    path = tmp_path / "ok.weights.h5"
    _keras3_file(path, {"0": np.ones((3, 2), "float32"), "1": np.zeros(2, "float32")})
    source = read_source(path, LIMIT)
    assert source.layers == {"head": ["head/vars/0", "head/vars/1"]} and not source.ordered
    assert source.tensors["head/vars/0"].shape == (3, 2)


def test_a_dataset_declaring_more_elements_than_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.weights.h5"
    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.attrs["name"] = "head"
        variables.create_dataset("0", shape=(10**7, 10**6), dtype="float32", chunks=(1, 1000))
    with pytest.raises(WeightsFileError, match=r"huge.weights.h5.*declares 10,000,000,000,000 elements"):
        read_source(path, LIMIT)


def test_a_dataset_without_its_data_is_refused(tmp_path):
    path = tmp_path / "empty.weights.h5"
    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.create_dataset("0", shape=(100,), dtype="float32", chunks=(10,))
    with pytest.raises(WeightsFileError, match="holds no data"):
        read_source(path, LIMIT)


def test_a_non_numeric_tensor_is_refused(tmp_path):
    path = tmp_path / "text.weights.h5"
    _keras3_file(path, {"0": np.array([b"rm -rf /"])})
    with pytest.raises(
        WeightsFileError, match=r"text.weights.h5: layers/dense/vars/0: dtype .* is not a number"
    ):
        read_source(path, LIMIT)


def test_links_out_of_the_file_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    _keras3_file(other, {"0": np.ones(2, "float32")})
    path = tmp_path / "link.weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("layers")
        handle["layers/dense"] = h5py.ExternalLink(str(other), "/layers/dense")
    with pytest.raises(WeightsFileError, match="an external link"):
        read_source(path, LIMIT)
    external = tmp_path / "external.weights.h5"
    (tmp_path / "raw.bin").write_bytes(np.ones(4, "float32").tobytes())
    with h5py.File(external, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.create_dataset(
            "0", shape=(4,), dtype="float32", external=[(str(tmp_path / "raw.bin"), 0, 16)]
        )
    with pytest.raises(WeightsFileError, match="lives in other files"):
        read_source(external, LIMIT)


def test_foreign_and_truncated_files_are_refused_naming_them(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x80\x04 not hdf5 at all" * 10)
    with pytest.raises(WeightsFileError, match="garbage.h5: not an HDF5 file"):
        read_source(garbage, LIMIT)
    good = tmp_path / "good.weights.h5"
    _keras3_file(good, {"0": np.ones((64, 64), "float32")})
    truncated = tmp_path / "cut.weights.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsFileError, match="cut.weights.h5: cannot be read"):
        read_source(truncated, LIMIT)
    no_layers = tmp_path / "plain.h5"
    with h5py.File(no_layers, "w") as handle:
        handle.create_dataset("x", data=np.ones(3))
    with pytest.raises(WeightsFileError, match="not a Keras weights file"):
        read_source(no_layers, LIMIT)
    archive = tmp_path / "model.keras"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("config.json", "{}")
    with pytest.raises(WeightsFileError, match=r"model.keras: no model.weights.h5 inside"):
        read_source(archive, LIMIT)
    with pytest.raises(WeightsFileError, match="not a .keras file"):
        read_source(garbage.rename(tmp_path / "garbage.keras"), LIMIT)


def test_directories_are_runs_or_exports(tmp_path):
    with pytest.raises(WeightsFileError, match="not a run directory"):
        read_source(tmp_path, LIMIT)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(WeightsFileError, match="give one member's run directory"):
        read_source(tmp_path, LIMIT)
    (tmp_path / "spec.yaml").write_text("name: x")
    with pytest.raises(WeightsFileError, match="no best.keras or last.keras"):
        read_source(tmp_path, LIMIT)
    with pytest.raises(WeightsFileError, match="no such file"):
        read_source(tmp_path / "missing.h5", LIMIT)
    (tmp_path / "w.npz").write_bytes(b"PK")
    with pytest.raises(WeightsFileError, match="unknown weights file type '.npz'"):
        read_source(tmp_path / "w.npz", LIMIT)


@pytest.mark.slow
def test_the_cli_refuses_a_bad_file_with_exit_2_and_a_float_weight_from_integers_at_its_layer(
    tmp_path, capsys
):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    bad = tmp_path / "cut.weights.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert main(["build", str(spec), "--weights", str(bad), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2 and "cut.weights.h5" in json.dumps(document)
    integers = tmp_path / "int.weights.h5"
    _keras3_file(integers, {"0": np.ones((4, 3), "int32"), "1": np.ones(3, "int32")})
    spec.write_text(TINY + "weights: {from: int.weights.h5, include: [head]}\n")
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "tiny.yaml:14:5" in err and "the source's head/vars/0 is int32, not a float" in err


def test_weights_with_resume_is_refused_before_any_work(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--weights", str(tmp_path / "w.h5")]) == 2
    assert "a resumed run restores its own checkpoint" in capsys.readouterr().err


def test_a_compressed_keras_zip_and_a_nested_model_are_read(tmp_path):
    inner = tmp_path / "inner.weights.h5"
    with h5py.File(inner, "w") as handle:
        stem = handle.create_group("layers/conv2d/vars")
        stem.attrs["name"] = "stem"
        stem.create_dataset("0", data=np.ones((3, 3, 1, 2), "float32"))
        nested = handle.create_group("layers/functional/layers/dense/vars")  # a model used as a layer
        nested.attrs["name"] = "head"
        nested.create_dataset("0", data=np.ones((2, 2), "float32"))
        nested.create_dataset("1", data=np.zeros(2, "float32"))
    archive = tmp_path / "deflated.keras"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("config.json", "{}")
        zipped.write(inner, "model.weights.h5")
    source = read_source(archive, LIMIT)
    assert source.layers == {"stem": ["stem/vars/0"], "head": ["head/vars/0", "head/vars/1"]}
    assert source.path == str(archive)


def test_a_spec_revalidated_from_its_data_still_finds_from_beside_its_file(tmp_path):
    from types import SimpleNamespace

    from kbuilder.spec import LoadedSpec, load_spec, validate_data
    from kbuilder.weights.load import weights_options

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY + "weights: {from: w.weights.h5}\n")
    loaded = load_spec(spec)
    assert loaded.spec.weights.from_ == str(tmp_path / "w.weights.h5")
    again = LoadedSpec(
        validate_data(loaded.data, loaded.source), loaded.data, loaded.source, loaded.path
    )  # a tune trial's
    assert again.spec.weights.from_ == "w.weights.h5"
    assert weights_options(SimpleNamespace(loaded=again)).from_ == str(tmp_path / "w.weights.h5")
    given = weights_options(SimpleNamespace(loaded=again), "other.h5").from_
    assert given == str((Path.cwd() / "other.h5").resolve())  # --weights: from here

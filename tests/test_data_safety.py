"""Hostile and broken data files (issue 10, "Data files"): every one ends as kbuilder's own data
error (exit 2, before training) that names what was expected and what was found; never an
"internal error", an unpickled object, a huge allocation or a hang."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from tests.test_train_cli import run_cli
from tests.test_train_support import current_backend

MODEL = """
name: small
inputs:
  x: {shape: [4]}
layers:
  - dense: {units: 3}
"""
TRAIN = """
train:
  data:
    source: %s
    validation: {type: none}
  loss: sparse_categorical_crossentropy
  epochs: 1
  batch_size: 2
"""
X = np.arange(24, dtype="float32").reshape(6, 4)
Y = np.array([0, 1, 2, 0, 1, 2])


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _train(tmp_path, source: str) -> tuple[int, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(MODEL + TRAIN % source)
    code, stdout, stderr = run_cli(
        [
            "train",
            str(spec),
            "--out",
            str(tmp_path / "run"),
            "--backend",
            current_backend(),
            "--no-export",
            "--quiet",
        ]
    )
    text = stdout + stderr
    assert "internal error" not in text and "Traceback" not in text, text
    assert not (tmp_path / "run" / "history.json").exists(), "refused before training"
    return code, text


def _npy(tmp_path, x=X, y=Y) -> str:
    np.save(tmp_path / "x.npy", x, allow_pickle=True)
    np.save(tmp_path / "y.npy", y, allow_pickle=True)
    return "{type: npy, x: x.npy, y: y.npy}"


def test_a_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    evil = np.array([Payload(marker)] * 6, dtype=object)
    code, text = _train(tmp_path, _npy(tmp_path, y=evil))
    assert code == 2 and "object array (pickled Python objects)" in text, text
    np.savez(tmp_path / "evil.npz", x_train=X, y_train=evil, allow_pickle=True)
    code, text = _train(
        tmp_path, "{type: npz, path: evil.npz}"
    )  # the same --out: no epoch ran, so it is free
    assert code == 2 and "object array" in text and "'y_train'" in text, text
    assert not marker.exists()


@pytest.mark.parametrize(
    ("x", "y", "says"),
    [
        (np.float32(3.0), Y, "x.npy) are a single scalar (float32)"),
        (X, np.int64(1), "y.npy) are a single scalar (int64)"),
        (np.zeros((0, 4), "float32"), np.zeros((0,), "int64"), "the training set is empty"),
        (
            np.where(X > 20, np.nan, X),
            Y,
            "hold 3 NaN or infinite values in 1 samples (the first is sample 5)",
        ),
        (np.where(X == 0, np.inf, X), Y, "NaN or infinite values in 1 samples (the first is sample 0)"),
        (X, np.array([0, 1, 7, 0, 1, 2]), "labels run from 0 to 7 but the model has 3 outputs"),
        (X[:, :3], Y, "samples of shape (3,) but the model input 'x' expects (4,)"),
        (X, Y[:5], "x.npy) declare 6 samples but the labels ("),
        (X.astype("float64") * np.where(X == 9, 1e300, 1), Y, "values outside float32's range"),
        (
            np.array(["a", "b", "c", "d", "e", "f"]),
            Y,
            "x.npy holds <U1 values; kbuilder reads only numeric arrays",
        ),
    ],
)
def test_arrays_that_cannot_train_are_refused_naming_both_sides(tmp_path, x, y, says):
    code, text = _train(tmp_path, _npy(tmp_path, x=x, y=y))
    assert code == 2 and says in text, text


def test_a_truncated_npz_is_a_data_error(tmp_path):
    np.savez(tmp_path / "data.npz", x_train=X, y_train=Y)
    whole = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "data.npz").write_bytes(whole[: len(whole) // 2])
    code, text = _train(tmp_path, "{type: npz, path: data.npz}")
    assert code == 2 and "is not a valid .npz archive" in text and "truncated" in text, text


def test_a_header_declaring_a_trillion_elements_is_refused_without_allocating(tmp_path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)}
    with open(tmp_path / "x.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    np.save(tmp_path / "y.npy", Y)
    code, text = _train(tmp_path, "{type: npy, x: x.npy, y: y.npy}")
    assert code == 2 and "declares shape (1000000000000, 4) float32" in text, text
    assert "TB" in text


def test_a_deflate_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    from kbuilder.train import safe_arrays

    monkeypatch.setattr(safe_arrays, "memory_bound", lambda: 8 << 20)  # the machine's bound, scaled down
    block = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        block, {"descr": "<f4", "fortran_order": False, "shape": (16 << 20,)}
    )
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x_train.npy", "w") as member:
            member.write(block.getvalue())
            zeros = bytes(1 << 20)
            for _ in range(64):
                member.write(zeros)
        archive.writestr("y_train.npy", b"")
    assert (tmp_path / "bomb.npz").stat().st_size < 200_000
    code, text = _train(tmp_path, "{type: npz, path: bomb.npz}")
    assert code == 2 and "declares 64.0 MB unpacked" in text and "more than the 8.0 MB" in text, text


def test_a_device_passed_as_a_data_file_is_refused(tmp_path):
    np.save(tmp_path / "y.npy", Y)
    os.symlink("/dev/zero", tmp_path / "x.npy")
    code, text = _train(tmp_path, "{type: npy, x: x.npy, y: y.npy}")
    assert code == 2 and "is not a regular file" in text, text


def _image_folder(tmp_path):
    import keras

    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(2):
            keras.utils.save_img(
                tmp_path / "images" / label / f"{i}.png", np.full((4, 4, 1), 60 * i, "uint8")
            )
    return "{type: image_folder, directory: images, image_size: [2, 2]}"


@pytest.mark.parametrize(
    "plant", ["text_named_png", "truncated_png", "link_to_dev_zero", "link_out_of_the_folder", "fifo"]
)
def test_an_image_folder_refuses_links_devices_and_fake_images(tmp_path, plant):
    source = _image_folder(tmp_path)
    target = tmp_path / "images" / "a" / "9.png"
    if plant == "text_named_png":
        target.write_text("hello, I am not an image")
        says = "is named .png but is not a PNG image (it starts with b'hello, I'"
    elif plant == "truncated_png":  # the right signature, then nothing: the decoder's error, as a data error
        target.write_bytes((tmp_path / "images" / "a" / "0.png").read_bytes()[:20])
        says = "cannot read the images in"
    elif plant == "link_to_dev_zero":
        os.symlink("/dev/zero", target)
        says = "holds a symbolic link"
    elif plant == "link_out_of_the_folder":
        (tmp_path / "secret.png").write_bytes((tmp_path / "images" / "a" / "0.png").read_bytes())
        os.symlink(tmp_path / "secret.png", target)
        says = "never follows links"
    else:
        os.mkfifo(target)
        says = "is not a regular file"
    spec_model = MODEL.replace("shape: [4]", "shape: [2, 2, 1]").replace(
        "layers:", "layers:\n  - flatten: {}"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_model + TRAIN % source)
    code, _stdout, stderr = run_cli(
        [
            "train",
            str(spec),
            "--out",
            str(tmp_path / "run"),
            "--backend",
            current_backend(),
            "--no-export",
            "--quiet",
        ]
    )
    assert code == 2 and says in stderr, stderr
    assert "internal error" not in stderr


def test_float64_values_beyond_float32_name_the_sample(tmp_path):
    x = X.astype("float64")
    x[4, 2] = -1e300
    code, text = _train(tmp_path, _npy(tmp_path, x=x))
    assert code == 2 and "the training inputs hold 1 values outside float32's range" in text, text
    assert "the first is sample 4, up to 1e+300" in text


def _declared_npz(path, arrays: dict) -> None:
    """An .npz whose members declare the given (shape, dtype) and hold zeros (deflated: tiny)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, (shape, dtype) in arrays.items():
            block = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                block, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            )
            with archive.open(f"{name}.npy", "w") as member:
                member.write(block.getvalue())
                member.write(bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize))


def test_the_memory_bound_counts_every_array_and_its_float32_copies(tmp_path, monkeypatch):
    from kbuilder.train import safe_arrays

    monkeypatch.setattr(safe_arrays, "memory_bound", lambda: 8 << 20)  # the machine's bound, scaled down
    # 2.4 MB of uint8 inputs and 0.6 MB of labels: each file under the bound, the run over it
    # (uint8 -> float32 is x4, and the split and preprocessing copies).
    _declared_npz(tmp_path / "data.npz", {"x_train": ((3000, 800), "u1"), "y_train": ((3000, 200), "u1")})
    code, text = _train(tmp_path, "{type: npz, path: data.npz}")
    assert code == 2 and "the data of this run would take about 28.6 MB in memory" in text, text
    assert "more than the 8.0 MB kbuilder allows" in text and "train.data.limit" in text
    assert "data.npz['x_train']: uint8 (3000, 800) -> 22.9 MB" in text

    # The same file within bounds once `limit` takes a tenth of it.
    from kbuilder.train.data_plan import check_plan
    from kbuilder.train.safe_arrays import NpzArchive

    class Data:
        limit, test_limit, repeat = 300, None, 1

    from kbuilder.train.data_plan import PlannedSplit

    with NpzArchive(tmp_path / "data.npz") as archive:
        split = PlannedSplit("training", archive.header("x_train"), archive.header("y_train"))
    check_plan([split], Data())
    Data.repeat = 10
    with pytest.raises(Exception, match="would take about"):
        check_plan([split], Data())


def test_label_counts_are_checked_from_headers_before_unpacking(tmp_path, monkeypatch):
    from kbuilder.train import safe_arrays

    read = []
    monkeypatch.setattr(safe_arrays.NpzArchive, "read", lambda self, key: read.append(key))
    _declared_npz(tmp_path / "data.npz", {"x_train": ((600, 4), "f4"), "y_train": ((500,), "i8")})
    code, text = _train(tmp_path, "{type: npz, path: data.npz}")
    assert code == 2 and "['x_train']) declare 600 samples but the labels" in text, text
    assert "['y_train']) declare 500: give as many labels as inputs" in text
    assert read == []  # nothing unpacked


def test_the_memory_limit_can_be_set_and_a_bad_one_is_named(monkeypatch):
    from kbuilder.errors import DataError
    from kbuilder.train.safe_arrays import MEMORY_ENV, memory_bound

    monkeypatch.setenv(MEMORY_ENV, "100M")
    assert memory_bound() == 100 << 20
    monkeypatch.setenv(MEMORY_ENV, "lots")
    with pytest.raises(DataError, match="expected bytes, or a size such as 2G"):
        memory_bound()

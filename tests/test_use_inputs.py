"""Reading users' images and arrays as the data source delivered them (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kbuilder.errors import DataError
from kbuilder.use.inputs import RawTarget, raw_target, read_image, read_inputs

GRAY = RawTarget(shape=(28, 28), dtype="uint8", source_resizes=False, preprocess_resizes=False)
RGB = RawTarget(shape=(32, 32, 3), dtype="uint8", source_resizes=False, preprocess_resizes=False)


def test_color_and_alpha_images_become_grayscale(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28, 3)).astype("uint8")
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([pixels, np.full((28, 28), 255, "uint8")])).save(tmp_path / "rgba.png")
    expected = np.asarray(Image.fromarray(pixels).convert("L"))
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png", GRAY), expected)
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png", GRAY), expected)


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path):
    wide = (np.arange(28 * 28).reshape(28, 28) * 83).astype("uint16")
    Image.fromarray(wide).save(tmp_path / "wide.png")
    read = read_image(tmp_path / "wide.png", GRAY)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, np.rint(wide / 257.0).astype("uint8"))


def test_grayscale_becomes_rgb_and_bmp_jpeg_are_read(tmp_path):
    gray = np.full((32, 32), 77, "uint8")
    Image.fromarray(gray).save(tmp_path / "g.bmp")
    Image.fromarray(gray).convert("RGB").save(tmp_path / "g.jpg", quality=100)
    assert read_image(tmp_path / "g.bmp", RGB).shape == (32, 32, 3)
    assert abs(int(read_image(tmp_path / "g.jpg", RGB)[0, 0, 0]) - 77) <= 1


def test_sizes_are_resized_only_when_the_source_or_preprocessing_resizes(tmp_path):
    Image.fromarray(np.zeros((40, 30), "uint8")).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"30x40 pixels .* takes 28x28"):
        read_image(tmp_path / "big.png", GRAY)
    folder = RawTarget(shape=(28, 28, 1), dtype="float32", source_resizes=True, preprocess_resizes=False)
    assert read_image(tmp_path / "big.png", folder).shape == (28, 28, 1)
    resizing = RawTarget(shape=(28, 28), dtype="uint8", source_resizes=False, preprocess_resizes=True)
    assert read_image(tmp_path / "big.png", resizing).shape == (40, 30)


def test_raw_target_of_a_contract():
    contract = {
        "raw_input": {"dtype": "float32", "shape": [64, 64, 3]},
        "source": "image_folder",
        "preprocess": [{"type": "resize", "size": [32, 32], "interpolation": "bilinear"}],
    }
    target = raw_target(contract)
    assert target.shape == (64, 64, 3) and target.source_resizes and target.preprocess_resizes


def test_arrays_one_sample_a_batch_and_npz_keys(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((28, 28), "uint8"))
    np.savez(tmp_path / "many.npz", x_test=np.zeros((3, 28, 28), "uint8"), y_test=np.zeros(3, "uint8"))
    np.savez(tmp_path / "odd.npz", a=np.zeros((3, 28, 28)), b=np.zeros(3))
    inputs = read_inputs([tmp_path / "one.npy", tmp_path / "many.npz"], GRAY)
    assert inputs.names == [str(tmp_path / "one.npy")] + [f"{tmp_path / 'many.npz'}[{i}]" for i in range(3)]
    with pytest.raises(DataError, match="odd.npz: holds 2 arrays"):
        read_inputs([tmp_path / "odd.npz"], GRAY)


def test_folders_are_searched_and_other_files_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((28, 28), "uint8")).save(tmp_path / "sub" / "b.png")
    Image.fromarray(np.zeros((28, 28), "uint8")).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    assert read_inputs([tmp_path], GRAY).names == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.png")]
    with pytest.raises(DataError, match="notes.txt: not an image"):
        read_inputs([tmp_path / "notes.txt"], GRAY)
    with pytest.raises(DataError, match="no such file"):
        read_inputs([tmp_path / "missing.png"], GRAY)

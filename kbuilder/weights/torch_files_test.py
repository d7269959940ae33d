"""read_torch: state_dicts in, float32 arrays out; hostile or broken files refused (exit 2),
nothing in them run."""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from kbuilder.errors import EXIT_INVALID, DataError
from kbuilder.weights.torch_files import read_torch


def small_state() -> OrderedDict:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    return model.state_dict()


def refused(path: Path, *words: str, **options) -> DataError:
    with pytest.raises(DataError) as caught:
        read_torch(path, **options)
    assert caught.value.exit_code == EXIT_INVALID
    assert str(path) in str(caught.value)
    for word in words:
        assert word in str(caught.value)
    return caught.value


def test_state_dict_order_kept_counter_dropped(tmp_path):
    state = small_state()
    path = tmp_path / "net.pt"
    torch.save(state, path)
    source = read_torch(path)
    assert source.layout == "torch"
    assert list(source.tensors) == [name for name in state if not name.endswith("num_batches_tracked")]
    assert all(array.dtype == np.float32 for array in source.tensors.values())
    np.testing.assert_array_equal(source.tensors["0.weight"], state["0.weight"].numpy())


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_common_wrappers(tmp_path, wrapper):
    path = tmp_path / "checkpoint.pth"
    torch.save({wrapper: small_state(), "epoch": 3}, path)
    assert "0.weight" in read_torch(path).tensors


def test_half_precision_up_cast(tmp_path):
    path = tmp_path / "half.pt"
    values = torch.tensor([1.5, -2.25, 3.0e-3])
    torch.save({"a.weight": values.to(torch.bfloat16), "b.weight": values.to(torch.float16)}, path)
    tensors = read_torch(path).tensors
    assert tensors["a.weight"].dtype == np.float32
    np.testing.assert_allclose(tensors["a.weight"], values.to(torch.bfloat16).float().numpy())
    np.testing.assert_allclose(tensors["b.weight"], values.to(torch.float16).float().numpy())


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    ("protocol", "named"),
    [(None, "it names posix.system, "), (2, "it names posix.system, "), (4, "")],
    ids=["torch.save", "pickle protocol 2", "pickle protocol 4"],
)
def test_pickle_payload_is_refused_and_not_run(tmp_path, protocol, named):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    if protocol is None:
        torch.save({"0.weight": torch.zeros(2), "x": RunsACommand(marker)}, path)
    else:  # a plain pickle of a tensor would name torch's own (also refused) storage loader first
        path.write_bytes(pickle.dumps({"x": RunsACommand(marker)}, protocol=protocol))
    error = refused(path, f"({named}refused without running it)", "torch.save(model.state_dict(), PATH)")
    assert not marker.exists()
    assert "weights_only" not in str(error)


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    refused(path, "holds more than tensors (it names torch.nn.modules.linear.Linear")


def test_non_tensor_values_and_integer_tensors_are_refused(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"0.weight": torch.zeros(2), "note": "hello"}, path)
    refused(path, "'note' holds a str, not a tensor")
    torch.save({"0.weight": torch.zeros(2, dtype=torch.int64)}, path)
    refused(path, "'0.weight' holds int64 values", "floating point")
    torch.save([torch.zeros(2)], path)
    refused(path, "holds a list, not a state_dict")


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(small_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused(path, "truncated or corrupt")


def test_too_many_values_for_the_limit(tmp_path):
    path = tmp_path / "big.pt"
    torch.save({"0.weight": torch.zeros(1000)}, path)
    refused(path, "more than the limit of 100 parameters", max_values=100)


def test_not_a_file_and_wrong_suffix(tmp_path):
    refused(tmp_path, "not a regular file")
    refused(tmp_path / "missing.pt", "cannot read")
    other = tmp_path / "weights.npz"
    other.write_bytes(b"x")
    refused(other, "expected .pt, .pth or .safetensors")


def test_safetensors_in_natural_name_order(tmp_path):
    path = tmp_path / "net.safetensors"
    state = {f"features.{i}.weight": torch.full((2,), float(i)) for i in (0, 3, 10)}
    state["features.3.bias"] = torch.ones(2, dtype=torch.bfloat16)
    save_file(state, path)
    tensors = read_torch(path).tensors
    assert list(tensors) == [
        "features.0.weight",
        "features.3.bias",
        "features.3.weight",
        "features.10.weight",
    ]
    np.testing.assert_array_equal(tensors["features.10.weight"], [10.0, 10.0])
    np.testing.assert_array_equal(tensors["features.3.bias"], [1.0, 1.0])


def forged(tmp_path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path = tmp_path / "forged.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_safetensors_forged_sizes_refused_before_reading(tmp_path):
    huge = {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    refused(forged(tmp_path, huge), "the file holds 0")
    lying = {"w": {"dtype": "F32", "shape": [100], "data_offsets": [0, 8]}}
    refused(forged(tmp_path, lying, b"\0" * 8), "needs 400 bytes, its range holds 8")
    integers = {"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}
    refused(forged(tmp_path, integers, b"\0" * 8), "holds I64 values", "floating point")
    many = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    refused(forged(tmp_path, many, b"\0" * 16), "more than the limit of 2 parameters", max_values=2)


def test_safetensors_truncated_or_garbage(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"w": torch.zeros(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    refused(path, "truncated or a forged size")
    path.write_bytes(data[:5])
    refused(path, "truncated .safetensors file")
    path.write_bytes(struct.pack("<Q", 10**15) + b"{}")
    refused(path, "header declares")
    path.write_bytes(struct.pack("<Q", 3) + b"{x}")
    refused(path, "not JSON")


def forged_archive(tmp_path: Path, field_offset: int, value: int) -> Path:
    """A zip whose central directory lies about its one member's size (compressed size at
    offset 20 of the entry, uncompressed at 24)."""
    path = tmp_path / "forged.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data/0", b"\0" * 64)
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"PK\x01\x02")
    data[entry + field_offset : entry + field_offset + 4] = struct.pack("<I", value)
    path.write_bytes(bytes(data))
    return path


def test_archive_members_checked_before_torch_reads_them(tmp_path):
    refused(forged_archive(tmp_path, 20, 2**31), "member 'archive/data/0' ends past the end of the file")
    refused(forged_archive(tmp_path, 24, 2**31), "more than the limit of 1,000 parameters", max_values=1000)


def test_without_torch_pt_files_say_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "net.pt"
    torch.save(small_state(), path)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    refused(path, "pip install 'kbuilder[torch]'", ".safetensors, which needs no torch")

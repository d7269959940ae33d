"""Fuzz kbuilder's data loading with random `.npy`/`.npz` headers (issue 18).

Each case writes a data set whose headers are random: dtypes numpy knows and ones kbuilder
refuses (object, unicode, void, complex), shapes from empty to 2^62 elements, negative or
non-integer dimensions, magic versions 1.0 to 9.9, a data part that is whole, truncated or a
deflated run of zeros declaring gigabytes, label counts that differ from the inputs. It is
then loaded as `kbuilder train` loads it (the headers priced first, then the arrays read and
checked). Every case must load or end in kbuilder's own DataError - never another exception,
never slow, never a large allocation.

    python tools/fuzz_data_headers.py                 # 2,000 cases
    python tools/fuzz_data_headers.py --cases 200 --seed 3

tests/test_fuzz_specs.py runs a few hundred of them.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np

from kbuilder.errors import KBuilderError
from kbuilder.spec.train.data import DataSpec
from kbuilder.train.data import load_splits

SLOW_SECONDS = 5.0
NUMERIC = ["<f4", "<f8", "|u1", "<i8", "|b1", ">f8", "<f2"]
REFUSED = ["<U3", "|O", "|V8", "<c8", "xyz", "<M8[s]"]
DIMS = [0, 1, 2, 3, 4, 7, 10, 1000, 10**6, 10**9, 10**12, 2**62, -1, 2.5, "a"]
SANE_DIMS = [1, 2, 3, 4, 7, 10]
VERSIONS = [(1, 0), (1, 0), (2, 0), (3, 0), (9, 9)]


@dataclass
class Outcome:
    status: str  # loaded, refused, escaped
    seconds: float
    detail: str = ""


def _header(rng: random.Random, rows: int | None) -> tuple[str, tuple]:
    descr = rng.choice(NUMERIC if rng.random() < 0.85 else REFUSED)
    dims = DIMS if rng.random() < 0.3 else SANE_DIMS
    shape: tuple = tuple(rng.choice(dims) for _ in range(rng.randrange(0, 4)))
    if rows is not None and rng.random() < 0.8:  # most cases keep a common sample count
        shape = (rows, *shape[1:]) if shape else (rows,)
    return descr, shape


def npy_bytes(rng: random.Random, rows: int | None) -> bytes:
    """One .npy file with a random header and a data part that is whole, short or absent."""
    descr, shape = _header(rng, rows)
    order = rng.random() < 0.1
    text = f"{{'descr': {descr!r}, 'fortran_order': {order}, 'shape': {shape!r}, }}"
    major, minor = rng.choice(VERSIONS)
    length_bytes = 2 if major == 1 else 4
    header = text.encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    out = io.BytesIO()
    out.write(b"\x93NUMPY" + bytes([major, minor]) + len(header).to_bytes(length_bytes, "little") + header)
    try:
        size = 1
        for dim in shape:
            size *= int(dim)
        itemsize = int(descr[2:]) if descr[2:].isdigit() else 8
        declared = max(size, 0) * itemsize
    except (TypeError, ValueError):
        declared = 64
    body = min(declared, 1 << 16)
    if rng.random() < 0.3:
        body = rng.randrange(0, body + 1)  # truncated
    out.write(rng.randbytes(body))
    return out.getvalue()


def _bomb(rng: random.Random, rows: int) -> bytes:
    """A header declaring up to 2^33 bytes of float32 followed by as many zeros as it declares
    up to 64 MB (a deflated archive holds them in kilobytes)."""
    width = rng.choice([1, 100, 2048])
    declared = rows * width * 4
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)}
    )
    return header.getvalue() + bytes(min(declared, 64 << 20))


def write_case(folder: Path, rng: random.Random) -> dict:
    """Writes one data set; returns the spec's `train.data` section for it."""
    rows = rng.choice([1, 4, 10, 100, 1000, 10**6, 10**9, None])
    if rng.random() < 0.5:
        (folder / "x.npy").write_bytes(npy_bytes(rng, rows))
        (folder / "y.npy").write_bytes(npy_bytes(rng, rows))
        return {"source": {"type": "npy", "x": "x.npy", "y": "y.npy"}, "validation": {"type": "none"}}
    compression = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(folder / "data.npz", "w", compression=compression) as archive:
        keys = ["x_train", "y_train"] if rng.random() < 0.85 else rng.sample(["x_train", "y_train"], 1)
        keys += ["x_test", "y_test"][: rng.choice([0, 0, 1, 2])]
        for key in keys:
            bomb = compression == zipfile.ZIP_DEFLATED and rng.random() < 0.2
            archive.writestr(f"{key}.npy", _bomb(rng, rows or 10) if bomb else npy_bytes(rng, rows))
    if rng.random() < 0.1:  # a damaged archive
        data = bytearray((folder / "data.npz").read_bytes())
        for _ in range(8):
            data[rng.randrange(len(data))] = rng.randrange(256)
        (folder / "data.npz").write_bytes(bytes(data[: rng.randrange(len(data) + 1)]))
    section: dict = {"source": {"type": "npz", "path": "data.npz"}, "validation": {"type": "none"}}
    if rng.random() < 0.3:
        section["limit"] = rng.choice([1, 10, 1000])
    if rng.random() < 0.2:
        section["repeat"] = rng.choice([2, 1000])
    return section


def check_case(seed: int) -> Outcome:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kb-fuzz-data-") as tmp:
        folder = Path(tmp)
        section = write_case(folder, rng)
        data = DataSpec.model_validate(section)
        start = time.perf_counter()
        try:
            splits = load_splits(data, spec_dir=folder, data_dir=None, input_shape=(None,), seed=0)
            outcome = Outcome("loaded", time.perf_counter() - start, f"{len(splits.train)} samples")
        except KBuilderError as exc:
            outcome = Outcome("refused", time.perf_counter() - start, " ".join(exc.details()))
        except Exception as exc:  # noqa: BLE001  (that is what the fuzzer looks for)
            return Outcome("escaped", time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}")
    if outcome.seconds > SLOW_SECONDS:
        return Outcome("escaped", outcome.seconds, f"slow ({outcome.seconds:.1f} s): {outcome.detail[:200]}")
    return outcome


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(cases: int, seed: int) -> int:
    counts: Counter = Counter()
    escapes: list[tuple[int, Outcome]] = []
    slowest = (0.0, 0)
    started, rss_before = time.perf_counter(), peak_rss_mb()
    for number in range(cases):
        case_seed = seed * 1_000_003 + number
        outcome = check_case(case_seed)
        counts[outcome.status] += 1
        if outcome.status == "escaped":
            escapes.append((case_seed, outcome))
        slowest = max(slowest, (outcome.seconds, case_seed))
    print(f"data cases: {cases}, seed {seed}, {time.perf_counter() - started:.0f} s")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")
    print(f"slowest case: {slowest[0]:.2f} s (case seed {slowest[1]})")
    print(f"peak memory: {peak_rss_mb():.0f} MiB (before the cases: {rss_before:.0f} MiB)")
    print(f"escapes: {len(escapes)}")
    for case_seed, outcome in escapes[:20]:
        print(f"  case seed {case_seed}: {outcome.detail}")
    return 1 if escapes else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2_000, help="random data sets to load")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (cases are reproducible)")
    args = parser.parse_args(argv)
    return run(args.cases, args.seed)


if __name__ == "__main__":
    sys.exit(main())

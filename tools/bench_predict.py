"""`kbuilder predict` throughput against a plain Python loop, on lenet5_modern and 10,000 PNGs.

    PYTHONPATH=. python tools/bench_predict.py --run runs/lenet5_modern-... [--images 10000]

The PNG files are MNIST's test digits written with Pillow. The baseline is what a user writes
by hand: decode each file with Pillow, preprocess as the spec says (rescale, normalize with
the run's statistics, pad, channel axis) and call `model.predict` on batches of the same size.
Both load the same best.keras; each is timed after one warm-up pass (best of --repeat).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import kbuilder.api as kb

BATCH = 256


def write_pngs(folder: Path, count: int, data_dir: Path) -> list[Path]:
    with np.load(data_dir / "mnist.npz") as data:
        images = data["x_test"]
    files = []
    for i in range(count):
        path = folder / f"{i:05d}.png"
        Image.fromarray(images[i % len(images)]).save(path)
        files.append(path)
    return files


def plain_loop(run: Path, files: list[Path]) -> np.ndarray:
    import keras

    import kbuilder.layers  # noqa: F401  (kbuilder's layers for the .keras file)

    model = keras.saving.load_model(run / "best.keras")
    stats = json.loads((run / "metrics.json").read_text())["data"]["normalize_statistics"][0]
    mean, std = np.float32(stats["mean"]), np.float32(stats["std"])
    outputs = []
    for start in range(0, len(files), BATCH):
        batch = np.stack([np.asarray(Image.open(f)) for f in files[start : start + BATCH]]).astype("float32")
        x = (batch * np.float32(1 / 255) - mean) / std
        x = np.pad(x, [(0, 0), (2, 2), (2, 2)])[..., None]
        outputs.append(model.predict(x, batch_size=BATCH, verbose=0))
    return np.concatenate(outputs)


def best_of(repeat: int, work) -> tuple[float, object]:
    work()  # warm-up: imports, graph tracing, file cache
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="A finished lenet5_modern run directory.")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_pngs(Path(tmp), args.images, args.data_dir)
        loop_s, expected = best_of(args.repeat, lambda: plain_loop(args.run, files))
        ours_s, result = best_of(args.repeat, lambda: kb.predict(args.run, [tmp], top_k=1, batch_size=BATCH))
    agree = float(np.mean(np.argmax(expected, -1) == result["class_ids"]))  # type: ignore[index]
    figures = {
        "images": args.images,
        "plain_loop_images_per_s": round(args.images / loop_s, 1),
        "kbuilder_predict_images_per_s": round(args.images / ours_s, 1),
        "ratio_loop_over_kbuilder": round(ours_s / loop_s, 3),
        "top1_agreement": agree,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

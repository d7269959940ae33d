"""Utilization in every run: the peak (measured and cached, or a GPU's published figure), the
achieved training FLOP/s in metrics.json and the summary line (issue 19)."""

from __future__ import annotations

import json

import pytest

from kbuilder.train import peak as peak_module
from kbuilder.train.options import TrainResult, summary_lines
from kbuilder.train.peak import Peak, cache_file, machine_peak, measured_peak, published_peak
from kbuilder.train.utilization import training_flops_per_sample, utilization, utilization_line


def test_training_arithmetic_is_six_flops_per_mac():
    # 416,520 MACs (lenet5_modern) x 2 FLOPs x 3 passes, as in issue 19's own figure.
    assert training_flops_per_sample(416_520) == 2_499_120


def test_the_entry_relates_achieved_rate_to_the_peak():
    entry = utilization(1_000_000, 500.0, Peak(1e10, "test"), basis="epochs after the first")
    assert entry["achieved_flop_per_s"] == pytest.approx(6e6 * 500)
    assert entry["fraction_of_peak"] == pytest.approx(0.3)
    assert entry["samples_per_second_from"] == "epochs after the first"
    line = utilization_line(entry)
    assert line is not None and "3.0 GFLOP/s" in line and "30.0%" in line and "10.0 GFLOP/s" in line


def test_no_throughput_gives_no_figures_and_no_line():
    entry = utilization(1000, None, Peak(1e10, "test"), basis="all epochs")
    assert entry["achieved_flop_per_s"] is None and entry["fraction_of_peak"] is None
    assert utilization_line(entry) is None


@pytest.mark.parametrize(
    ("name", "precision", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", "float32", 67.0),
        ("NVIDIA H100 PCIe", "float32", 51.0),
        ("NVIDIA H200", "mixed_bfloat16", 989.0),
        ("NVIDIA A100-SXM4-80GB", "mixed_bfloat16", 312.0),
        ("Tesla T4", "mixed_float16", 65.0),
        ("NVIDIA L4", "float32", 30.3),
    ],
)
def test_known_gpus_have_their_published_figure(name, precision, tflops):
    found = published_peak(name, precision)
    assert found is not None and found.flop_per_s == pytest.approx(tflops * 1e12)
    assert "data sheet" in found.source


def test_an_unknown_gpu_has_no_published_figure():
    assert published_peak("Some Future Accelerator") is None


def test_a_known_gpu_is_not_measured(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(peak_module, "measured_matmul_rate", _fail_if_called)
    found = machine_peak("jax", "gpu: NVIDIA H100 80GB HBM3 x1", accelerator=True)
    assert found.flop_per_s == pytest.approx(67e12)
    assert not cache_file().exists()


def _fail_if_called(*args, **kwargs):
    raise AssertionError("measured although a figure was known or cached")


def test_the_measurement_is_cached_per_machine_and_refreshed_on_request(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(peak_module.REFRESH_ENV, raising=False)
    calls = []
    monkeypatch.setattr(peak_module, "measured_matmul_rate", lambda: calls.append(1) or 5e10)
    first = measured_peak("tensorflow", 2)
    assert first.flop_per_s == 5e10 and len(calls) == 1
    assert cache_file() == tmp_path / "kbuilder" / "peak.json"
    cached = json.loads(cache_file().read_text())
    assert [key for key in cached if "tensorflow | 2 threads" in key]
    for _ in range(peak_module.PEAK_RUNS - 1):  # the first runs each measure again
        assert "cached in" not in measured_peak("tensorflow", 2).source
    assert len(calls) == peak_module.PEAK_RUNS
    again = measured_peak("tensorflow", 2)
    assert again.flop_per_s == 5e10 and len(calls) == peak_module.PEAK_RUNS and "cached in" in again.source
    assert f"on each of {peak_module.PEAK_RUNS} runs" in again.source
    measured_peak("tensorflow", 1)  # another thread count is another key
    assert len(calls) == peak_module.PEAK_RUNS + 1
    monkeypatch.setenv(peak_module.REFRESH_ENV, "1")
    measured_peak("tensorflow", 2)
    assert len(calls) == peak_module.PEAK_RUNS + 2
    monkeypatch.setattr(peak_module, "measured_matmul_rate", lambda: 2e10)  # a busy machine
    assert measured_peak("tensorflow", 2).flop_per_s == 5e10  # the higher figure is kept
    monkeypatch.setattr(peak_module, "measured_matmul_rate", lambda: 9e10)
    assert measured_peak("tensorflow", 2).flop_per_s == 9e10


def test_a_peak_measured_on_a_busy_machine_rises_on_later_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(peak_module.REFRESH_ENV, raising=False)
    readings = iter([1.3e11, 3.0e11, 2.0e11, 2.9e11, 3.02e11, 9e11])  # busy first, then idle
    monkeypatch.setattr(peak_module, "measured_matmul_rate", lambda: next(readings))
    figures = [measured_peak("tensorflow", 2).flop_per_s for _ in range(peak_module.PEAK_RUNS + 2)]
    assert figures == [1.3e11, 3.0e11, 3.0e11, 3.0e11, 3.02e11, 3.02e11, 3.02e11]
    # A cache written before runs were counted holds one run: it is measured again.
    entry = json.loads(cache_file().read_text())
    for value in entry.values():
        del value["runs"]
    cache_file().write_text(json.dumps(entry))
    assert measured_peak("tensorflow", 2).flop_per_s == 9e11


def test_a_damaged_cache_is_measured_again(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(peak_module.REFRESH_ENV, raising=False)
    cache_file().parent.mkdir(parents=True)
    cache_file().write_text("{not json")
    monkeypatch.setattr(peak_module, "measured_matmul_rate", lambda: 7e9)
    assert measured_peak("tensorflow", 2).flop_per_s == 7e9
    assert json.loads(cache_file().read_text())  # rewritten whole


@pytest.mark.slow  # imports Keras and its backend
def test_a_real_matmul_measures_a_positive_rate():
    rate = peak_module.measured_matmul_rate(n=256, repeats=2)
    assert rate > 1e6  # any CPU does a megaflop per second; the figure itself is the machine's


def test_the_summary_carries_the_utilization_line():
    metrics = {
        "train_seconds": 2.0,
        "epoch_seconds": [1.2, 0.8],
        "samples_per_second_after_first_epoch": 1000.0,
        "backend": "tensorflow",
        "device": "cpu",
        "utilization": utilization(100_000, 1000.0, Peak(1e10, "test"), basis="epochs after the first"),
    }
    lines = summary_lines(TrainResult(run_dir=".", metrics=metrics, history=[]))  # type: ignore[arg-type]
    assert any(line.startswith("utilization: 0.6 GFLOP/s") and "6.0%" in line for line in lines), lines


@pytest.mark.slow
def test_metrics_json_carries_utilization(tmp_path, monkeypatch):
    from kbuilder.spec import load_spec
    from kbuilder.train import TrainOptions, train
    from kbuilder.train.performance import model_macs
    from tests.test_train_support import DATASETS, current_backend, write_spec

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = write_spec(tmp_path)
    result = train(
        load_spec(spec, overrides=["train.epochs=2"]),
        TrainOptions(
            data_dir=DATASETS, out=tmp_path / "out", backend=current_backend(), verbose=0, export=False
        ),
    )
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    entry = metrics["utilization"]
    # tiny_mlp: 784*32 + 32*10 MACs a sample, the layer table's figure.
    assert entry["macs_per_sample"] == 784 * 32 + 32 * 10
    import keras

    assert model_macs(keras.saving.load_model(result.run_dir / "last.keras")) == entry["macs_per_sample"]
    assert entry["samples_per_second"] == metrics["samples_per_second_after_first_epoch"]
    assert entry["achieved_flop_per_s"] == pytest.approx(
        6 * entry["macs_per_sample"] * entry["samples_per_second"]
    )
    assert entry["fraction_of_peak"] == pytest.approx(
        entry["achieved_flop_per_s"] / entry["peak_flop_per_s"], rel=1e-3
    )
    assert 0 < entry["fraction_of_peak"] < 1.5  # a fraction of a measured peak (noise allows a little over 1)
    assert (tmp_path / "cache" / "kbuilder" / "peak.json").is_file()  # measured once, kept
    assert any(line.startswith("utilization:") for line in summary_lines(result))

"""Scale-out for real on a CPU: two replicas in one process (TensorFlow's MirroredStrategy over a
CPU split in two, JAX's DataParallel over two host devices), two worker processes on loopback in
lockstep (JAX + gloo); and the JAX path needs no TensorFlow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_support import DATASETS, current_backend, write_spec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from tests.test_train_cli import cli_main; sys.exit(cli_main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    env.pop("KERAS_BACKEND", None)
    return env


@pytest.mark.subprocess
def test_two_workers_train_in_lockstep(tmp_path):
    spec = write_spec(tmp_path)
    port = _free_port()
    common = [
        "train",
        str(spec),
        "--backend",
        "jax",
        "--data-dir",
        str(DATASETS),
        "--no-export",
        "--quiet",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        "2",
        "--epochs",
        "2",
        "--set",
        "train.data.limit=1024",
        "--set",
        "train.data.test_limit=256",
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLI, *common, "--process-id", str(i), "--out", str(tmp_path / f"w{i}")],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=300)[0])
        finally:
            if worker.poll() is None:
                worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    histories = [json.loads((tmp_path / f"w{i}" / "history.json").read_text()) for i in range(2)]
    metrics = [json.loads((tmp_path / f"w{i}" / "metrics.json").read_text()) for i in range(2)]
    assert [r["loss"] for r in histories[0]] == [r["loss"] for r in histories[1]]
    assert histories[0][-1]["loss"] < histories[0][0]["loss"]
    assert metrics[0]["settings"]["processes"] == 2 and metrics[0]["settings"]["replicas"] == 2
    assert metrics[0]["settings"]["distribution"] == "data_parallel"
    assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"]


TWO_CPU_DEVICES = """
import sys
if sys.argv[1] == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.test_train_cli import cli_main
sys.exit(cli_main(sys.argv[2:]))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("backend", "strategy", "spe"), [("tensorflow", "mirrored", "auto"), ("jax", "data_parallel", 8)]
)
def test_two_replicas_on_one_machine(tmp_path, backend, strategy, spe):
    spec = write_spec(tmp_path)
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            TWO_CPU_DEVICES,
            backend,
            "train",
            str(spec),
            "--backend",
            backend,
            "--data-dir",
            str(DATASETS),
            "--no-export",
            "--quiet",
            "--json",
            "--out",
            str(tmp_path / "run"),
            "--set",
            f"train.distribute.strategy={strategy}",
            "--set",
            f"train.performance.steps_per_execution={spe}",
            "--epochs",
            "2",
        ],
        cwd=REPO,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert metrics["settings"]["distribution"] == strategy and metrics["settings"]["replicas"] == 2
    assert history[-1]["loss"] < history[0]["loss"]
    assert metrics["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    ("setting", "backend", "distribution", "says"),
    [
        ("jit_compile=true", None, "mirrored", "mirrored"),
        ("steps_per_execution=8", None, "mirrored", "mirrored"),
        ("steps_per_execution=8", "torch", "none", "torch backend"),
    ],
)
def test_settings_keras_cannot_run_are_refused_before_training(setting, backend, distribution, says):
    from kbuilder.errors import UsageError
    from kbuilder.spec.train import PerformanceSpec
    from kbuilder.train import performance

    key, value = setting.split("=")
    perf = PerformanceSpec.model_validate({key: True if value == "true" else int(value)})
    with pytest.raises(UsageError, match=f"{key}.*{says}"):
        performance.resolve(
            perf,
            backend=backend or current_backend(),
            distribution=distribution,
            has_augment=False,
            multi_process=False,
        )


NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # as on a GPU machine that has JAX only
from kbuilder.spec import load_spec
from kbuilder.train import TrainOptions, train
result = train(load_spec(sys.argv[1], overrides=["train.epochs=2"]),
               TrainOptions(data_dir=sys.argv[2], out=sys.argv[3], backend="jax", verbose=0))
import json
print(json.dumps({"losses": [r["loss"] for r in result.history], "settings": result.metrics["settings"],
                  "export": result.metrics["export"], "tf": sys.modules.get("tensorflow") is not None}))
"""


@pytest.mark.subprocess
def test_the_jax_backend_trains_without_tensorflow(tmp_path):
    spec = write_spec(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, str(spec), str(DATASETS), str(tmp_path / "run")],
        cwd=REPO,
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["settings"]["pipeline"] == "numpy" and report["settings"]["backend"] == "jax"
    assert report["export"].startswith("skipped") and not report["tf"]
    assert report["losses"][-1] < report["losses"][0]
    for name in ("best.keras", "last.keras", "metrics.json", "history.csv", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name

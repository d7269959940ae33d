"""Ctrl-C in `kbuilder train`: a short message, exit code 130 (as shells expect of SIGINT),
and the same command then resumes the run."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.test_crash_kill import TRAIN, _command, _env, _wait_for
from tests.test_train_support import write_spec


def _train_command(spec, out) -> list[str]:
    """The crash tests' command, printing text (the epoch lines this test reads), not JSON."""
    return [arg for arg in _command(spec, out) if arg != "--json"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path):
    spec = write_spec(tmp_path, train=TRAIN)
    out = tmp_path / "run"
    command = _train_command(spec, out)
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        saved = out / "backup" / "training_metadata.json"
        _wait_for(lambda: saved.is_file(), "the first epoch's backup", process)
        process.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command to resume" in stderr, stderr
    assert "failed" not in stderr and "--debug" not in stderr and "Traceback" not in stderr, stderr
    assert stdout.startswith("Epoch 1/"), stdout
    assert not (out / ".kbuilder-lock").exists()

    again = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] >= 1 and metrics["epochs_run"] == metrics["epochs"]


def test_the_message_names_the_run_directory_when_the_command_chose_it(tmp_path):
    """Without --out the same command would start a new run directory: the message says
    which --out resumes this one."""
    from types import SimpleNamespace

    from kbuilder.train.fit import interrupted_message

    run_dir = SimpleNamespace(path=tmp_path / "runs" / "m-1", resume_epoch=lambda: 3)

    def run(out, run_dir=run_dir):
        return SimpleNamespace(
            run_dir=run_dir, options=SimpleNamespace(out=out), train_spec=SimpleNamespace(epochs=10)
        )

    assert (
        interrupted_message(run(tmp_path))
        == "interrupted (epoch 3 of 10 saved); run the same command to resume"
    )
    assert interrupted_message(run(None)) == (
        f"interrupted (epoch 3 of 10 saved); run the same command with --out {tmp_path / 'runs' / 'm-1'} to resume"
    )
    nothing = SimpleNamespace(path=tmp_path, resume_epoch=lambda: None)
    assert interrupted_message(run(tmp_path, nothing)).endswith(
        "(no epoch finished); run the same command to start again"
    )


@pytest.mark.subprocess
def test_ctrl_c_while_the_command_starts_exits_130_without_a_traceback():
    """Ctrl-C during the CLI's start-up imports (as early as a user can press it) is noted and
    answered once `main` runs: the message and exit 130, not a traceback from an import."""
    import sys

    from tests.test_train_support import REPO_ROOT

    script = (
        "import signal, sys\n"
        "import kbuilder.cli\n"
        "signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C while the CLI imports\n"
        "from kbuilder.cli.app import main\n"
        f"sys.exit(main(['validate', {str(REPO_ROOT / 'specs' / 'lenet5.yaml')!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and "run the same command" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "valid" not in done.stdout, (done.stdout, done.stderr)


# What SQLAlchemy does with an exception raised while a garbage-collected connection is reset:
# it logs it with its traceback on a logger without a handler (Python's last resort). Run in a
# process of its own: pytest puts its own handlers on the root logger.
LOG_LIKE_SQLALCHEMY = """
import logging, sys
from kbuilder.errors import quiet_logged_ctrl_c
if sys.argv[1] == "quiet":
    quiet_logged_ctrl_c()
    quiet_logged_ctrl_c()  # once is enough: a second call adds nothing
for exception in (KeyboardInterrupt(), OSError("disk full")):
    try:
        raise exception
    except BaseException:
        logging.getLogger("sqlalchemy.pool.impl.QueuePool").error("reset failed", exc_info=True)
"""


def _logged(mode: str, debug: bool) -> str:
    import os
    import sys

    env = {key: value for key, value in os.environ.items() if key != "KBUILDER_DEBUG"}
    if debug:
        env["KBUILDER_DEBUG"] = "1"
    command = [sys.executable, "-c", LOG_LIKE_SQLALCHEMY, mode]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True).stderr


def test_a_ctrl_c_a_library_logs_shows_no_traceback():
    assert _logged("plain", debug=False).count("Traceback") == 2  # what Python does on its own
    quiet = _logged("quiet", debug=False)
    assert quiet.count("Traceback") == 1 and "KeyboardInterrupt" not in quiet
    assert "OSError: disk full" in quiet  # any other error is still shown
    assert _logged("quiet", debug=True).count("KeyboardInterrupt") == 1

"""Publishing an export never loses data: a foreign folder is never replaced, the swap has no
moment where DIR is missing, stale staging folders of killed exports are cleaned, a SIGKILL
midway leaves the previous export loadable, and a full disk says what happened."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import keras
import pytest

from kbuilder.errors import RuntimeFailure, UsageError
from kbuilder.export import export_model
from kbuilder.storage import swap as export_atomic
from tests.conftest import REPO
from tests.test_export import leftovers, snapshot, two_input_model

pytestmark = pytest.mark.slow


@pytest.fixture()
def previous(tmp_path):
    target = tmp_path / "export"
    export_model(two_input_model(), target, manifest={"version": 1}, check=False)
    return target


def test_a_foreign_manifest_is_not_an_export(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"name": "my web app", "files": ["a.js"]}))
    (folder / "a.js").write_text("precious")
    with pytest.raises(UsageError, match="not a kbuilder export manifest"):
        export_model(two_input_model(), folder, manifest={})
    assert (folder / "a.js").read_text() == "precious"


def test_an_export_with_added_or_changed_files_is_not_replaced(previous):
    (previous / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"holds files its manifest.json does not list \(notes.txt\)"):
        export_model(two_input_model(), previous, manifest={})
    (previous / "notes.txt").unlink()
    (previous / "model.keras").write_bytes(b"edited")
    with pytest.raises(UsageError, match="model.keras is missing or differs from its hash"):
        export_model(two_input_model(), previous, manifest={})
    assert (previous / "model.keras").read_bytes() == b"edited"


def test_the_swap_exchanges_in_one_step(previous, monkeypatch):
    """renameat2(RENAME_EXCHANGE): DIR is never missing, so no rename may leave it absent."""
    exchange = export_atomic._renameat2() is not None
    assert exchange or sys.platform != "linux"  # glibc >= 2.28 has it on every current Linux
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (renames.append((a, b)), real_rename(a, b)))
    export_model(two_input_model(), previous, manifest={"version": 2}, check=False)
    assert (renames == []) is exchange  # no rename of DIR away: the exchange did it
    assert json.loads((previous / "manifest.json").read_text())["version"] == 2
    assert leftovers(previous.parent) == []


def test_the_fallback_swap_when_the_exchange_is_unsupported(previous, monkeypatch):
    monkeypatch.setattr(export_atomic, "_exchange", lambda a, b: False)
    export_model(two_input_model(), previous, manifest={"version": 2}, check=False)
    assert json.loads((previous / "manifest.json").read_text())["version"] == 2
    assert leftovers(previous.parent) == []


@pytest.mark.subprocess
def test_stale_staging_folders_of_dead_exports_are_removed(previous):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    stale = [
        previous.with_name(f"export.tmp-{dead_pid}-0123abcd"),
        previous.with_name(f"export.old-{dead_pid}-89abcdef"),
    ]
    alive = previous.with_name(f"export.tmp-{os.getppid()}-00000000")  # a running export's
    unrelated = previous.with_name("export.tmp-mine")
    for folder in (*stale, alive, unrelated):
        folder.mkdir()
        (folder / "x").write_text("x")
    export_model(two_input_model(), previous, manifest={"version": 2}, check=False)
    assert not any(folder.exists() for folder in stale)
    assert alive.exists() and unrelated.exists()


@pytest.mark.subprocess
def test_a_previous_export_left_aside_by_a_killed_fallback_swap_is_put_back(previous, tmp_path):
    """Killed between the fallback's two renames: DIR is missing, DIR.old-<dead pid>-* holds
    the previous export. The next run restores it rather than deleting it."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    before = snapshot(previous)
    previous.rename(previous.with_name(f"export.old-{int(dead.stdout)}-0123abcd"))
    assert export_atomic.remove_stale_siblings(previous) == []
    assert snapshot(previous) == before and leftovers(tmp_path) == []


KILLED_EXPORT = """
import sys, time, keras
from kbuilder import export
from tests.test_export import two_input_model
real = export._write_manifest
def slow(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(60)  # killed here: every file is written, nothing is published yet
    real(*args, **kwargs)
export._write_manifest = slow
export.export_model(two_input_model(), sys.argv[1], manifest={"version": 2}, check=False)
"""


@pytest.mark.subprocess
def test_sigkill_midway_leaves_the_previous_export_intact_and_loadable(previous):
    before = snapshot(previous)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(previous)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        staging = [p for p in previous.parent.iterdir() if ".tmp-" in p.name]
        assert len(staging) == 1 and (staging[0] / "model.keras").exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert snapshot(previous) == before
    keras.saving.load_model(previous / "model.keras", safe_mode=True)
    # The next export removes the dead process's staging folder and replaces the export.
    export_model(two_input_model(), previous, manifest={"version": 3}, check=False)
    assert json.loads((previous / "manifest.json").read_text())["version"] == 3
    assert leftovers(previous.parent) == []


def test_a_full_disk_keeps_the_last_good_export_and_says_so(previous, monkeypatch):
    before = snapshot(previous)
    model = two_input_model()

    def disk_full(path, **kwargs):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "export", disk_full)
    with pytest.raises(
        RuntimeFailure, match=r"no space left on the device .* previous export, if any, is unchanged"
    ):
        export_model(model, previous, manifest={"version": 2})
    assert snapshot(previous) == before and leftovers(previous.parent) == []

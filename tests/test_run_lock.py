"""The run directory's lock: one writer at a time, and no lock file left once the writer lets go."""

from __future__ import annotations

import os

import pytest

from kbuilder.errors import UsageError
from kbuilder.storage.lock import LOCK_FILE, RunLock


def test_releasing_removes_the_lock_file(tmp_path):
    lock = RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    assert not lock.held


def test_a_second_writer_is_refused_while_the_first_holds_it(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(UsageError, match=f"process {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire().release()


def test_a_lock_on_a_file_removed_meanwhile_is_taken_again(tmp_path, monkeypatch):
    """The owner removes the file as it finishes: a process that opened it just before
    would lock a file no longer at the path, so it checks and locks the new one."""
    lock = RunLock(tmp_path)
    real = lock._open_and_lock
    opened = []

    def open_then_owner_finishes():
        fd = real()
        opened.append(fd)
        if len(opened) == 1:
            (tmp_path / LOCK_FILE).unlink()  # what the finishing owner does
        return fd

    monkeypatch.setattr(lock, "_open_and_lock", open_then_owner_finishes)
    lock.acquire()
    assert len(opened) == 2 and lock.held
    assert os.fstat(opened[1]).st_ino == os.stat(tmp_path / LOCK_FILE).st_ino
    lock.release()

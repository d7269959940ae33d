"""The study's database: which URLs are taken, opening it safely, and losing it mid-study.

- `sqlite://` (an in-memory database) is refused: it lives inside one process, so the workers,
  Optuna's heartbeat thread and the report would each see an empty database of their own, and
  the study would end with the command.
- `postgresql://user@host/db` (no driver named) uses the PostgreSQL driver that is installed:
  psycopg (3), which SQLAlchemy 2.1 picks by default, else psycopg2.
- Creating the tables of a new database is a race when several `kbuilder tune` start at once
  (Optuna stamps `alembic_version` once per database): on SQLite the storage is opened under
  a lock file beside the database; on a server a losing process opens it again.
- A database that stops answering mid-study (server stopped, network lost) ends the command
  with one message saying what was kept and how to resume, never the workers' tracebacks.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url

from kbuilder.errors import RuntimeFailure, UsageError

# A worker that lost the database exits with this code, silently: the tuner says it once.
STORAGE_LOST_EXIT = 75  # EX_TEMPFAIL
_DRIVERS = (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2"))


def shown_url(url: str) -> str:
    """The storage URL without its password (for messages and reports)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (a malformed URL is shown up to its scheme only)
        return url.split("://", 1)[0] + "://..."


def storage_url(url: str) -> str:
    """The URL SQLAlchemy is given: refuses in-memory SQLite, names the PostgreSQL driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001  (SQLAlchemy's ArgumentError, ValueError)
        raise UsageError(f"--storage {url.split('://', 1)[0]}://...: not a database URL ({exc})") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise UsageError(
            f"--storage {url}: an in-memory SQLite database lives inside one process (the workers, the "
            "heartbeats and the report would each see an empty one) and ends with the command; give a "
            "file, e.g. sqlite:///study.db, or leave --storage out (the study folder's study.db)"
        )
    if parsed.drivername == "postgresql":
        for module, driver in _DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return parsed.set(drivername=driver).render_as_string(hide_password=False)
        raise UsageError(
            f"--storage {shown_url(url)} needs a PostgreSQL driver: pip install 'kbuilder[postgres]' (psycopg)"
        )
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """An exclusive flock beside a SQLite file while its tables are created (a no-op on servers)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        yield
        return
    lock_path = Path(parsed.database).with_name(Path(parsed.database).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def open_storage(url: str, heartbeat: int) -> RDBStorage:
    """Optuna's RDB storage with heartbeats and retries of trials whose worker died."""
    url = storage_url(url)
    # SQLite serializes writers; several worker processes wait for the lock instead of failing.
    # A server's connections are shared by every worker of every machine: a worker needs one for
    # its trial and one for its heartbeat, so its pool stays small (SQLAlchemy's default allows 15).
    engine_kwargs = (
        {"connect_args": {"timeout": 300}}
        if url.startswith("sqlite")
        else {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 3}
    )
    for attempt in range(3):
        try:
            with _creation_lock(url):
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat,
                    grace_period=3 * heartbeat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except sqlalchemy.exc.DBAPIError as exc:
            # Another process created the same new database's tables first (a server has no
            # lock file): they exist now, so opening again finds them.
            if attempt < 2 and _lost_creation_race(exc):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise UsageError(
                f"cannot open the study storage {shown_url(url)}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        except Exception as exc:  # noqa: BLE001  (drivers and SQLAlchemy raise many types)
            raise UsageError(
                f"cannot open the study storage {shown_url(url)}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _lost_creation_race(exc: sqlalchemy.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in text or "duplicate" in text


def is_storage_lost(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) is the database not answering."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class StorageLost(RuntimeFailure):
    """The study's database stopped answering (exit 3 like any runtime failure)."""


def storage_lost(url: str, study_dir: str, exc: BaseException | None = None) -> StorageLost:
    """The one message of a study whose database stopped answering."""
    cause = ""
    while exc is not None and not isinstance(exc, sqlalchemy.exc.DBAPIError):
        exc = exc.__cause__ or exc.__context__
    original = getattr(exc, "orig", None)
    if isinstance(original, BaseException):
        cause = f" ({_first_line(original)})"
    return StorageLost(
        f"the study database {shown_url(url)} stopped answering{cause}. Kept: every trial it recorded as "
        f"finished, and each trial's run directory in {Path(study_dir) / 'trials'}; the trials that were "
        "running are failed and retried with the same values when the study resumes. Once the database "
        "answers again, run the same command to continue the study"
    )


class _NoStorageFallbackNote(logging.Filter):
    """Optuna logs a warning with the SQL when a query fails and it retries another way; when
    the database is gone the worker's loop says so once, in words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Caught an error from sqlalchemy" not in record.getMessage()


def quiet_storage_thread_errors() -> None:
    """Optuna's heartbeat thread dies with a traceback when the database goes away, and its
    storage logs the failed SQL; the worker's own loop reports it once instead."""
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoStorageFallbackNote) for f in handler.filters):
            handler.addFilter(_NoStorageFallbackNote())
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and is_storage_lost(args.exc_value):
            return
        previous(args)

    threading.excepthook = hook


__all__ = [
    "STORAGE_LOST_EXIT",
    "StorageLost",
    "is_storage_lost",
    "open_storage",
    "quiet_storage_thread_errors",
    "shown_url",
    "storage_lost",
    "storage_url",
]

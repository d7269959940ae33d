"""Error types shared by every stage, and the exit codes the CLI maps them to.

Exit codes (documented in docs/errors.md):
    0  success
    1  a check failed: the built model differs from the spec's `expect`
    2  invalid spec, invalid data or invalid command-line usage
    3  a runtime failure outside the spec (training diverged, export failed, I/O)
  130  interrupted (Ctrl-C), as shells report a process ended by SIGINT
"""

from __future__ import annotations

import _thread
import difflib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_INVALID = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130


def did_you_mean(word: str, choices, *, cutoff: float = 0.6) -> str:
    """Return ` - did you mean 'x'?` for the closest choice, or '' if none is close."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=cutoff)
    return f" - did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Location:
    """Where something came from: a file position and the spec path inside it."""

    file: str = "<spec>"
    line: int | None = None
    column: int | None = None
    path: str = ""

    def prefix(self) -> str:
        pos = self.file
        if self.line is not None:
            pos += f":{self.line}"
            if self.column is not None:
                pos += f":{self.column}"
        return f"{pos}: {self.path}" if self.path else pos


class KBuilderError(Exception):
    """Base of every error kbuilder reports to a user (never shown with a traceback)."""

    exit_code = EXIT_INVALID
    title = "error"

    def details(self) -> list[str]:
        return [str(self)]


@dataclass
class Problem:
    """One problem at one place: `file:line:col: path: message`."""

    location: Location
    message: str
    context: str = ""  # e.g. "in block 'vgg_block' used at layers[3]"

    def __str__(self) -> str:
        text = f"{self.location.prefix()}: {self.message}"
        return f"{text} ({self.context})" if self.context else text


@dataclass
class SpecError(KBuilderError):
    """The spec is invalid; carries one or more located problems."""

    problems: list[Problem] = field(default_factory=list)
    title = "invalid spec"

    def __post_init__(self):
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    def details(self) -> list[str]:
        return [str(p) for p in self.problems]

    @classmethod
    def at(cls, location: Location, message: str, context: str = "") -> SpecError:
        return cls([Problem(location, message, context)])


class BuildError(SpecError):
    """The spec is well-formed but the model cannot be built (shapes, merges, kernels)."""

    title = "cannot build model"


class ModelTooLarge(BuildError):
    """The model would pass the parameter limit (`--max-params`); refused before allocating."""

    title = "model too large"


class CheckFailed(KBuilderError):
    """The built model differs from the spec's `expect` section."""

    exit_code = EXIT_CHECK_FAILED
    title = "check failed"

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("\n".join(differences))

    def details(self) -> list[str]:
        return list(self.differences)


class UsageError(KBuilderError):
    """Bad command-line usage or a bad file argument."""

    title = "usage error"


class DataError(KBuilderError):
    """Training data is missing or does not fit the model."""

    title = "data error"


class InputError(DataError):
    """An input given to a trained model (`kbuilder predict`) is unreadable or does not fit it."""

    title = "invalid input"


class RuntimeFailure(KBuilderError):
    """Training, export or I/O failed for a reason outside the spec."""

    exit_code = EXIT_RUNTIME
    title = "failed"


# Ctrl-C, noted as well as raised. A KeyboardInterrupt that lands in a library's gc callback or
# finalizer (JAX registers a gc callback) is printed as "Exception ignored" and swallowed; a
# command that runs on (the tuner starting its workers) asks `ctrl_c_pressed()` at its steps.
_CTRL_C = threading.Event()
_RAISES = threading.Event()  # clear while the CLI imports its modules: Ctrl-C is only noted
_WAITING = threading.Event()  # a Ctrl-C waits for the main thread to leave an import


def _on_ctrl_c(signum, frame) -> None:
    _CTRL_C.set()
    if not _RAISES.is_set():
        return
    if _inside_import(frame):  # a module half-imported (TensorFlow's, JAX's) may crash the exit
        _raise_after_import()
        return
    raise KeyboardInterrupt


def _inside_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise_after_import() -> None:
    """Interrupt the main thread again as soon as it is out of the import it is in."""
    if _WAITING.is_set():
        return
    _WAITING.set()
    main = threading.main_thread().ident

    def wait() -> None:
        try:
            while True:
                time.sleep(0.02)
                frame = sys._current_frames().get(main or 0)
                if frame is None:
                    return  # the main thread has ended
                if not _inside_import(frame):
                    break
        finally:
            _WAITING.clear()
        _thread.interrupt_main()  # runs _on_ctrl_c in the main thread, now outside the import

    threading.Thread(target=wait, name="kbuilder-ctrl-c", daemon=True).start()


def _quiet_swallowed_ctrl_c(info) -> None:
    """The swallowed KeyboardInterrupt is not an error to print with its traceback: the flag
    carries it on."""
    if isinstance(info.exc_value, KeyboardInterrupt) and _CTRL_C.is_set():
        return
    sys.__unraisablehook__(info)


def debugging() -> bool:
    """--debug or KBUILDER_DEBUG=1: tracebacks and libraries' own messages are shown."""
    return os.environ.get("KBUILDER_DEBUG", "").lower() not in ("", "0", "false", "no")


class _DropLoggedCtrlC(logging.Filter):
    """A library that catches everything while it cleans up (SQLAlchemy returning a pooled
    connection from a garbage-collection callback) logs the KeyboardInterrupt that landed there
    as an error, with its traceback, through Python's last-resort handler, then lets it go on.
    That Ctrl-C is the one kbuilder reports in its own last line; with --debug it is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debugging():
            return True
        return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def quiet_logged_ctrl_c() -> None:
    """Drop Ctrl-C's tracebacks from the records of loggers that have no handler of their own."""
    last_resort = logging.lastResort
    if last_resort is not None and not any(isinstance(f, _DropLoggedCtrlC) for f in last_resort.filters):
        last_resort.addFilter(_DropLoggedCtrlC())


def note_ctrl_c(*, raise_now: bool = True) -> None:
    """Make Ctrl-C set the flag `ctrl_c_pressed()` reads, and raise KeyboardInterrupt as Python
    does unless `raise_now` is false (from the main thread; elsewhere a signal handler cannot
    be set). The CLI's package calls it with `raise_now=False` as it is imported, so Ctrl-C
    during the start-up imports ends the command with its message (exit 130), not a traceback
    from the middle of an import; its `main` then turns raising on."""
    if raise_now:
        _RAISES.set()
    else:
        _RAISES.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_ctrl_c)
        sys.unraisablehook = _quiet_swallowed_ctrl_c
    quiet_logged_ctrl_c()


def ctrl_c_pressed() -> bool:
    return _CTRL_C.is_set()


def forget_ctrl_c() -> None:
    """For a process that goes on after handling a Ctrl-C (a test calling the CLI again)."""
    _CTRL_C.clear()


class Interrupted(KBuilderError):
    """The user pressed Ctrl-C; the message says what was kept and how to go on."""

    exit_code = EXIT_INTERRUPTED
    title = "interrupted"

    def __init__(self, message: str = "interrupted"):
        super().__init__(message)

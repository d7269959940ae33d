"""Error types shared by every stage, and the exit codes the CLI maps them to.

Exit codes (documented in docs/errors.md):
    0  success
    1  a check failed: the built model differs from the spec's `expect`
    2  invalid spec, invalid data or invalid command-line usage
    3  a runtime failure outside the spec (training diverged, export failed, I/O)
  130  interrupted (Ctrl-C), as shells report a process ended by SIGINT
"""

from __future__ import annotations

import difflib
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


class RuntimeFailure(KBuilderError):
    """Training, export or I/O failed for a reason outside the spec."""

    exit_code = EXIT_RUNTIME
    title = "failed"


class Interrupted(KBuilderError):
    """The user pressed Ctrl-C; the message says what was kept and how to go on."""

    exit_code = EXIT_INTERRUPTED
    title = "interrupted"

    def __init__(self, message: str = "interrupted"):
        super().__init__(message)

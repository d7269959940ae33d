"""What a running study shows on stderr: a line per finished trial and, while trials run, each
one's values and its epochs as they pass.

The figures come from the study's storage (each trial writes its `progress` there after every
epoch), so the tuner shows its worker processes' trials as it shows its own. On a terminal the
running trials are one line each, redrawn in place under the finished ones; piped, every new
epoch is a plain line of its own.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from kbuilder.experiments.tune.report import short, trial_line
from kbuilder.experiments.tune.study import count_trials
from kbuilder.spec.search import SearchSpec

# Cursor up to the start of the line N lines above, and clear to the end of the screen (ANSI).
UP, CLEAR = "\x1b[{}F", "\x1b[J"


def running_line(trial: Any, search: SearchSpec) -> str:
    """`trial 3 epoch 2/10 val_accuracy=0.9312 loss=0.2210 | lr=0.0123 width=256`."""
    values = " ".join(f"{key}={short(v)}" for key, v in trial.params.items())
    values = f" | {values}" if values else ""  # none yet: the trial was created, not yet sampled
    progress = dict(trial.user_attrs.get("progress") or {})
    if not progress:
        return f"trial {trial.number} starting{values}"
    epoch, epochs = progress.pop("epoch", "?"), progress.pop("epochs", "?")
    order = sorted(progress, key=lambda k: (k != search.metric, k.startswith("val_"), k))
    figures = " ".join(f"{key}={short(progress[key])}" for key in order)
    return f"trial {trial.number} epoch {epoch}/{epochs} {figures}{values}"


class Progress:
    """Finished trials as lines, in the order the study sees them; running ones as they go."""

    def __init__(
        self,
        search: SearchSpec,
        target: int,
        stream: TextIO | None = None,
        enabled: bool = True,
        live: bool | None = None,
    ):
        self.search, self.target = search, target
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = self.stream.isatty() if live is None else live
        self.seen: set[int] = set()
        self.shown: dict[int, str] = {}  # running trial -> its line as last written (piped)
        self.drawn = 0  # running lines on the screen under the finished ones (terminal)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:  # an Optuna callback
        self.poll(study)

    def poll(self, study: optuna.Study) -> None:
        if not self.enabled:
            self.seen.update(t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished())
            return
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        finished = [
            t
            for t in trials
            if t.state.is_finished() and t.number not in self.seen and not t.user_attrs.get("surplus")
        ]
        running = [t for t in trials if t.state == TrialState.RUNNING and not t.user_attrs.get("surplus")]
        done = count_trials(study).done if finished else 0
        lines = [f"[{done}/{self.target}] {trial_line(t, self.search)}" for t in finished]
        self.seen.update(t.number for t in finished)
        if self.live:
            self._redraw(lines, [running_line(t, self.search) for t in running])
        else:
            self._append(lines, running)

    def finish(self) -> None:
        """Take the running lines off the screen (the study stopped)."""
        if self.live and self.drawn:
            self.stream.write(UP.format(self.drawn) + CLEAR)
            self.stream.flush()
            self.drawn = 0

    def _redraw(self, finished: list[str], running: list[str]) -> None:
        width = shutil.get_terminal_size().columns
        text = UP.format(self.drawn) + CLEAR if self.drawn else ""
        text += "".join(f"{line}\n" for line in finished)
        text += "".join(f"{_cut(line, width)}\n" for line in running)  # one screen line each
        self.drawn = len(running)
        self.stream.write(text)
        self.stream.flush()

    def _append(self, finished: list[str], running: list[Any]) -> None:
        lines = list(finished)
        for trial in running:
            line = running_line(trial, self.search)
            if self.shown.get(trial.number) != line:
                self.shown[trial.number] = line
                lines.append(line)
        if lines:
            self.stream.write("".join(f"{line}\n" for line in lines))
            self.stream.flush()


def _cut(line: str, width: int) -> str:
    return line if len(line) < width else line[: max(1, width - 2)] + "…"

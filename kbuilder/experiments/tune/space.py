"""The search space on Optuna: one suggestion per searched path, the samplers and the pruners.

`coarse_to_fine` is a sampler of ours on Optuna's interface (the engine still stores every
trial): round 0 samples the whole space at random; each later round samples at random inside
intervals narrowed around the best trials finished so far:
  - the best quarter of the finished trials (at least 2) are kept;
  - a number's interval becomes the span of their values widened by 10% of the declared range
    on each side (in log space for a log scale), clipped to the declared range;
  - a choice keeps only the values those trials used.
The round and the intervals it used are stored on each trial (user attributes) and reported.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from kbuilder.errors import UsageError
from kbuilder.spec.search import (
    GRID_LIMIT,
    Choice,
    FloatRange,
    IntRange,
    SearchSpec,
    describe_count,
    grid_values,
)

KEEP_FRACTION = 0.25
MARGIN = 0.10


def suggest(trial: optuna.Trial, search: SearchSpec) -> dict[str, Any]:
    """Sample every searched path for this trial (the path is the Optuna parameter name)."""
    values: dict[str, Any] = {}
    for key, param in search.space.items():
        if isinstance(param, FloatRange):
            low, high = param.bounds()
            values[key] = trial.suggest_float(key, low, high, log=param.log, step=param.step)
        elif isinstance(param, IntRange):
            low, high = param.bounds()
            values[key] = trial.suggest_int(key, low, high, log=param.log, step=param.step)
        else:
            values[key] = trial.suggest_categorical(key, list(param.choice))
    return values


def grid_space(search: SearchSpec) -> dict[str, list]:
    size = search.grid_size()
    if size is not None and size > GRID_LIMIT:  # `validate` refuses it first; never enumerate it here
        raise UsageError(f"the grid has {describe_count(size)} points; at most {GRID_LIMIT:,} can be tried")
    space = {}
    for key, param in search.space.items():
        values = grid_values(param)
        if values is None:
            raise UsageError(
                f"search.space.{key}: the grid sampler needs discrete values (a choice, or a range with a step)"
            )
        space[key] = values
    return space


def make_pruner(search: SearchSpec, epochs: int = 10) -> optuna.pruners.BasePruner:
    if search.pruner == "median":
        # A trial below the median of the earlier trials at the same epoch stops, but not before
        # a quarter of the trials (2 to 5) finished, nor in its first third of the epochs (at
        # least 2): early epochs rank learning rates by speed, not by where they end up.
        startup = min(5, max(2, search.trial_count() // 4))
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=max(2, epochs // 3) + 1)
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 4), reduction_factor=3)
    return optuna.pruners.NopPruner()


def make_sampler(search: SearchSpec) -> optuna.samplers.BaseSampler:
    return TrialSeeded(search)


def _base_sampler(search: SearchSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    if search.sampler == "grid":
        # The grid's order must be the same in every worker (trial n takes point n), so its
        # seed is the study's, never the trial's.
        return optuna.samplers.GridSampler(grid_space(search), seed=search.seed or 0)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "coarse_to_fine":
        return CoarseToFineSampler(search, seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, search.trial_count() // 3)))


class TrialSeeded(optuna.samplers.BaseSampler):
    """The chosen sampler, made afresh for each trial with a seed of (search seed, trial number).

    Every worker holds its own sampler; seeded once, two workers would draw the same values.
    These samplers keep no state but their random generator (TPE and the others read the
    finished trials from the storage), so one per trial loses nothing, and a study's draws
    depend only on its seed and the trial numbers, whichever worker runs them."""

    def __init__(self, search: SearchSpec):
        self.search = search
        self._number: int | None = None
        self._inner: optuna.samplers.BaseSampler | None = None

    def inner(self, number: int) -> optuna.samplers.BaseSampler:
        if number != self._number or self._inner is None:
            seed = None if self.search.seed is None else (self.search.seed * 1_000_003 + number) % (2**31 - 1)
            self._number, self._inner = number, _base_sampler(self.search, seed)
        return self._inner

    def infer_relative_search_space(self, study, trial):
        return self.inner(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner(trial.number).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner(trial.number).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.inner(trial.number).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.inner(trial.number).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        if self._inner is not None:
            self._inner.reseed_rng()


class CoarseToFineSampler(optuna.samplers.BaseSampler):
    """Random sampling inside intervals that narrow round by round (see the module docstring)."""

    def __init__(self, search: SearchSpec, seed: int | None):
        self.search = search
        self.per_round = math.ceil(search.trial_count() / search.rounds)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._chosen: dict[int, dict[str, Any]] = {}

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def round_of(self, number: int) -> int:
        return min(number // self.per_round, self.search.rounds - 1)

    def trial_intervals(self, study, number: int) -> dict[str, Any]:
        """The intervals of this trial's round, fixed at its first parameter (then cached)."""
        if number not in self._chosen:
            self._chosen[number] = self.intervals(study, self.round_of(number))
        return self._chosen[number]

    def sample_independent(self, study, trial, param_name, param_distribution):
        narrowed = self.trial_intervals(study, trial.number).get(param_name)
        if narrowed is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        if isinstance(param_distribution, CategoricalDistribution):
            return self._random.sample_independent(
                study, trial, param_name, CategoricalDistribution(tuple(narrowed))
            )
        low, high = narrowed
        if isinstance(param_distribution, IntDistribution):
            inner = IntDistribution(
                int(low), int(high), log=param_distribution.log, step=param_distribution.step
            )
        else:
            inner = FloatDistribution(low, high, log=param_distribution.log, step=param_distribution.step)
        return self._random.sample_independent(study, trial, param_name, inner)

    def intervals(self, study, round_index: int) -> dict[str, Any]:
        """Per parameter, [low, high] (numbers) or the kept values (choices); {} in round 0."""
        if round_index == 0:
            return {}
        done = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None
        ]
        if len(done) < 2:
            return {}
        reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
        best = sorted(done, key=lambda t: t.value, reverse=reverse)[
            : max(2, math.ceil(KEEP_FRACTION * len(done)))
        ]
        out: dict[str, Any] = {}
        for key, param in self.search.space.items():
            values = [t.params[key] for t in best if key in t.params]
            if not values:
                continue
            out[key] = _narrow(param, values)
        return out


def _narrow(param, values: list) -> Any:
    if isinstance(param, Choice):
        return [v for v in param.choice if v in values]
    low, high = param.bounds()
    log = bool(param.log)
    scale = (lambda v: math.log(v)) if log else (lambda v: v)
    unscale = (lambda v: math.exp(v)) if log else (lambda v: v)
    margin = MARGIN * (scale(high) - scale(low))
    new_low = max(scale(low), scale(min(values)) - margin)
    new_high = min(scale(high), scale(max(values)) + margin)
    new_low, new_high = max(low, unscale(new_low)), min(high, unscale(new_high))
    step = getattr(param, "step", None)
    if step:
        # Stay on the declared steps (low, low + step, ...), never past the last one.
        last = low + math.floor((high - low) / step + 1e-9) * step
        new_low = low + math.floor((new_low - low) / step + 1e-9) * step
        new_high = min(last, low + math.ceil((new_high - low) / step - 1e-9) * step)
    if isinstance(param, IntRange):
        new_low, new_high = math.floor(new_low), math.ceil(new_high)
    return [new_low, max(new_low, new_high)]

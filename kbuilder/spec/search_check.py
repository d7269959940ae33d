"""The `search` section against the spec it belongs to: located checks, and each trial's spec.

Paths are resolved in the written spec first, then in the resolved one (defaults filled in),
so `train.optimizer.momentum` can be searched even where the file leaves it to its default.
A number between dots indexes a list (`layers.2.dense.units` is `layers[2].dense.units`).
"""

import copy
import difflib
import time
from collections.abc import Callable
from typing import Any

from kbuilder.errors import Location, Problem, SpecError
from kbuilder.spec.loader import PathTuple, SourceMap, format_path
from kbuilder.spec.model import ModelSpec
from kbuilder.spec.overrides import _set_path, parse_override_path
from kbuilder.spec.search import GRID_LIMIT, Choice, IntRange, SearchSpec, describe_count, grid_count


def resolve(node: Any, parts: PathTuple) -> PathTuple | None:
    """The canonical path (list indices as ints) when `parts` exists in `node`, else None."""
    out: list[str | int] = []
    for part in parts:
        if isinstance(node, list):
            index = part if isinstance(part, int) else int(part) if str(part).isdigit() else None
            if index is None or index >= len(node):
                return None
            out.append(index)
            node = node[index]
        elif isinstance(node, dict) and str(part) in node:
            out.append(str(part))
            node = node[str(part)]
        else:
            return None
    return tuple(out)


def _all_paths(node: Any, prefix: PathTuple = ()) -> list[PathTuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _all_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _all_paths(value, prefix + (index,))
    return found


def dotted(path: PathTuple) -> str:
    """`("layers", 1, "dense", "units")` -> `layers.1.dense.units` (how search keys are written)."""
    return ".".join(str(part) for part in path)


def nearest_path(key: str, *trees: Any) -> str:
    """` - did you mean 'x'?` for the closest existing path, or the closest existing prefix."""
    candidates = sorted({dotted(p) for tree in trees for p in _all_paths(tree) if "search" not in p[:1]})
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    return f" - did you mean '{close[0]}'?" if close else ""


def _locate_key(source: SourceMap, section: str, key: str) -> Location:
    return source.locate(("search", section, key))


def _resolve_key(key: str, *trees: Any) -> PathTuple | None:
    parts = parse_override_path(key)
    for tree in trees:
        found = resolve(tree, parts)
        if found is not None:
            return found
    return None


def apply_values(
    data: dict, values: dict[PathTuple, Any], source: SourceMap, label: str
) -> tuple[dict, SourceMap]:
    """A copy of `data` with each path set, without the search section, and a source map whose
    entries for those paths name where the value came from (errors then point there)."""
    data = copy.deepcopy(data)
    data.pop("search", None)
    source = SourceMap(source.file, source.marks, dict(source.overridden))
    for path, value in values.items():
        where = f"{format_path(path)}={value!r} ({label})"
        _set_path(data, path, value, Location(where))
        source.overridden[path] = where
    return data, source


def _with_fixed(data: dict, fixed: dict[str, Any], paths: dict[str, PathTuple]) -> dict:
    out = copy.deepcopy(data)
    for key, value in fixed.items():
        if f"fixed:{key}" in paths:
            try:
                _set_path(out, paths[f"fixed:{key}"], copy.deepcopy(value), Location())
            except SpecError:
                pass  # reported when the trial's spec is validated
    return out


def resolve_keys(
    search: SearchSpec, data: dict, resolved: dict
) -> tuple[dict[str, PathTuple], list[tuple[str, str, str]]]:
    """(key -> canonical path, problems as (section, key, message)) for `fixed` and `space`."""
    paths: dict[str, PathTuple] = {}
    problems: list[tuple[str, str, str]] = []
    trees: tuple = (data, resolved)
    for section, keys in (("fixed", search.fixed), ("space", search.space)):
        if section == "space":  # a fixed value may add paths (a validation split's fraction)
            trees = (_with_fixed(data, search.fixed, paths), data, resolved)
        for key in keys:
            try:
                found = _resolve_key(key, *trees)
            except ValueError as exc:
                problems.append((section, key, f"cannot read the path: {exc}"))
                continue
            if found is None:
                problems.append(
                    (section, key, f"'{key}' is not a path in this spec{nearest_path(key, data, resolved)}")
                )
            else:
                paths[f"{section}:{key}"] = found
    return paths, problems


def check_search(search: SearchSpec, data: dict, source: SourceMap, resolved: dict) -> None:
    """Raise one SpecError with every problem of the section (each at its place in the file)."""
    _, problems = resolve_keys(search, data, resolved)
    located = [Problem(_locate_key(source, section, key), message) for section, key, message in problems]
    if search.sampler == "grid":
        located += _grid_problems(search, source)
    if search.pruner != "none" and search.epoch_metric() is None:
        located.append(
            Problem(
                source.locate(("search", "pruner")),
                f"pruning needs a per-epoch figure; {search.metric} exists only at the end (use a val_* metric)",
            )
        )
    if search.sampler == "coarse_to_fine" and search.trial_count() < 2 * search.rounds:
        located.append(
            Problem(
                source.locate(("search", "rounds")),
                f"{search.rounds} rounds need at least {2 * search.rounds} trials (2 a round), got {search.trial_count()}",
            )
        )
    if located:
        raise SpecError(located)


def _grid_problems(search: SearchSpec, source: SourceMap) -> list[Problem]:
    """The grid's size from each parameter's count (never by listing the points)."""
    counts = {key: grid_count(param) for key, param in search.space.items()}
    located = [
        Problem(
            _locate_key(source, "space", key),
            "the grid sampler needs discrete values: give the float range a step, or use int or choice",
        )
        for key, count in counts.items()
        if count is None
    ]
    size = search.grid_size()
    if size is not None and size > GRID_LIMIT:
        factors = " x ".join(describe_count(count) for count in counts.values() if count is not None)
        factors = f" ({factors})" if len(counts) > 1 else ""
        largest = max(counts, key=lambda key: counts[key] or 0)
        located.append(
            Problem(
                _locate_key(source, "space", largest),
                f"the grid has {describe_count(size)} points{factors}; a grid takes at most "
                f"{GRID_LIMIT:,}: give the ranges a larger step or fewer values, or use sampler: random or tpe",
            )
        )
    elif size is not None and search.trials is not None and search.trials > size:
        located.append(
            Problem(
                source.locate(("search", "trials")),
                f"the grid has {size} points; ask for at most {size} trials",
            )
        )
    return located


# Value checks validate (and, for a model path, expand) a whole spec each: a hostile section
# (64 parameters of 200 values that fail together but not alone) or a large model stops after
# this many checks or seconds, whichever comes first; trials still validate their own spec.
MAX_VALUE_CHECKS = 1000
MAX_VALUE_CHECK_SECONDS = 1.0


# check(data, source, model_changed) raises SpecError when the spec is refused; model_changed
# says whether a set path lies outside `train` (only then the layers need expanding again).
SpecCheck = Callable[[dict, SourceMap, bool], None]


def value_problems(search: SearchSpec, data: dict, source: SourceMap, check: SpecCheck) -> list[Problem]:
    """Every `fixed` value, every `choice` value and both ends of every range, set in the spec
    (with the fixed values in place) and checked by `check` (kbuilder/graph/search_values.py
    expands it), so `validate` refuses what every trial would. Call after check_search passed."""
    resolved = ModelSpec.model_validate(copy.deepcopy(data)).model_dump(mode="json", exclude={"search"})
    paths, _ = resolve_keys(search, data, resolved)
    checker = _ValueChecker(data, source, check)
    fixed = {paths[f"fixed:{key}"]: value for key, value in search.fixed.items()}
    if checker.problems(fixed, "search.fixed"):
        found = [
            _relocated(source, ("search", "fixed", key), value, issues)
            for key, value in search.fixed.items()
            if (issues := checker.problems({paths[f"fixed:{key}"]: value}, "search.fixed"))
        ]
        return found or [
            _relocated(source, ("search", "fixed"), search.fixed, checker.problems(fixed, "search.fixed"))
        ]
    candidates = {key: _candidates(param) for key, param in search.space.items()}
    failed: dict[str, Problem] = {}
    for round_ in range(max(len(values) for values in candidates.values())):
        chosen = {
            key: values[round_]
            for key, values in candidates.items()
            if round_ < len(values) and key not in failed
        }
        values = dict(fixed) | {paths[f"space:{key}"]: value for key, (_, value) in chosen.items()}
        if checker.budget_spent() or not checker.problems(values, "search.space"):
            continue
        for key, (where, value) in chosen.items():
            if checker.budget_spent():
                break
            issues = checker.problems(dict(fixed) | {paths[f"space:{key}"]: value}, "search.space")
            if issues:
                failed[key] = _relocated(source, ("search", "space", key, *where), value, issues)
    return list(failed.values())


def _candidates(param) -> list[tuple[PathTuple, Any]]:
    """(where in the parameter, value): each choice, or a range's two ends (the last step reached)."""
    if isinstance(param, Choice):
        return [(("choice", index), value) for index, value in enumerate(param.choice)]
    low, high = param.bounds()
    name = "int" if isinstance(param, IntRange) else "float"
    count = grid_count(param)
    if count is not None and count < 10**18:
        high = low + (count - 1) * (param.step or 1)
    return [((name, 0), low), ((name, 1), high)]


class _ValueChecker:
    """Checks the spec with some paths set, within MAX_VALUE_CHECKS and MAX_VALUE_CHECK_SECONDS."""

    def __init__(self, data: dict, source: SourceMap, check: SpecCheck) -> None:
        self.data, self.source, self.check, self.spent = data, source, check, 0
        self.deadline = time.monotonic() + MAX_VALUE_CHECK_SECONDS

    def budget_spent(self) -> bool:
        return self.spent >= MAX_VALUE_CHECKS or time.monotonic() > self.deadline

    def problems(self, values: dict[PathTuple, Any], label: str) -> list[str]:
        self.spent += 1
        try:
            data, source = apply_values(self.data, values, self.source, label)
            self.check(data, source, any(path[:1] != ("train",) for path in values))
        except SpecError as exc:
            return [f"{problem.location.path}: {problem.message}".lstrip(": ") for problem in exc.problems]
        return []


def _relocated(source: SourceMap, at: PathTuple, value: Any, issues: list[str]) -> Problem:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return Problem(source.locate(at), f"{shown} is not a value the spec accepts: {'; '.join(issues[:3])}")


def trial_values(
    search: SearchSpec, data: dict, resolved: dict, sampled: dict[str, Any]
) -> dict[PathTuple, Any]:
    """Canonical path -> value for one trial: the fixed values, then the sampled ones."""
    paths, problems = resolve_keys(search, data, resolved)
    if problems:
        section, key, message = problems[0]
        raise SpecError.at(Location(path=f"search.{section}.{key}"), message)
    values = {paths[f"fixed:{key}"]: value for key, value in search.fixed.items()}
    values.update({paths[f"space:{key}"]: value for key, value in sampled.items()})
    return values


def baseline_values(search: SearchSpec, data: dict, resolved: dict) -> dict[str, Any] | None:
    """The spec's own value of every searched path, when each lies in the space; else None."""
    paths, problems = resolve_keys(search, data, resolved)
    if problems:
        return None
    values: dict[str, Any] = {}
    for key, param in search.space.items():
        value = _value_at(data, paths[f"space:{key}"])
        if value is _MISSING:
            value = _value_at(resolved, paths[f"space:{key}"])
        if not _inside(param, value):
            return None
        values[key] = value
    return values


_MISSING = object()


def _value_at(node: Any, path: PathTuple) -> Any:
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _inside(param, value: Any) -> bool:
    if isinstance(param, Choice):
        return value in param.choice
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(param, IntRange) and not isinstance(value, int))
    ):
        return False
    low, high = param.bounds()
    step = param.step
    return low <= value <= high and (
        not step or abs((value - low) / step - round((value - low) / step)) < 1e-9
    )


__all__ = [
    "apply_values",
    "baseline_values",
    "check_search",
    "dotted",
    "nearest_path",
    "resolve",
    "trial_values",
    "value_problems",
]

"""Fuzz kbuilder with mutated copies of every bundled spec (issue 10).

Each case takes a spec from specs/, applies one to four random mutations to its data
(drop, duplicate, retype or rename keys; out-of-range and huge numbers; random layer
kinds; `${...}` expressions; rewiring into cycles and dangling references; random `search`
sections: samplers, huge and tiny ranges, long choices, fixed values), writes it
back as YAML text and validates it (and, with --builds, builds the small ones). Every
case must end in a valid model or in kbuilder's own error whose every line starts with
`file:line:column` - never another exception, never "internal error", never slow.

    python tools/fuzz_specs.py                        # 10,000 validations, 2,000 searches, 300 builds
    python tools/fuzz_specs.py --validations 500 --builds 0 --seed 7

tests/test_fuzz_specs.py drives the same mutations through hypothesis.
"""

from __future__ import annotations

import argparse
import copy
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml

from kbuilder.errors import KBuilderError
from kbuilder.spec.loader import read_yaml

SPEC_FILES = sorted((REPO / "specs").glob("*.yaml"))
# Small enough to build hundreds of times on a laptop CPU.
BUILDABLE = ("xor_mlp", "mnist_mlp", "lenet5", "lenet5_modern", "fashion_cnn", "text_cnn")
SLOW_SECONDS = 5.0
BUILD_MAX_PARAMS = 20_000_000  # fuzzed builds stay small: wider layers are refused, not allocated
LOCATED = re.compile(r"^(--set .*|[^:\n]+:\d+:\d+): ")

NUMBERS = [
    0,
    -1,
    -7,
    1,
    2,
    3,
    0.5,
    -0.5,
    1.5,
    10**6,
    10**7 + 1,
    10**9,
    10**12,
    10**30,
    10**49,
    1e308,
    -1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    2**31,
    2**63,
]
STRINGS = [
    "",
    " ",
    "x",
    "relu",
    "same",
    "valid",
    "softmax",
    "a" * 500,
    "dense",
    "${w}",
    "ünïcødé",
    "0x_",
    "1e5",
    "-",
    "null",
    "[1, 2]",
    "../../etc/passwd",
    "os.system",
    "keras.layers.Lambda",
]
EXPRESSIONS = [
    "${w}",
    "${w * 2}",
    "${undefined}",
    "${1 / 0}",
    "${'a' + 1}",
    "${in_channels}",
    "${index}",
    "${-1}",
    "${10 ** 6}",
    "x${index}y",
    "${",
    "${}",
    "${min(1)}",
    "${int('x')}",
    "${abs(-3)}",
    "${round(2.5)}",
    "${max(1, 2, 3)}",
    "${2 ** 0.5}",
    "${[1, 2]}",
    "${a.b}",
    "${f(1)}",
    "${1 if 1 else 2}",
    "${lambda: 1}",
    "${__import__('os')}",
    "${(1, 2)}",
    "${7 // 0}",
    "${7 % 0}",
    # issue 10's hostile expressions (bounded before they are computed) and the comparisons
    "${-'a'}",
    "${2.0 ** 10000}",
    "${2 ** 10 ** 10}",
    "${9 ** 9 ** 9}",
    "${'a' * 10 ** 9}",
    "n${10 ** 5000}",
    "${round(5, -10 ** 7)}",
    "${w > 2 and w < 9}",
    "${1 if w >= 2 else 0}",
]


def _kinds() -> list[str]:
    from kbuilder.spec.registry import all_kinds

    return sorted(all_kinds())


def _positions(data: Any, found: list | None = None) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in the data, depth first."""
    found = [] if found is None else found
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in list(items):
        found.append((data, key))
        _positions(value, found)
    return found


def _layer_entries(data: Any, found: list | None = None) -> list[tuple[list, int]]:
    """Every (list, index) holding a layer entry: a one-key mapping inside a `layers`-like list."""
    found = [] if found is None else found
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("layers", "shortcut") and isinstance(value, list):
                found.extend((value, i) for i in range(len(value)))
            if isinstance(key, str) and key == "paths" and isinstance(value, dict):
                for path in value.values():
                    if isinstance(path, list):
                        found.extend((path, i) for i in range(len(path)))
            _layer_entries(value, found)
    elif isinstance(data, list):
        for value in data:
            _layer_entries(value, found)
    return found


def _names(data: Any) -> list[str]:
    """Layer and input names written in the spec (for rewiring)."""
    inputs = data.get("inputs") if isinstance(data, dict) else None
    names = [name for name in inputs if isinstance(name, str)] if isinstance(inputs, (dict, list)) else []
    for container, key in _positions(data):
        if key == "name" and isinstance(container, dict) and isinstance(container[key], str):
            names.append(container[key])
    return names or ["x"]


def _random_value(rng: random.Random) -> Any:
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(NUMBERS)
    if choice == 1:
        return rng.choice(STRINGS)
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return [rng.choice(NUMBERS) for _ in range(rng.randrange(4))]
    if choice == 4:
        return {rng.choice(["units", "filters", "x", "kernel_size", "name"]): rng.choice(NUMBERS)}
    return rng.choice(EXPRESSIONS)


# -- mutations: each changes `data` in place and says what it did -------------------------------


def drop_key(data, rng):
    spots = [(c, k) for c, k in _positions(data) if isinstance(c, dict)]
    if spots:
        container, key = rng.choice(spots)
        del container[key]
        return f"drop {key}"
    return "nothing to drop"


def duplicate_item(data, rng):
    spots = [(c, k) for c, k in _positions(data) if isinstance(c, list)]
    if spots:
        container, index = rng.choice(spots)
        container.insert(index, copy.deepcopy(container[index]))
        return f"duplicate item {index}"
    return "nothing to duplicate"


def retype_value(data, rng):
    container, key = rng.choice(_positions(data))
    container[key] = _random_value(rng)
    return f"retype {key} to {container[key]!r:.40}"


def rename_key(data, rng):
    spots = [(c, k) for c, k in _positions(data) if isinstance(c, dict)]
    if not spots:
        return "nothing to rename"
    container, key = rng.choice(spots)
    text = str(key)
    new = (
        rng.choice(
            [
                text[:-1],
                text + "s",
                text.upper(),
                text[::-1],
                "_" + text,
                rng.choice(_kinds()),
                "x" * rng.randrange(1, 200),
            ]
        )
        or "y"
    )
    container[new] = container.pop(key)
    return f"rename {key} to {new:.40}"


def change_number(data, rng):
    spots = [
        (c, k) for c, k in _positions(data) if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)
    ]
    if not spots:
        return retype_value(data, rng)
    container, key = rng.choice(spots)
    container[key] = rng.choice(NUMBERS)
    return f"number {key} = {container[key]!r}"


def random_kind(data, rng):
    entries = _layer_entries(data)
    if not entries:
        return "no layer entries"
    layers, index = rng.choice(entries)
    entry = layers[index]
    args = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
    kind = rng.choice(_kinds() + ["lambda", "Dense", "conv3d", "keras.layers.Lambda"])
    layers[index] = {kind: args} if rng.random() < 0.7 else kind
    return f"kind of layer {index} -> {kind}"


def expression(data, rng):
    container, key = rng.choice(_positions(data))
    container[key] = rng.choice(EXPRESSIONS)
    if isinstance(data, dict) and rng.random() < 0.5:
        data.setdefault("params", {})
        if isinstance(data["params"], dict):
            data["params"]["w"] = rng.choice(NUMBERS + STRINGS[:4])
    return f"expression at {key}"


def rewire(data, rng):
    entries = _layer_entries(data)
    if not entries:
        return "no layer entries"
    layers, index = rng.choice(entries)
    entry = layers[index]
    if not (isinstance(entry, dict) and len(entry) == 1):
        return "entry is not a mapping"
    kind, args = next(iter(entry.items()))
    args = args if isinstance(args, dict) else {}
    names = _names(data)
    target = rng.choice(names + ["no_such_layer", "dense_0", f"{kind}_{index}", f"{kind}_{index + 1}"])
    choice = rng.randrange(3)
    if choice == 0:  # read from anywhere: a later layer makes a cycle, an unknown one dangles
        args = {**args, "inputs": [target]}
        what = f"inputs of layer {index} -> {target}"
    elif choice == 1:  # a layer reading itself
        args = {**args, "name": "loop", "inputs": ["loop"]}
        what = f"layer {index} reads itself"
    else:
        if isinstance(data, dict):
            data["outputs"] = [target]
        what = f"outputs -> {target}"
    layers[index] = {kind: args}
    return what


def _search_param(rng: random.Random) -> Any:
    """A random `search.space` entry: sane, huge, tiny, inverted or malformed."""
    bound = lambda: rng.choice([*NUMBERS[:14], 10**9, 10**18, 1e-300, 1e-12])
    kind = rng.choice([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6])
    if kind == 0:
        return {"int": sorted([int(rng.choice([0, 1, 2, 8, 64, 10**3, 10**6, 10**9])) for _ in range(2)])}
    if kind == 1:
        return {"int": [1, rng.choice([10, 10**6, 10**9, 10**15])], "step": rng.choice([1, 2, 7, 10**6])}
    if kind == 2:
        return {
            "float": sorted([abs(float(bound())) for _ in range(2)]),
            "step": rng.choice([1e-12, 1e-300, 0.1, None]),
        }
    if kind == 3:
        return {
            "float": [rng.choice([1e-6, 0.001, 0.0]), rng.choice([0.1, 1.0, 1e30])],
            "log": rng.random() < 0.5,
        }
    if kind == 4:
        return {"choice": [_random_value(rng) for _ in range(rng.randrange(1, 6))]}
    if kind == 5:
        return {"choice": list(range(rng.choice([1, 50, 200, 201])))}
    return _random_value(rng)


def search_section(data, rng):
    """A random `search` section over paths of this spec (and a few that are not in it)."""
    if not isinstance(data, dict):
        return "no mapping for a search section"
    paths = [
        ".".join(str(p) for p in path)
        for path in _leaf_paths(data)
        if path and path[0] in ("layers", "params", "train", "blocks")
    ] or ["params.width"]
    odd = ["layers.99.dense.units", "train.nope", "a..b"] if rng.random() < 0.1 else []
    keys = [rng.choice(paths + odd) for _ in range(rng.randrange(1, 5))]
    search: dict[str, Any] = {
        "sampler": rng.choice(
            ["grid", "grid", "random", "tpe", "coarse_to_fine"] + ["gird"] * (rng.random() < 0.1)
        ),
        "space": {key: _search_param(rng) for key in keys},
    }
    if rng.random() < 0.4:  # the spec's own value (valid) or a random one
        fixed = rng.sample(paths, min(len(paths), rng.randrange(1, 3)))
        search["fixed"] = {key: rng.choice([_value_at(data, key), _random_value(rng)]) for key in fixed}
    if rng.random() < 0.5:
        search["trials"] = rng.choice([1, 2, 10, 1000, 100_000, *NUMBERS[:4]])
    if rng.random() < 0.1:
        search[rng.choice(["metric", "pruner", "rounds", "seed"])] = _random_value(rng)
    data["search"] = search
    return f"search {search['sampler']} over {', '.join(search['space'])[:80]}"


def _value_at(data: Any, dotted_path: str) -> Any:
    for part in dotted_path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, (*prefix, key))]
    if isinstance(node, list):
        return [p for index, value in enumerate(node) for p in _leaf_paths(value, (*prefix, index))]
    return [prefix]


MUTATIONS = [
    drop_key,
    duplicate_item,
    retype_value,
    rename_key,
    change_number,
    random_kind,
    expression,
    rewire,
    search_section,
]
# Builds favour the mutations a valid spec survives, so that most reach Keras.
BUILD_MUTATIONS = [change_number, change_number, change_number, random_kind, duplicate_item, rewire]
SEARCH_MUTATIONS = [search_section]  # --searches: a random search section on the spec as written


@dataclass
class Case:
    spec: str
    mutations: list[str]
    text: str


def make_case(spec_file: Path, seed: int, count: int, mutations: list = MUTATIONS) -> Case:
    """`count` random mutations of one spec (reproducible from `seed`), as YAML text."""
    rng = random.Random(seed)
    data = copy.deepcopy(_raw(spec_file))
    done = [rng.choice(mutations)(data, rng) for _ in range(count)]
    return Case(spec_file.stem, done, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


_RAW: dict[Path, Any] = {}


def _raw(spec_file: Path) -> Any:
    if spec_file not in _RAW:
        _RAW[spec_file] = read_yaml(spec_file)[0]
    return _RAW[spec_file]


@dataclass
class Outcome:
    status: str  # "valid", "built", "refused", "refused by the build" or "escaped"
    seconds: float
    detail: str = ""


def check_case(case: Case, *, build: bool = False) -> Outcome:
    """Validate (and optionally build) one case; "escaped" says what went wrong."""
    from kbuilder.graph import expand
    from kbuilder.graph.search_values import check_search_values
    from kbuilder.spec import loads_spec

    file = f"{case.spec}-fuzzed.yaml"
    start = time.perf_counter()
    refused = "refused"
    try:
        loaded = loads_spec(case.text, file=file)
        expand(loaded)
        check_search_values(loaded)  # as `kbuilder validate` does: a search section's values too
        status = "valid"
        if build:
            from kbuilder.build import build as build_model

            refused = "refused by the build"  # valid spec, but shapes (or the budget) do not fit
            build_model(loaded, max_params=BUILD_MAX_PARAMS)
            status = "built"
        outcome = Outcome(status, time.perf_counter() - start)
    except KBuilderError as exc:
        seconds = time.perf_counter() - start
        lines = exc.details()
        bad = [line for line in lines if not LOCATED.match(line) or "internal error" in line]
        if bad:
            return Outcome("escaped", seconds, f"unlocated: {bad[0][:300]}")
        outcome = Outcome(refused, seconds, lines[0])
    except Exception as exc:  # noqa: BLE001  (that is what the fuzzer looks for)
        return Outcome("escaped", time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}")
    if outcome.seconds > SLOW_SECONDS:
        return Outcome("escaped", outcome.seconds, f"slow ({outcome.seconds:.1f} s): {outcome.detail[:200]}")
    return outcome


def template(message: str) -> str:
    """A refusal message without its location, names and numbers (to count kinds of refusal)."""
    text = LOCATED.sub("", message, count=1)
    text = re.sub(r"^[\w\[\].-]+: ", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'_'", text)
    return re.sub(r"\d[\d,._e+-]*", "N", text)[:90]


def run(validations: int, builds: int, seed: int, searches: int = 0) -> int:
    counts: Counter = Counter()
    kinds: Counter = Counter()
    escapes: list[tuple[Case, Outcome]] = []
    slowest = (0.0, "")
    buildable = [f for f in SPEC_FILES if f.stem in BUILDABLE]
    plan: list[tuple[Path, Any]] = [(SPEC_FILES[i % len(SPEC_FILES)], False) for i in range(validations)]
    plan += [(SPEC_FILES[i % len(SPEC_FILES)], "search") for i in range(searches)]
    plan += [(buildable[i % len(buildable)], True) for i in range(builds)]
    if builds:
        import keras  # noqa: F401  (imported before the clock starts: the import is not a case)
    started = time.perf_counter()
    for number, (spec_file, build) in enumerate(plan):
        rng = random.Random(seed * 1_000_003 + number)
        # One mutation for a build: a spec mutated several times rarely gets past validation.
        if build == "search":  # a random search section on the spec as written
            case = make_case(spec_file, rng.randrange(2**32), 1, SEARCH_MUTATIONS)
            build = False
        elif build:
            case = make_case(spec_file, rng.randrange(2**32), 1, BUILD_MUTATIONS)
        else:
            case = make_case(spec_file, rng.randrange(2**32), rng.randrange(1, 5))
        outcome = check_case(case, build=build)
        label = "search " if "search " in " ".join(case.mutations) else ("build " if build else "validate ")
        counts[label + outcome.status] += 1
        if outcome.status.startswith("refused"):
            kinds[template(outcome.detail)] += 1
        if outcome.status == "escaped":
            escapes.append((case, outcome))
        if outcome.seconds > slowest[0]:
            slowest = (outcome.seconds, f"{case.spec}: {'; '.join(case.mutations)}")
        if (number + 1) % 1000 == 0:
            print(
                f"... {number + 1} cases, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
            )
    print(
        f"cases: {len(plan)} ({validations} validations, {searches} with a search section first, {builds} builds) from {len(SPEC_FILES)} specs, "
        f"seed {seed}, {time.perf_counter() - started:.0f} s"
    )
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")
    print(f"slowest case: {slowest[0]:.2f} s ({slowest[1][:150]})")
    print(f"kinds of refusal: {len(kinds)}; most common:")
    for text, count in kinds.most_common(15):
        print(f"  {count:6d}  {text}")
    print(f"escapes: {len(escapes)}")
    for case, outcome in escapes[:20]:
        print(f"  {case.spec} [{'; '.join(case.mutations)}]: {outcome.detail}")
    return 1 if escapes else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validations", type=int, default=10_000, help="mutated specs to validate")
    parser.add_argument("--builds", type=int, default=300, help="mutated small specs to build with Keras")
    parser.add_argument(
        "--searches", type=int, default=2_000, help="specs given a random search section first"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (cases are reproducible)")
    args = parser.parse_args(argv)
    return run(args.validations, args.builds, args.seed, args.searches)


if __name__ == "__main__":
    sys.exit(main())

"""Property-based fuzzing of every bundled spec (issue 10): a mutated spec is a valid
model or kbuilder's own error located at `file:line:column` - never another exception,
never "internal error", never slow. The mutations live in tools/fuzz_specs.py, which
runs the same check at scale (10,000 validations and a few hundred builds)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("fuzz_specs", REPO / "tools" / "fuzz_specs.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_specs"] = fuzz  # dataclasses look their module up while the tool loads
_spec.loader.exec_module(fuzz)

SPECS = {path.stem: path for path in fuzz.SPEC_FILES}
# The large specs take longer to expand: fewer cases for them keep the suite fast.
EXAMPLES = {name: (12 if name in ("densenet121", "resnet50", "googlenet") else 25) for name in SPECS}
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _assert_contained(case, outcome):
    assert outcome.status != "escaped", (
        f"{case.spec} [{'; '.join(case.mutations)}]: {outcome.detail}\n{case.text}"
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_mutated_specs_validate_or_are_refused_with_a_location(name):
    @settings(FUZZ, max_examples=EXAMPLES[name])
    @given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 4))
    def check(seed, count):
        case = fuzz.make_case(SPECS[name], seed, count)
        _assert_contained(case, fuzz.check_case(case))

    check()


@settings(FUZZ, max_examples=12)
@given(
    name=st.sampled_from(["xor_mlp", "mnist_mlp", "lenet5"]),
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 3),
)
def test_mutated_small_specs_build_or_are_refused(name, seed, count):
    import keras  # noqa: F401  (the import is not part of a case's time)

    case = fuzz.make_case(SPECS[name], seed, count, fuzz.BUILD_MUTATIONS)
    _assert_contained(case, fuzz.check_case(case, build=True))


def test_every_mutation_changes_the_spec():
    import random

    original = fuzz.make_case(SPECS["lenet5"], 0, 0).text
    for mutation in fuzz.MUTATIONS:
        data = fuzz.yaml.safe_load(original)
        mutation(data, random.Random(3))
        assert fuzz.yaml.safe_dump(data, sort_keys=False, allow_unicode=True) != original, mutation.__name__


def test_the_checker_reports_escapes():
    """The checker itself can fail: an unlocated message or a foreign exception is an escape."""
    case = fuzz.Case("m", [], "name: m\n")
    assert fuzz.check_case(case).status == "refused"
    case = fuzz.Case("m", [], "name: m\ninputs: {x: {shape: [4]}}\nlayers: [{dense: 3}]\n")
    assert fuzz.check_case(case).status == "valid"
    original = fuzz.KBuilderError
    try:
        fuzz.KBuilderError = KeyError  # a foreign exception type is not kbuilder's error
        assert fuzz.check_case(fuzz.Case("m", [], "name: m\n")).status == "escaped"
    finally:
        fuzz.KBuilderError = original


@settings(FUZZ, max_examples=60)
@given(name=st.sampled_from(sorted(SPECS)), seed=st.integers(0, 2**32 - 1))
def test_random_search_sections_validate_or_are_refused_with_a_location(name, seed):
    case = fuzz.make_case(SPECS[name], seed, 1, fuzz.SEARCH_MUTATIONS)
    _assert_contained(case, fuzz.check_case(case))


_data_spec = importlib.util.spec_from_file_location(
    "fuzz_data_headers", REPO / "tools" / "fuzz_data_headers.py"
)
fuzz_data = importlib.util.module_from_spec(_data_spec)
sys.modules["fuzz_data_headers"] = fuzz_data
_data_spec.loader.exec_module(fuzz_data)


@settings(FUZZ, max_examples=150)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_data_file_headers_load_or_are_refused_as_data_errors(seed):
    outcome = fuzz_data.check_case(seed)
    assert outcome.status in ("loaded", "refused"), f"case seed {seed}: {outcome.detail}"


def test_the_data_fuzzer_reports_escapes(monkeypatch):
    """The checker itself can fail: an exception that is not kbuilder's is an escape."""

    def broken(*args, **kwargs):
        raise KeyError("x")

    monkeypatch.setattr(fuzz_data, "load_splits", broken)
    assert fuzz_data.check_case(0).status == "escaped"

"""Property tests: random specs against closed forms, and path syntax round trips."""

from __future__ import annotations

import itertools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbuilder.graph.params import evaluate
from kbuilder.spec import loads_spec
from kbuilder.spec.loader import format_path
from kbuilder.spec.overrides import parse_override_path

names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
paths = st.lists(st.one_of(names, st.integers(0, 50)), min_size=1, max_size=6).filter(
    lambda p: isinstance(p[0], str)
)


@pytest.mark.slow
@given(paths)
def test_override_paths_round_trip(path):
    assert parse_override_path(format_path(tuple(path))) == tuple(path)


@given(st.integers(-1000, 1000), st.integers(1, 50), st.integers(-50, 50))
def test_expressions_do_integer_arithmetic_like_python(a, b, c):
    scope = {"a": a, "b": b, "c": c}
    assert evaluate("a * b + c", scope) == a * b + c
    assert evaluate("(a + c) // b", scope) == (a + c) // b
    assert evaluate("max(a, c) % b", scope) == max(a, c) % b


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 64), st.lists(st.integers(1, 32), min_size=1, max_size=4), st.booleans())
def test_mlp_parameter_count_matches_the_closed_form(width, hidden, bias):
    from kbuilder import api

    layers = [{"dense": {"units": units, "use_bias": bias}} for units in hidden]
    text = yaml.safe_dump({"name": "mlp", "inputs": {"x": {"shape": [width]}}, "layers": layers})
    report = api.report(api.build(loads_spec(text)))
    sizes = [width, *hidden]
    expected = sum(n_in * n_out + (n_out if bias else 0) for n_in, n_out in itertools.pairwise(sizes))
    assert report.params == expected
    assert report.macs == sum(n_in * n_out for n_in, n_out in itertools.pairwise(sizes))

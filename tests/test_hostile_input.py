"""Hostile input never escapes: every spec, override and spec path an attacker (or a typo)
can write ends in kbuilder's own located error, quickly and in bounded memory.

Each row of issue 10's table and each hostile input listed there is one case here. The
`${...}` expression rows are tested with the expression evaluator (kbuilder/graph/params.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from kbuilder.cli.app import main
from kbuilder.errors import KBuilderError, ModelTooLarge, SpecError
from kbuilder.graph import expand
from kbuilder.spec import loads_spec
from kbuilder.spec.loader import MAX_DEPTH, MAX_FILE_BYTES
from tests.conftest import REPO

HEAD = "name: m\ninputs: {x: {shape: [4]}}\nlayers:\n"
LOCATED = re.compile(r"^s\.yaml:\d+:\d+: ")
QUICK_SECONDS = 5.0  # each refusal takes well under a second; generous for a loaded CI machine


def _alias_bomb(prefix: str = "") -> str:
    lines = [f"{prefix}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{prefix}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _flow_alias_bomb() -> str:
    """The same bomb in one flow sequence, as `--set` takes it."""
    items = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "[" + ", ".join(items) + "]"


def _fan_out(levels: int) -> str:
    """Block b_i uses b_(i-1) twice: 2^levels layers."""
    text = "name: m\ninputs: {x: {shape: [4]}}\nblocks:\n  b0: {layers: [{dense: 2}]}\n"
    for i in range(1, levels + 1):
        text += f"  b{i}: {{layers: [{{block: {{use: b{i - 1}}}}}, {{block: {{use: b{i - 1}}}}}]}}\n"
    return text + f"layers:\n  - block: {{use: b{levels}}}\n"


def _nested_through_blocks(blocks: int = 32, per_block: int = 18) -> str:
    """Each block nests `per_block` repeats and uses the next block: ~600 levels of
    composites, far past Python's recursion limit if expansion did not bound it."""
    text = "name: m\ninputs: {x: {shape: [4]}}\nblocks:\n"
    for i in range(blocks):
        body = f"{{block: {{use: b{i + 1}}}}}" if i < blocks - 1 else "{dense: 4}"
        for _ in range(per_block):
            body = "{repeat: {times: 1, layers: [" + body + "]}}"
        text += f"  b{i}: {{layers: [{body}]}}\n"
    return text + "layers:\n  - block: {use: b0}\n"


# (id, spec text, a fragment the message must contain)
HOSTILE_SPECS = [
    ("units-1e100", HEAD + "  - dense: {units: 1" + "0" * 100 + "}\n", "numbers of at most"),
    ("units-5000-digits", HEAD + "  - dense: {units: " + "7" * 5000 + "}\n", "numbers of at most"),
    (
        "units-1e30-schema-bound",
        HEAD + "  - dense: {units: 1" + "0" * 30 + "}\n",
        "less than or equal to 10000000",
    ),
    (
        "kernel-bound",
        "name: m\ninputs: {x: {shape: [8, 8, 1]}}\nlayers:\n  - conv2d: {filters: 2, kernel_size: 100000}\n",
        "less than or equal to 10000",
    ),
    (
        "strides-bound",
        "name: m\ninputs: {x: {shape: [8, 8, 1]}}\nlayers:\n  - max_pooling2d: {strides: [1, 99999]}\n",
        "less than or equal to 10000",
    ),
    (
        "shape-bound",
        "name: m\ninputs: {x: {shape: [10000000]}}\nlayers:\n  - dense: 2\n",
        "less than or equal to 1000000",
    ),
    (
        "repeat-bound",
        HEAD + "  - repeat: {times: 100000, layers: [{dense: 2}]}\n",
        "less than or equal to 10000",
    ),
    (
        "seed-bound",
        HEAD + "  - dropout: {rate: 0.5, seed: 99999999999}\n",
        "less than or equal to 2147483647",
    ),
    ("0x_", HEAD + "  - dense: {units: 0x_}\n", "cannot read '0x_' as an integer"),
    ("0b_", HEAD + "  - dense: {units: 0b_}\n", "cannot read '0b_' as an integer"),
    ("0o_", HEAD + "  - dense: {units: 0o_}\n", "expected a valid integer"),
    ("20000-nested-brackets", "name: " + "[" * 20_000 + "\n", f"nesting deeper than {MAX_DEPTH}"),
    ("20000-nested-block-lists", "name:\n" + "- " * 20_000 + "x\n", f"nesting deeper than {MAX_DEPTH}"),
    ("alias-bomb", _alias_bomb(), "expands to more than"),
    ("recursive-alias", "name: &a [*a]\n", "nesting deeper than"),
    ("merge-into-itself", "name: &a {<<: *a}\n", "name: expected a valid string; got {}"),
    ("megabyte-scalar", "name: " + "a" * 1_500_000 + "\n", "at most 120 characters"),
    ("python-tag", "name: !!python/object/apply:os.system ['echo pwned']\n", "is not allowed"),
    ("python-name-tag", "name: !!python/name:os.system x\n", "is not allowed"),
    ("binary-tag", "name: !!binary aGVsbG8=\n", "is not allowed"),
    ("set-tag", "name: !!set {a, b}\n", "is not allowed"),
    ("duplicate-key", "name: a\nname: b\n", "duplicate key 'name'"),
    ("nul-byte", HEAD + "  - dense: {units: 3}\x00\n", "U+0000 is not allowed"),
    ("bel-byte", HEAD + "  - dense: {units: 3}\x07\n", "U+0007 is not allowed"),
    ("empty-file", "", "the file is empty"),
    ("only-a-comment", "# nothing\n", "the file is empty"),
    ("list-spec", "- a\n- b\n", "expected a mapping"),
    ("scalar-spec", "hello\n", "expected a mapping"),
    ("bare-kind-with-required-fields", HEAD + "  - dense\n", "missing required field 'units'"),
    ("merge-key-scalar", HEAD + "  - dense: {<<: 5, units: 3}\n", "merges a mapping"),
    ("tag-on-key", HEAD + "  - dense: {!foo units: 3}\n", "YAML tag '!foo' is not allowed"),
    ("python-tag-on-key", HEAD + "  - dense: {!!python/name:os.system units: 3}\n", "is not allowed"),
    ("mapping-as-key", HEAD + "  - dense: {? [a, b] : 3}\n", "mapping keys must be plain scalars"),
    ("int-tag-on-text", HEAD + "  - dense: {units: !!int x}\n", "cannot read 'x' as an integer"),
    (
        "bool-tag-on-text",
        HEAD + "  - dense: {units: 3, use_bias: !!bool maybe}\n",
        "cannot read 'maybe' as a boolean",
    ),
    ("float-tag-on-text", HEAD + "  - dropout: !!float half\n", "cannot read 'half' as a number"),
    ("infinite-scale", HEAD + "  - rescaling: {scale: .inf}\n", "expected a finite number"),
    ("nan-rate", HEAD + "  - dropout: .nan\n", "expected a finite number"),
    ("impossible-date-stays-text", "name: 2024-13-45\n", "missing required field 'inputs'"),
    (
        "repeat-10000-x-10000",
        HEAD + "  - repeat: {times: 10000, layers: [{repeat: {times: 10000, layers: [{dense: 2}]}}]}\n",
        "expands to more than 100,000 layers",
    ),
    (
        "repeat-of-empty-repeats",
        HEAD + "  - repeat: {times: 10000, layers: [{repeat: {times: 10000, layers: "
        "[{repeat: {times: 0, layers: [{dense: 2}]}}]}}]}\n",
        "expands to more than 100,000 layers",
    ),
    ("blocks-fan-out-2^20", _fan_out(20), "expands to more than 100,000 layers"),
    (
        "composites-nested-600-deep-through-blocks",
        _nested_through_blocks(),
        "composites nested deeper than 64",
    ),
    (
        "block-uses-itself",
        (
            "name: m\ninputs: {x: {shape: [4]}}\nblocks:\n  b: {layers: [{block: {use: b}}]}\n"
            "layers:\n  - block: {use: b}\n"
        ),
        "uses itself",
    ),
]


def refusal(text: str, overrides=()) -> tuple[KBuilderError, float]:
    start = time.perf_counter()
    with pytest.raises(KBuilderError) as info:
        expand(loads_spec(text, file="s.yaml", overrides=list(overrides)))
    return info.value, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("text,fragment", [c[1:] for c in HOSTILE_SPECS], ids=[c[0] for c in HOSTILE_SPECS])
def test_hostile_spec_is_refused_quickly_with_a_location(text, fragment):
    error, seconds = refusal(text)
    assert isinstance(error, SpecError) and error.exit_code == 2
    assert fragment in str(error)
    for line in error.details():
        assert LOCATED.match(line), line  # file:line:column on every problem
        assert "internal error" not in line
    assert seconds < QUICK_SECONDS


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("layers=&a [*a]", "nesting deeper than"),
        ("layers=" + _flow_alias_bomb(), "expands to more than"),
        ("name=!!python/object/apply:os.system ['echo pwned']", "is not allowed"),
        ("layers[0].dense.units=1" + "0" * 100, "numbers of at most"),
        ("layers[0].dense.units=0x_", "cannot read '0x_'"),
        ("name=" + "[" * 5000, "nesting deeper than"),
        ("a" + ".a" * 100 + "=1", "deeper than"),
        ("name=\x00", "U+0000"),
    ],
)
def test_hostile_overrides_go_through_the_same_limits(override, fragment):
    error, seconds = refusal(HEAD + "  - dense: 3\n", [override])
    assert isinstance(error, SpecError) and fragment in str(error), str(error)
    assert all(line.startswith("--set ") for line in error.details())
    assert seconds < QUICK_SECONDS


@pytest.mark.slow
def test_alias_bombs_across_many_overrides_share_one_budget():
    bomb = "[" + ", ".join(["&a0 [x, x, x, x, x, x, x, x, x, x]"] + ["*a0"] * 99) + "]"  # 1,101 values each
    declared = "params: {" + ", ".join(f"p{i}: 0" for i in range(300)) + "}\n"
    error, _ = refusal(declared + HEAD + "  - dense: 3\n", [f"params.p{i}={bomb}" for i in range(300)])
    assert "expands to more than" in str(error)


# Overrides of `params` must name a declared parameter (a misspelt one is refused).
PARAMS = "params: {v: 1, w: 0}\n"


def test_legitimate_overrides_still_work():
    loaded = loads_spec(
        PARAMS + HEAD + "  - dense: 3\n", overrides=["layers[0].dense=7", "params.v=", "params.w=[1, 2]"]
    )
    assert loaded.spec.layers[0] == {"dense": 7} and loaded.spec.params == {"v": None, "w": [1, 2]}


def test_a_date_stays_text_and_numbers_stay_numbers():
    loaded = loads_spec(
        PARAMS + HEAD + "  - dense: 3\n", overrides=["description=2024-01-31", "params.w=1_000"]
    )
    assert loaded.spec.description == "2024-01-31" and loaded.spec.params["w"] == 1000


# -- spec files and paths ------------------------------------------------------------------


def run(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "internal error" not in out + err and "Traceback" not in err
    return code, out + err


def test_validate_a_directory(capsys, tmp_path):
    code, text = run(capsys, "validate", str(tmp_path))
    assert code == 2 and f"{tmp_path}:1:1: this is a directory" in text


def test_validate_non_utf8_bytes(capsys, tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    code, text = run(capsys, "validate", str(bad))
    assert code == 2 and f"{bad}:1:10: the spec is not UTF-8 text (byte 0xe9" in text


def test_validate_a_file_over_the_size_limit(capsys, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    code, text = run(capsys, "validate", str(big))
    assert code == 2 and "the limit is" in text


def _validate_in_a_subprocess(path: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "validate", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    return proc, time.perf_counter() - start


@pytest.mark.subprocess
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_validate_dev_zero_reads_nothing():
    proc, seconds = _validate_in_a_subprocess("/dev/zero")
    assert proc.returncode == 2 and "/dev/zero:1:1: not a regular file" in proc.stderr
    assert "internal error" not in proc.stderr and seconds < 30


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_validate_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    proc, _ = _validate_in_a_subprocess(str(fifo))  # timeout=60 fails the test if it hangs
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_a_missing_path_never_means_the_bundled_spec(capsys):
    code, text = run(capsys, "validate", "/no/such/dir/resnet50.yaml")
    assert code == 2 and "no such spec file: /no/such/dir/resnet50.yaml" in text
    assert "give its bare name: resnet50" in text
    code, text = run(capsys, "validate", "resnet50.yaml")
    assert code == 2 and "no such spec file" in text


def test_a_bare_name_means_the_bundled_spec(capsys):
    code, text = run(capsys, "validate", "xor_mlp")
    assert code == 0 and "ok: xor_mlp" in text


# -- the parameter budget ------------------------------------------------------------------

HUGE_MODEL = "name: huge\ninputs: {image: {shape: [224, 224, 3]}}\nlayers:\n  - flatten\n  - dense: 1000000\n"


def test_150g_parameter_model_is_refused_before_any_weight_is_allocated():
    from kbuilder.build import build

    loaded = loads_spec(HUGE_MODEL, file="s.yaml")
    import keras  # noqa: F401  (timed apart: the import is not the refusal)

    start = time.perf_counter()
    with pytest.raises(ModelTooLarge) as info:
        build(loaded)
    seconds = time.perf_counter() - start
    message = str(info.value)
    assert info.value.exit_code == 2 and message.startswith("s.yaml:5:5: layers[1]: layer 'dense_1' (dense)")
    assert "150,529,000,000 parameters" in message and "560.8 GiB" in message and "--max-params" in message
    assert seconds < 1.0


def test_running_total_is_bounded_too():
    from kbuilder.build import build

    text = HEAD + "  - dense: 1000\n  - dense: 1000\n"  # 5,000 then 1,001,000 parameters
    with pytest.raises(
        ModelTooLarge, match=r"the model would reach about 1,006,000 parameters .* at layer 'dense_1'"
    ):
        build(loads_spec(text), max_params=1_005_000)
    assert build(loads_spec(text), max_params=1_006_000).model.count_params() == 1_006_000


def test_max_params_option_and_environment(capsys, monkeypatch):
    # An empty value means the default; setenv (not delenv) makes monkeypatch restore the
    # variable afterwards, also when `--max-params` set it in between.
    monkeypatch.setenv("KBUILDER_MAX_PARAMS", "")
    code, text = run(capsys, "check", "xor_mlp", "--max-params", "100")
    assert code == 2 and "model too large" in text and "the limit is 100 parameters" in text
    code, text = run(capsys, "check", "xor_mlp", "--max-params", "2e3")
    assert code == 0
    monkeypatch.setenv("KBUILDER_MAX_PARAMS", "50")
    code, text = run(capsys, "build", "xor_mlp", "--format", "json")
    assert code == 2 and "the limit is 50 parameters" in text
    for bad in ("abc", "0", "-5", "1.5", "1e400"):
        code, text = run(capsys, "check", "xor_mlp", "--max-params", bad)
        assert code == 2 and "--max-params must be a positive whole number" in text


def _examples():
    from kbuilder.spec.registry import all_kinds
    from tests.layer_examples import EXAMPLES, VARIANTS

    cases = [(k, EXAMPLES[k]) for k in sorted(all_kinds()) if k != "input"]
    return cases + [(kind, example) for kind, example in VARIANTS.values()]


@pytest.mark.parametrize("kind,example", _examples(), ids=[c[0] for c in _examples()])
def test_parameter_estimate_matches_keras_for_every_kind(kind, example):
    """The budget's formula for each layer equals Keras's own count, layer by layer."""
    from kbuilder.build import build
    from kbuilder.build.budget import estimate_params
    from tests.test_registry import spec_text

    built = build(loads_spec(spec_text(kind, example)))
    for node in built.graph.nodes:
        if node.kind == "input":
            continue
        layer = built.model.get_layer(node.name)
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        target = built.model.get_layer(node.shape_refs[0]).output.shape if node.shape_refs else None
        estimate = estimate_params(node.kind, node.spec, [tuple(t.shape) for t in inputs], target)
        assert estimate == layer.count_params(), f"{node.name} ({node.kind})"


# -- deep graphs ---------------------------------------------------------------------------


def test_long_chains_get_the_recursion_depth_keras_needs(monkeypatch):
    """Keras walks a functional graph recursively; a chain longer than the recursion limit
    (2,000 layers against the default 1,000) must build. Scaled down: 400 against 250."""
    from kbuilder.build import build

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(250)
    try:
        built = build(loads_spec(HEAD + "  - repeat: {times: 400, layers: [{activation: relu}]}\n"))
        assert len(built.model.layers) == 401 and sys.getrecursionlimit() >= 1_000 + 3 * 401
    finally:
        sys.setrecursionlimit(old)


def test_chains_past_the_documented_limit_are_refused(monkeypatch):
    from kbuilder.build import budget, build

    monkeypatch.setattr(budget, "MAX_CHAIN", 50)
    with pytest.raises(SpecError, match=r"the longest chain of layers has 61 layers .* at most 50"):
        build(loads_spec(HEAD + "  - repeat: {times: 60, layers: [{activation: relu}]}\n", file="s.yaml"))

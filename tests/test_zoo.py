"""The model zoo's own claims (tests/test_specs.py checks that every spec builds and
passes its `expect`): each bundled spec names its source in a header comment, has a
one-line description and an `expect` with parameter counts; the zoo specs state the
published figures; `kbuilder zoo` lists every spec; a spec with custom layers exports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from kbuilder import api
from kbuilder.spec import load_spec
from tests.conftest import REPO, SPECS

SPEC_FILES = sorted(SPECS.glob("*.yaml"))
IDS = [p.stem for p in SPEC_FILES]

# The zoo's published parameter counts (total, trainable, non-trainable) and a word
# of the source each header must name.
PUBLISHED = {
    # LeCun et al. 1998: 60,000 trainable + the 10 x 84 fixed RBF prototypes
    "lenet5": ((60_840, 60_000, 840), "LeCun"),
    "lenet5_modern": ((61_706, 61_706, 0), "LeCun"),
    "alexnet": ((60_965_224, 60_965_224, 0), "Krizhevsky"),
    "alexnet_torchvision": ((61_100_840, 61_100_840, 0), "notes 000"),
    "vgg16": ((138_357_544, 138_357_544, 0), "Simonyan"),
    "googlenet": ((6_998_552, 6_998_552, 0), "Szegedy"),
    # ResNet-50 and DenseNet-121 as in keras.applications: BN moving statistics are
    # the non-trainable part.
    "resnet50": ((25_636_712, 25_583_592, 53_120), "K. He"),
    "densenet121": ((8_062_504, 7_978_856, 83_648), "Huang"),
    # keras.applications counts (weights=None, 1000 classes): BN moving statistics and
    # EfficientNet's Normalization (mean, variance, count: 7) are the non-trainable part.
    "mobilenet_v3_small": ((2_554_968, 2_542_856, 12_112), "Howard"),
    "mobilenet_v3_large": ((5_507_432, 5_483_032, 24_400), "Howard"),
    "efficientnet_b0": ((5_330_571, 5_288_548, 42_023), "M. Tan"),
    "fashion_cnn": ((1_262_218, 1_262_218, 0), "notes 004"),
    # Kim 2014, MR: 18,766 x 300 embedding + 3 x 100 filters of widths 3, 4, 5 + 300 x 2 softmax
    "text_cnn": ((5_990_702, 5_990_702, 0), "Kim"),
    # torchvision's vit_b_16: 86,567,656 (no non-trainable weights: LayerNorm, no BN)
    "vit_b16": ((86_567_656, 86_567_656, 0), "Dosovitskiy"),
    "text_transformer": ((1_238_722, 1_238_722, 0), "Vaswani"),
}


def header_comment(path) -> str:
    """The comment lines at the top of a spec file, without the '#'."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return "\n".join(lines)


@pytest.mark.parametrize("path", SPEC_FILES, ids=IDS)
def test_spec_has_a_header_comment_naming_its_source(path):
    header = header_comment(path)
    assert header, f"{path.name} starts without a comment naming its source"
    # A source is a paper (a year) or the lecture notes.
    assert re.search(r"\b(19|20)\d\d\b|\bnotes 00\d\b", header), header
    if path.stem in PUBLISHED:
        assert PUBLISHED[path.stem][1] in header


@pytest.mark.parametrize("path", SPEC_FILES, ids=IDS)
def test_spec_has_a_one_line_description_and_its_file_name(path):
    spec = load_spec(path).spec
    assert spec.name == path.stem, "`kbuilder build NAME` finds bundled specs by file name"
    assert spec.description.strip() and "\n" not in spec.description.strip()
    assert len(spec.description) <= 120


@pytest.mark.parametrize("path", SPEC_FILES, ids=IDS)
def test_spec_expects_params_and_output_shape(path):
    expect = load_spec(path).spec.expect
    assert expect is not None and expect.params is not None and expect.output_shape is not None
    assert expect.layers, "the zoo states figures per layer, not only the total"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_spec_states_the_published_figures(name):
    expect = load_spec(SPECS / f"{name}.yaml").spec.expect
    total, trainable, non_trainable = PUBLISHED[name][0]
    assert (expect.params, expect.trainable_params, expect.non_trainable_params) == (
        total,
        trainable,
        non_trainable,
    )
    assert expect.params == expect.trainable_params + expect.non_trainable_params


def run_zoo(*args: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "kbuilder.cli.app", "zoo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def zoo_listing() -> tuple[str, dict]:
    text = run_zoo()
    data = json.loads(run_zoo("--json"))
    return text, {entry["name"]: entry for entry in data["specs"]}


@pytest.mark.subprocess
@pytest.mark.parametrize("path", SPEC_FILES, ids=IDS)
def test_kbuilder_zoo_lists_the_spec(path, zoo_listing):
    text, entries = zoo_listing
    spec = load_spec(path).spec
    line = next((line for line in text.splitlines() if line.split()[:1] == [path.stem]), None)
    assert line is not None, f"`kbuilder zoo` does not list {path.stem}"
    assert f"{spec.expect.params:,}" in line and spec.description.strip() in line
    entry = entries[path.stem]
    assert entry["params"] == spec.expect.params and entry["description"] == spec.description
    assert entry["path"].endswith(f"specs/{path.name}")


@pytest.mark.subprocess
def test_kbuilder_zoo_lists_nothing_else(zoo_listing):
    _, entries = zoo_listing
    assert sorted(entries) == IDS


def test_every_zoo_model_is_bundled():
    assert set(PUBLISHED) <= set(IDS)


@pytest.mark.slow
def test_lenet5_with_its_custom_layers_exports_and_reloads(tmp_path):
    """Trainable subsampling, the C3 table, the scaled tanh and the fixed RBF
    prototypes survive SavedModel + .keras export (reloaded and compared)."""
    built = api.build(SPECS / "lenet5.yaml")
    path = api.export(built, tmp_path / "lenet5", verify=True)
    assert {"model.keras", "saved_model", "manifest.json"} <= {p.name for p in path.iterdir()}
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == "lenet5"

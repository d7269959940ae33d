"""best.yaml: the best trial's spec as a file `kbuilder train` and `kbuilder check` take as they are.

The study stores the tuned spec as the user gave it (their `--set` overrides applied, not the
`--epochs` the search trained each trial for). The best trial's fixed and sampled values are set
on it and `search` is removed. Two things are then rewritten so the file is true of itself:

- `expect`: the tuned spec's figures were those of the recipe (128 units, 109,386 params);
  the best trial builds another model. Each figure `expect` named is computed again from the
  spec alone (kbuilder/graph/figures.py, no Keras); when one cannot be (a shape known only
  once built), the section is dropped and a comment says so.
- the epochs: the recipe's, with a comment giving the epochs each trial trained.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial

from kbuilder.errors import KBuilderError, RuntimeFailure
from kbuilder.experiments.tune.trial import spec_data_for
from kbuilder.graph import Graph, expand
from kbuilder.graph.figures import NodeFigures, static_figures
from kbuilder.spec import LoadedSpec, validate_data
from kbuilder.spec.figures import Params
from kbuilder.spec.loader import SourceMap
from kbuilder.storage import atomic

BEST_SPEC = "best.yaml"
REPORT_MODE = 0o644  # a report is for everyone who can read the study folder


class CompactDumper(yaml.SafeDumper):
    """Lists of numbers (shapes, inline data) on one line, as people write them."""


def _represent_list(dumper: yaml.SafeDumper, items: list) -> yaml.SequenceNode:
    flat = all(
        not isinstance(i, (dict, list))
        or (isinstance(i, list) and all(not isinstance(j, (dict, list)) for j in i))
        for i in items
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat and bool(items))


CompactDumper.add_representer(list, _represent_list)


class Unknown(Exception):
    """A figure `expect` names that the spec alone does not give."""


def _graph_of(data: dict[str, Any]) -> Graph:
    source = SourceMap("<best trial>")
    data = copy.deepcopy(data)  # validation may fill in defaults; the file keeps what was written
    return expand(LoadedSpec(validate_data(data, source), data, source))


def _shape(figures: NodeFigures) -> list[int | None]:
    if figures.shape is None:
        raise Unknown()
    return list(figures.shape[1:])  # without the batch axis, as `expect` writes shapes


def _params(figures: NodeFigures) -> Params:
    if figures.params is None:
        raise Unknown()
    return figures.params


def _layer_params(graph: Graph, figures: dict[str, NodeFigures], name: str, target: str) -> int:
    """A layer's parameters; a composite's are the sum over its layers (as `check` counts them)."""
    if name not in graph.groups:
        return _params(figures[target]).total
    members = [n.name for n in graph.nodes if n.name == target or name in n.group]
    return sum(_params(figures[m]).total for m in members)


def rewritten_expect(data: dict[str, Any]) -> dict[str, Any]:
    """The spec's `expect` with every figure it names computed for this spec; raises Unknown."""
    expect = data["expect"]
    graph = _graph_of(data)
    figures = static_figures(graph)
    total = Params()
    for node in graph.nodes:
        total = total + _params(figures[node.name])
    macs = [figures[n.name].macs for n in graph.nodes]
    outputs = [_shape(figures[graph.resolve(name)]) for name in graph.outputs]
    computed: dict[str, Any] = {
        "params": total.total,
        "trainable_params": total.trainable,
        "non_trainable_params": total.non_trainable,
        "macs": None if None in macs else sum(m or 0 for m in macs),
        "output_shape": outputs[0] if len(outputs) == 1 else outputs,
    }
    out: dict[str, Any] = {}
    for key in expect:
        if key == "layers":
            continue
        if computed.get(key) is None:
            raise Unknown()
        out[key] = computed[key]
    layers: dict[str, Any] = {}
    for name, wanted in (expect.get("layers") or {}).items():
        target = graph.resolve(name)
        if target not in figures:
            raise Unknown()  # the best trial has no layer of that name (a searched depth)
        layers[name] = {}
        for key in wanted:
            if key == "output_shape":
                layers[name][key] = _shape(figures[target])
            elif key == "params":
                layers[name][key] = _layer_params(graph, figures, name, target)
    if layers:
        out["layers"] = layers
    return out


def best_spec_data(study: optuna.Study, trial: FrozenTrial) -> tuple[dict[str, Any], list[str]]:
    """The best trial's spec data and the comment lines that say what was rewritten."""
    spec_data = study.user_attrs.get("spec_data")
    if spec_data is None:
        raise RuntimeFailure(
            f"the study '{study.study_name}' holds no spec (was it started by kbuilder tune?)"
        )
    data = spec_data_for(spec_data, trial.params)
    notes = []
    trial_epochs = study.user_attrs.get("trial_epochs")
    epochs = (data.get("train") or {}).get("epochs")
    searched = {**(study.user_attrs["search"].get("fixed") or {}), **study.user_attrs["search"]["space"]}
    if (
        trial_epochs is not None
        and epochs is not None
        and trial_epochs != epochs
        and "train.epochs" not in searched
    ):
        notes.append(
            f"# train.epochs: {epochs}, the recipe's (each trial of the search trained {trial_epochs})."
        )
    if data.get("expect"):
        try:
            data["expect"] = rewritten_expect(data)
            notes.append("# expect: computed for this trial's model (`kbuilder check` verifies it).")
        except (Unknown, KBuilderError):
            del data["expect"]
            notes.append(
                "# expect: dropped; the tuned spec's figures described another model and this one's "
                "are known only once built (`kbuilder build` shows them)."
            )
    return data, notes


def write_best_spec(study: optuna.Study, trial: FrozenTrial, path: Path) -> Path:
    """The tuned spec with the best trial's values, without `search`, as YAML."""
    data, notes = best_spec_data(study, trial)
    header = (
        f"# Best trial ({trial.number}) of the kbuilder tune study '{study.study_name}': "
        f"{study.user_attrs['search']['metric']} = {trial.value:.6g}.\n"
        f"# Tuned from {study.user_attrs.get('spec_file')}; train it with `kbuilder train {path.name}`.\n"
    )
    header += "".join(f"{line}\n" for line in notes)
    text = header + yaml.dump(data, Dumper=CompactDumper, sort_keys=False, allow_unicode=True)
    atomic.write_text(path, text, mode=REPORT_MODE)
    return path

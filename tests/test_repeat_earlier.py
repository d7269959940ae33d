"""`${prev(k)}` in a repeated body: earlier iterations' outputs (NASNet's cells take the two
previous cells' outputs), with located errors where an iteration reaches before the input."""

from __future__ import annotations

import textwrap

import pytest

from kbuilder import api
from kbuilder.errors import SpecError
from kbuilder.graph import expand
from kbuilder.spec import loads_spec

CELLS = textwrap.dedent("""\
    name: cells
    inputs: {image: {shape: [8, 8, 3]}}
    layers:
      - conv2d: {name: stem, filters: 4, kernel_size: 3, padding: same}
      - repeat:
          name: cells
          times: 3
          layers:
            - conv2d: {name: a, inputs: "${prev(1)}", filters: 4, kernel_size: 3, padding: same}
            - conv2d: {name: b, inputs: "${prev(2, 'stem')}", filters: 4, kernel_size: 1}
            - add: {name: out, inputs: [a, b]}
    """)


def inputs_of(text: str) -> dict[str, list[str]]:
    return {node.name: node.inputs for node in expand(loads_spec(text, file="cells.yaml")).nodes}


def test_prev_names_the_outputs_of_earlier_iterations():
    wiring = inputs_of(CELLS)
    assert wiring["cells-0-a"] == ["stem"]  # prev(1) in the first iteration: the repeat's input
    assert wiring["cells-0-b"] == ["stem"]  # prev(2) reaches before it: the fallback
    assert wiring["cells-1-a"] == ["cells-0-out"]
    assert wiring["cells-1-b"] == ["stem"]  # prev(2) in iteration 1: the repeat's input
    assert wiring["cells-2-b"] == ["cells-0-out"]  # two iterations back
    assert wiring["cells-2-out"] == ["cells-2-a", "cells-2-b"]  # own layers found first


def test_a_model_with_prev_builds():
    built = api.build(loads_spec(CELLS))
    assert tuple(built.model.outputs[0].shape) == (None, 8, 8, 4)
    assert built.model.count_params() == (27 * 4 + 4) + 3 * ((36 * 4 + 4) + (4 * 4 + 4))


def test_prev_as_a_block_argument_and_with_a_renamed_index():
    text = textwrap.dedent("""\
        name: cells
        inputs: {image: {shape: [8, 8, 4]}}
        blocks:
          cell:
            params: {skip: null}
            layers:
              - conv2d: {name: c, filters: 4, kernel_size: 1}
              - add: {inputs: [c, "${skip}"]}
        layers:
          - repeat:
              name: cells
              times: 3
              index: i
              layers:
                - block: {use: cell, name: cell, args: {skip: "${prev(2) if i >= 1 else prev(1)}"}}
        """)
    wiring = inputs_of(text)
    assert wiring["cells-0-cell-add_1"] == ["cells-0-cell-c", "image"]
    assert wiring["cells-1-cell-add_1"] == ["cells-1-cell-c", "image"]
    assert wiring["cells-2-cell-add_1"] == ["cells-2-cell-c", "cells-0-cell-add_1"]


def test_nested_repeats_prev_is_the_innermost():
    text = textwrap.dedent("""\
        name: nested
        inputs: {x: {shape: [4]}}
        layers:
          - repeat:
              name: outer
              times: 2
              layers:
                - repeat:
                    name: inner
                    times: 2
                    layers:
                      - dense: {name: d, units: 4}
                      - add: {name: s, inputs: [d, "${prev(1)}"]}
        """)
    wiring = inputs_of(text)
    assert wiring["outer-0-inner-1-s"] == ["outer-0-inner-1-d", "outer-0-inner-0-s"]
    assert wiring["outer-1-inner-0-s"] == ["outer-1-inner-0-d", "outer-0-inner-1-s"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "${prev(2)}",
            (
                "prev(2) in iteration 0 of repeat 'cells' reaches before the repeat's input (prev(1) is "
                "the input there); name the layer to take instead, e.g. prev(2, 'stem'), or choose by the "
                "iteration: prev(2) if index >= 1 else prev(1)"
            ),
        ),
        ("${prev(0)}", "prev(k) takes a whole number k >= 1"),
        ("${prev(1.5)}", "prev(k) takes a whole number k >= 1"),
        ("${prev()}", "got 0 arguments"),
        ("${prev(2, 3)}", "the name is a layer's, in quotes"),
        ("${prev}", "'prev' is a function here: call it, e.g. prev(1)"),
        ("${prev(k=1)}", "calls something expressions do not allow"),
    ],
)
def test_bad_prev_is_a_located_error(expression, message):
    text = CELLS.replace("\"${prev(2, 'stem')}\"", f'"{expression}"')
    with pytest.raises(SpecError) as caught:
        expand(loads_spec(text, file="cells.yaml"))
    assert "cells.yaml:10:11" in str(caught.value) and message in str(caught.value)


def test_prev_outside_a_repeat_is_refused():
    text = CELLS.replace("- conv2d: {name: stem,", '- conv2d: {inputs: "${prev(1)}", name: stem,')
    with pytest.raises(SpecError, match=r"cells\.yaml:4:5: .*and prev\(k\) inside a repeat"):
        expand(loads_spec(text, file="cells.yaml"))


def test_a_prev_fallback_naming_no_layer_is_an_undefined_layer():
    text = CELLS.replace("'stem'", "'stme'")
    with pytest.raises(SpecError, match="undefined layer 'stme' - did you mean 'stem'"):
        expand(loads_spec(text, file="cells.yaml"))

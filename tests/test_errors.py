"""Bad specs give one located, readable message each: file:line:col, spec path, what was
expected and received, and a suggestion."""

from __future__ import annotations

import textwrap

import pytest

from kbuilder.errors import BuildError, SpecError

HEAD = "name: m\ninputs:\n  image: {shape: [32, 32, 1]}\nlayers:\n"


def problems(layers: str, *, build: bool = False, head: str = HEAD) -> str:
    from kbuilder import api
    from kbuilder.spec import loads_spec

    text = head + textwrap.indent(textwrap.dedent(layers), "  ")
    with pytest.raises(SpecError) as info:
        loaded = loads_spec(text, file="net.yaml")
        api.build(loaded) if build else api.validate(loaded)
    return str(info.value)


@pytest.mark.parametrize(
    "layers,expected",
    [
        (
            "- conv2: {filters: 6, kernel_size: 5}\n",
            "net.yaml:5:5: layers[0]: unknown layer kind 'conv2' - did you mean 'conv2d'?",
        ),
        (
            "- conv2d: {filters: 6, kernel_sise: 5}\n",
            (
                "net.yaml:5:5: layers[0].conv2d.kernel_size: missing required field 'kernel_size'\n"
                "net.yaml:5:26: layers[0].conv2d.kernel_sise: unknown field 'kernel_sise' - did you mean 'kernel_size'?"
            ),
        ),
        (
            "- conv2d: {filters: six, kernel_size: 5}\n",
            "net.yaml:5:14: layers[0].conv2d.filters: expected a valid integer, unable to parse string as an integer; got 'six' (str)",
        ),
        (
            "- conv2d: {filters: 6, kernel_size: 5, padding: vaild}\n",
            "net.yaml:5:42: layers[0].conv2d.padding: expected one of 'valid' or 'same', got 'vaild' (str) - did you mean 'valid'?",
        ),
        (
            "- conv2d:\n  filters: 6\n  kernel_size: 5\n",
            (
                "net.yaml:5:5: layers[0]: a layer entry has exactly one key, the layer kind, but this one has 'conv2d', "
                "'filters', 'kernel_size'; indent the arguments under the kind (e.g. `- conv2d:` then `    filters: 6` on the next line)"
            ),
        ),
        (
            "- dropout: 1.5\n",
            "net.yaml:5:5: layers[0].dropout: expected a value less than 1; got 1.5 (float)",
        ),
        (
            "- flatten\n- dense: {units: 3, inputs: [flaten]}\n",
            "net.yaml:6:5: layers[1]: undefined layer 'flaten' - did you mean 'flatten_0'?",
        ),
        (
            "- flatten: {name: a}\n- dense: {name: a, units: 3}\n",
            "net.yaml:6:5: layers[1]: duplicate layer name 'a' (first used at line 5)",
        ),
        (
            "- dense: {name: a, units: 3, inputs: [b]}\n- dense: {name: b, units: 3, inputs: [a]}\n",
            "net.yaml:5:5: layers[0]: layers form a cycle: a -> b -> a",
        ),
        (
            "- flatten: {name: f}\n- dense: {name: d, units: 3, inputs: [image]}\n",
            "net.yaml:5:5: layers[0]: the output of layer 'f' is never used; connect it or list it under `outputs:`",
        ),
        (
            '- dense: {units: "${width}"}\n',
            "net.yaml:5:5: layers[0]: unknown parameter 'width' (known: none)",
        ),
        (
            "- block: {use: vgg}\n",
            "net.yaml:5:13: layers[0].block.use: unknown block 'vgg' (known: none defined under `blocks:`)",
        ),
    ],
)
def test_spec_errors(layers, expected):
    assert problems(layers) == expected


def test_errors_inside_blocks_name_the_definition_and_the_use():
    head = HEAD.replace(
        "layers:\n",
        textwrap.dedent("""\
        blocks:
          cbr:
            params: {filters: null}
            layers:
              - conv2d: {filters: "${filters}", kernel_size: 3, padding: sme}
        layers:
        """),
    )
    message = problems(
        "- block: {use: cbr, args: {filters: 8}}\n- block: {use: cbr, args: {filtres: 8}}\n", head=head
    )
    lines = message.splitlines()
    assert lines[0] == (
        "net.yaml:8:57: blocks.cbr.layers[0].conv2d.padding: expected one of 'valid' or 'same', got 'sme' (str)"
        " - did you mean 'same'? (in block 'cbr' used at net.yaml:10:13: layers[0].block.use)"
    )
    # The second use's own mistakes are reported in the same run; the body's, once.
    assert lines[1:] == [
        "net.yaml:11:30: layers[1].block.args.filtres: block 'cbr' has no parameter 'filtres' - did you mean 'filters'?",
        "net.yaml:11:13: layers[1].block.use: block 'cbr' needs the argument 'filters'",
    ]


def test_every_bad_entry_is_reported_in_one_run():
    message = problems(
        "- conv2: {filters: 6, kernel_size: 5}\n- conv2d: {filters: 6, kernel_size: 5, paddin: same}\n"
        "- repeat: {times: 2, layers: [{dense: {units: -3}}]}\n- dense: {units: 10, inputs: [nowhere]}\n"
    )
    assert message.splitlines() == [
        "net.yaml:5:5: layers[0]: unknown layer kind 'conv2' - did you mean 'conv2d'?",
        "net.yaml:6:42: layers[1].conv2d.paddin: unknown field 'paddin' - did you mean 'padding'?",
        "net.yaml:7:42: layers[2].repeat.layers[0].dense.units: expected a value greater than 0; got -3 (int)",
    ]  # references are checked once every entry is valid


def test_block_argument_errors():
    head = HEAD.replace(
        "layers:\n", "blocks:\n  cbr:\n    params: {filters: null}\n    layers: [flatten]\nlayers:\n"
    )
    assert problems("- block: {use: cbr, args: {filtres: 8}}\n", head=head) == (
        "net.yaml:9:30: layers[0].block.args.filtres: block 'cbr' has no parameter 'filtres' - did you mean 'filters'?\n"
        "net.yaml:9:13: layers[0].block.use: block 'cbr' needs the argument 'filters'"
    )


@pytest.mark.parametrize(
    "layers,expected",
    [
        (
            "- conv2d: {name: C5, filters: 120, kernel_size: 5}\n- conv2d: {filters: 3, kernel_size: 30}\n",
            "net.yaml:6:5: layers[1]: layer 'conv2d_1' (conv2d 30x30, valid) needs at least 30x30 input, gets 28x28",
        ),
        (
            "- max_pooling2d: {pool_size: 64}\n",
            "net.yaml:5:5: layers[0]: layer 'max_pooling2d_0' (max_pooling2d 64x64, valid) needs at least 64x64 input, gets 32x32",
        ),
        (
            (
                "- conv2d: {name: a, filters: 4, kernel_size: 3, padding: same}\n"
                "- max_pooling2d: {name: b, inputs: [image]}\n- add: {inputs: [a, b]}\n"
            ),
            (
                "net.yaml:7:5: layers[2]: layer 'add_2' (add) needs input shapes that broadcast (each size equal or 1, "
                "aligned from the right, e.g. (14x14x32) and (1x1x32)); gets (32x32x4) and (16x16x1)"
            ),
        ),
        (
            "- conv2d: {filters: 5, kernel_size: 3, groups: 2}\n",
            "net.yaml:5:5: layers[0]: layer 'conv2d_0' (conv2d) cannot be built on input (None, 32, 32, 1): ",
        ),
    ],
)
def test_build_errors(layers, expected):
    message = problems(layers, build=True)
    assert message.startswith(expected)


def test_build_error_type():
    with pytest.raises(BuildError):
        problems("- max_pooling2d: {pool_size: 64}\n", build=True)
        raise BuildError([])


def test_ctrl_c_is_noted_even_when_a_library_swallows_the_keyboard_interrupt():
    """JAX's gc callback (and any finalizer) swallows a KeyboardInterrupt raised inside it; the
    CLI's handler also sets a flag the tuner reads, and the swallowed one is not printed."""
    import gc
    import io
    import signal
    import sys

    from kbuilder.errors import ctrl_c_pressed, forget_ctrl_c, note_ctrl_c

    previous_handler, previous_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    swallowed: list[bool] = []

    def callback(phase, info):
        if phase == "start" and not swallowed:
            swallowed.append(True)
            signal.raise_signal(signal.SIGINT)  # lands here, inside the gc callback

    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        forget_ctrl_c()
        note_ctrl_c()
        assert not ctrl_c_pressed()
        gc.callbacks.append(callback)
        try:
            gc.collect()  # the KeyboardInterrupt dies in the callback ("Exception ignored")
        finally:
            gc.callbacks.remove(callback)
        printed = sys.stderr.getvalue()
    finally:
        sys.stderr = stderr
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        pressed = ctrl_c_pressed()
        forget_ctrl_c()  # the tests after this one call the CLI in this process
    assert swallowed and pressed
    assert "KeyboardInterrupt" not in printed and "Traceback" not in printed, printed


def test_ctrl_c_during_an_import_is_raised_once_the_import_is_done(tmp_path, monkeypatch):
    """A KeyboardInterrupt in the middle of importing TensorFlow or JAX leaves a half-built
    module behind; the CLI's handler lets the import finish and interrupts right after it."""
    import signal
    import sys
    import time

    import pytest

    from kbuilder.errors import forget_ctrl_c, note_ctrl_c

    (tmp_path / "kbuilder_slow_import_probe.py").write_text(
        "import signal, time\n"
        "signal.raise_signal(signal.SIGINT)\n"
        "started = time.monotonic()\n"
        "while time.monotonic() - started < 0.3:\n"
        "    pass\n"
        "DONE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    previous_handler, previous_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    try:
        note_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            import kbuilder_slow_import_probe  # noqa: F401

            time.sleep(5)  # the interrupt lands here, after the import
        assert sys.modules["kbuilder_slow_import_probe"].DONE
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        sys.modules.pop("kbuilder_slow_import_probe", None)
        forget_ctrl_c()

"""DOT text -> the file the user asked for, by its extension, written atomically.

Layout is done by `graphviz-pure`, a pure-Rust port of Graphviz's `dot` shipped as a
wheel on PyPI (a kbuilder dependency), so diagrams work after `pip install` with no
system package. It writes SVG and PNG itself; it has no PDF writer, so a PDF is drawn
from its layout (`-Tjson`, the xdot drawing operations) by matplotlib (kbuilder.diagram.pdf).
The binary is looked up next to the running Python first, so a system Graphviz on PATH
is used only when the wheel's binary is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from kbuilder.errors import RuntimeFailure, UsageError, did_you_mean
from kbuilder.storage import atomic

LAYOUT_COMMAND = "graphviz-pure"
LAYOUT_TIMEOUT_S = 300  # a spec is untrusted input: never wait forever on a layout
PNG_DPI = 150  # dot's default 72 dpi makes 10 pt labels hard to read
# Browsers and image viewers refuse bitmaps over 32767 pixels a side; a long chain
# (DenseNet-121 unfolded is 10 m tall) is scaled down to fit (dot's `size`, in inches).
PNG_MAX_PIXELS = 32700
# A drawing longer than this (pixels at PNG_DPI) is too long to read on a screen: a note says
# how to draw it smaller. Full ResNet-50 is 813 × 29,409 pixels (506 × 24,434 at --detail
# minimal); --collapse draws it in 346 × 4,210.
READABLE_PIXELS = 10_000
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".html": "html"}


def output_format(path: Path) -> str:
    """The format a file name asks for; refuses the ones we cannot write."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        hint = did_you_mean(suffix, FORMATS) if suffix else " (the name has no extension)"
        raise UsageError(
            f"cannot tell the diagram format from '{path.name}'{hint}; end the name with one of {known}"
        )
    return FORMATS[suffix]


def layout_command() -> str:
    """The `graphviz-pure` executable: the one installed with this Python, else on PATH."""
    here = shutil.which(LAYOUT_COMMAND, path=str(Path(sys.executable).parent))
    found = here or shutil.which(LAYOUT_COMMAND)
    if found is None:
        raise RuntimeFailure(
            f"the layout program '{LAYOUT_COMMAND}' is not installed; `pip install graphviz-pure` "
            "(a kbuilder dependency), or write DOT (`-o model.dot`) and lay it out elsewhere"
        )
    return found


def _png_options() -> list[str]:
    inches = PNG_MAX_PIXELS / PNG_DPI
    return [f"-Gdpi={PNG_DPI}", f"-Gsize={inches:.2f},{inches:.2f}"]


def run_layout(dot_text: str, fmt: str) -> bytes:
    """Run `graphviz-pure -T<fmt>` on DOT text; returns its output."""
    try:
        done = subprocess.run(
            [layout_command(), f"-T{fmt}"] + (_png_options() if fmt == "png" else []),
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=LAYOUT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(
            f"the diagram layout took longer than {LAYOUT_TIMEOUT_S} s; "
            "draw fewer boxes with --collapse or --depth"
        ) from None
    except OSError as exc:
        raise RuntimeFailure(f"cannot run '{LAYOUT_COMMAND}': {exc}") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeFailure(
            f"'{LAYOUT_COMMAND} -T{fmt}' failed (exit {done.returncode}): "
            + (message[-1] if message else "no output")
        )
    return done.stdout


def render(dot_text: str, fmt: str) -> bytes:
    """The bytes of the diagram in `fmt` (one of FORMATS' values)."""
    if fmt == "dot":
        return dot_text.encode("utf-8")
    if fmt == "pdf":
        from kbuilder.diagram.pdf import xdot_to_pdf  # matplotlib, for PDF files only

        layout = run_layout(dot_text, "json")
        try:
            return xdot_to_pdf(layout)
        except ImportError as exc:
            raise RuntimeFailure(
                f"a PDF diagram is drawn with matplotlib, which is missing ({exc}); "
                "`pip install matplotlib` (a kbuilder dependency), or write .svg or .png"
            ) from None
    if fmt == "html":  # the page needs the Diagram too: kbuilder.diagram.draw makes it
        raise ValueError("render() does not write HTML; use kbuilder.diagram.html.to_html")
    return run_layout(dot_text, fmt)


def drawing_pixels(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height of a drawn diagram in pixels (an SVG's points at PNG_DPI), or None
    for a format without a size to read (DOT, PDF)."""
    if fmt == "png" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "svg":
        found = _SVG_SIZE.search(data[:2000].decode("utf-8", "replace"))
        if found:
            scale = PNG_DPI / 72
            return round(float(found[1]) * scale), round(float(found[2]) * scale)
    return None


_SVG_SIZE = re.compile(r'<svg[^>]*?width="([\d.]+)pt"[^>]*?height="([\d.]+)pt"', re.DOTALL)


def check_target(path: Path) -> str:
    """The format to write `path` in, refusing a bad name or a missing folder up front
    (before a model is built for nothing)."""
    fmt = output_format(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write '{path}': the folder '{path.parent}' does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write '{path}': it is a folder")
    return fmt


def write_atomically(path: Path, data: bytes) -> None:
    """Write next to the target and rename over it: a failure never leaves half a file.
    Readable like any new file under the umask (a diagram is not private)."""
    atomic.write_bytes(path, data, mode=atomic.readable_mode())

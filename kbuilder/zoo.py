"""The bundled specs: `specs/` in a checkout, shipped as the package data `kbuilder.zoo_specs`.

setup.py maps the package `kbuilder.zoo_specs` to the checkout's `specs/` folder (the one
source of truth), so a wheel carries the specs inside the package and an editable install
points at the folder itself; both are found through `importlib.resources`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kbuilder.errors import UsageError
from kbuilder.spec import load_spec

ZOO_PACKAGE = "kbuilder.zoo_specs"
_CHECKOUT = Path(__file__).resolve().parent.parent


def _checkout_specs() -> Path | None:
    """The `specs/` of the checkout this code runs from (a `pyproject.toml` beside the
    package), so code and specs come from one tree even when another copy is installed."""
    specs = _CHECKOUT / "specs"
    return specs if (_CHECKOUT / "pyproject.toml").is_file() and specs.is_dir() else None


def _packaged_specs() -> list[Path]:
    try:
        package = resources.files(ZOO_PACKAGE)
    except ModuleNotFoundError:  # a source tree that was never installed
        return []
    # Installed wheels are unpacked on disk, so each resource is a real file.
    return [Path(str(entry)) for entry in package.iterdir() if entry.name.endswith(".yaml")]


def bundled_specs() -> list[Path]:
    """Every bundled spec, one per name (the checkout's first, then the installed package data)."""
    checkout = _checkout_specs()
    candidates = [*(sorted(checkout.glob("*.yaml")) if checkout else []), *sorted(_packaged_specs())]
    seen: dict[str, Path] = {}
    for path in candidates:
        seen.setdefault(path.stem, path)
    return sorted(seen.values(), key=lambda p: p.stem)


_BARE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def is_bundled_name(text: str) -> bool:
    """A bare name (`resnet50`), which may mean a bundled spec; a path never does."""
    return bool(_BARE_NAME.match(text))


def find_bundled(name: str) -> Path | None:
    """The bundled spec called `name` (a bare name, no directory or suffix), if any."""
    if not is_bundled_name(name):
        return None
    return next((p for p in bundled_specs() if p.stem == name), None)


def spec_path(spec: str) -> Path:
    """A spec file path, or the name of a bundled spec like `lenet5`.

    Only a bare name (letters, digits, '_' and '-': no '/', no '.yaml') means a bundled
    spec, so a mistyped path such as `/no/such/dir/resnet50.yaml` is an error rather
    than silently the bundled ResNet-50. An existing path always wins."""
    path = Path(spec)
    if os.path.lexists(spec):
        return path
    bundled = find_bundled(spec) if is_bundled_name(spec) else None
    if bundled is not None:
        return bundled
    hint = ""
    if find_bundled(path.stem) is not None:
        hint = f"; to use the bundled spec, give its bare name: {path.stem}"
    raise UsageError(
        f"no such spec file: {spec}{hint or ' (nor a bundled spec of that name; see `kbuilder zoo`)'}"
    )


@dataclass
class ZooEntry:
    name: str
    path: Path
    description: str
    params: int | None
    trainable: bool


def zoo_entries() -> list[ZooEntry]:
    """Each bundled spec with its description and expected parameter count (no build)."""
    entries = []
    for path in bundled_specs():
        spec = load_spec(path).spec
        params = spec.expect.params if spec.expect else None
        entries.append(ZooEntry(spec.name, path, spec.description, params, spec.train is not None))
    return entries

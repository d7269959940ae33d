"""What pyproject.toml cannot say: the zoo (`specs/`, the source of truth) ships as the
package `kbuilder.zoo_specs`, and the tests colocated with the layers stay out of the wheel."""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


def _test_only(module: str) -> bool:
    return module.endswith("_test") or module == "_testing"


class BuildPyWithoutTests(build_py):
    """Leaves `*_test.py` and the layers' test helpers (`_testing.py`) out of the wheel."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [(pkg, module, path) for pkg, module, path in modules if not _test_only(module)]


setup(
    packages=[*find_packages(include=["kbuilder*"]), "kbuilder.zoo_specs"],
    package_dir={"kbuilder.zoo_specs": "specs"},
    cmdclass={"build_py": BuildPyWithoutTests},
)

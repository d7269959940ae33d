"""kbuilder: declarative YAML model builder for Keras 3.

The Python API is `kbuilder.api` (one function per command):

    import kbuilder.api as kb
    built = kb.build("lenet5_modern")

Import stays light: TensorFlow and Keras load only when a model is built.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kbuilder")  # the one version string: pyproject.toml's, as installed
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

"""kbuilder: declarative YAML model builder for Keras 3.

Import stays light: TensorFlow and Keras load only when a model is built.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one version string is pyproject.toml's, read from the installed metadata
    __version__ = version("kbuilder")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

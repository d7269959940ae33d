"""kbuilder: declarative YAML model builder for Keras 3.

Import stays light: TensorFlow and Keras load only when a model is built.
"""

__version__ = "0.1.0"

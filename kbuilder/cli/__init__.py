"""Command-line interface (one module per command)."""

from kbuilder.errors import note_ctrl_c

# From the first import on, Ctrl-C is noted, and raised only once `main` runs: a traceback from
# the middle of an import is no answer to Ctrl-C, and the start-up imports run code (finalizers,
# gc callbacks) that would swallow a KeyboardInterrupt anyway.
note_ctrl_c(raise_now=False)

"""Choosing the Keras backend: Keras reads KERAS_BACKEND once, at its first import."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Self, get_args

from kbuilder.errors import UsageError, debugging, did_you_mean
from kbuilder.spec.train import BackendName

# The one list of Keras backends, read from the spec's `train.backend` type: every `--backend`
# option and select_backend take it from here.
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
DEFAULT_BACKEND: BackendName = "tensorflow"
# The package each backend needs, for the error message when it is missing.
_BACKEND_PACKAGE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def active_backend() -> str | None:
    """The backend Keras runs on if it is already imported, else None."""
    if "keras" not in sys.modules:
        return None
    import keras  # imported already (checked above): this only names it

    return keras.backend.backend()


def check_backend(name: str) -> BackendName:
    """`name` if it is a Keras backend kbuilder runs on; UsageError (with a suggestion) otherwise."""
    if name not in BACKENDS:
        raise UsageError(
            f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}; choose one of {', '.join(BACKENDS)}"
        )
    return name


def select_backend(name: str | None) -> str:
    """Make `name` (or KERAS_BACKEND, or TensorFlow) the backend of the Keras about to be imported.

    Returns the backend in force. Raises UsageError for an unknown or missing backend, or
    when Keras was already imported with another one (it cannot switch in one process).
    """
    chosen = check_backend(name or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
    running = active_backend()
    if running is not None:
        if running != chosen:
            raise UsageError(
                f"Keras is already running on the {running} backend in this process; "
                f"start a new process to use {chosen} (or set KERAS_BACKEND={chosen})"
            )
        return running
    if importlib.util.find_spec(_BACKEND_PACKAGE[chosen]) is None:
        raise UsageError(
            f"the {chosen} backend needs the '{_BACKEND_PACKAGE[chosen]}' package, which is not installed"
        )
    os.environ["KERAS_BACKEND"] = chosen
    if chosen == "tensorflow":
        prefer_onednn()
    elif chosen == "torch":
        passive_openmp_threads()
    return chosen


def passive_openmp_threads() -> None:
    """Let PyTorch's idle OpenMP threads sleep instead of spinning (unless the user chose,
    OMP_WAIT_POLICY). Spinning threads compete with the main thread, and with every other
    process, for the cores: on the project's 2-core machine under load the MNIST MLP on
    Keras-on-torch took 506 ms a batch with the default policy against 11.6 ms with PASSIVE
    (tools/bench_train.md). OpenMP reads the variable when torch loads it, so this runs first.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# Set by the CLI: TensorFlow's start-up log lines are noise in a command's output. A library
# leaves the process's logging as it is unless its user asks too.
_quiet_startup = False


def keep_startup_quiet(enabled: bool = True) -> None:
    """Hide TensorFlow's start-up log lines when kbuilder imports it (see quiet_tensorflow_startup)."""
    global _quiet_startup
    _quiet_startup = enabled


def before_keras(backend: str | None = None) -> None:
    """Called by kbuilder.api once a spec has validated, just before Keras is first imported;
    `backend` is the one the work will run on when it is not KERAS_BACKEND's."""
    if _quiet_startup:
        quiet_tensorflow_startup(backend)


def prefer_onednn() -> None:
    """Turn on TensorFlow's oneDNN kernels unless the user chose (TF_ENABLE_ONEDNN_OPTS=0/1).

    TensorFlow enables them by itself only on CPUs with AVX-512 VNNI/BF16 or AMX. Elsewhere
    its fallback convolutions are 2-4x slower: on the project's AMD EPYC (AVX2) LeNet-5's
    first convolution took 26 ms (weight gradient, batch 128) against 6 ms with oneDNN.
    TensorFlow reads the variable once, at import, so this runs before Keras imports it.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def onednn_enabled() -> bool:
    """Whether the TensorFlow in this process runs its oneDNN kernels (False if unknown)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API says this
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported (a GPU machine may have JAX only)."""
    loaded = sys.modules.get("tensorflow", False)
    if loaded is None:  # import blocked on purpose (sys.modules entry set to None)
        return False
    if loaded:
        return True
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def tensorboard_available() -> bool:
    """TensorBoard logs need TensorFlow's summary ops and the tensorboard package."""
    return tensorflow_available() and importlib.util.find_spec("tensorboard") is not None


def quiet_tensorflow_startup(backend: str | None = None) -> None:
    """Keep TensorFlow's start-up log lines (oneDNN notices, "failed call to cuInit", absl's
    "All log messages before absl::InitializeLog()") out of a command's output.

    TF_CPP_MIN_LOG_LEVEL=3 silences what TensorFlow logs once its logging is set up (cuInit
    is logged at the first operation), but the lines logged while its C++ libraries load
    ignore it: those are written straight to file descriptor 2, so TensorFlow is imported
    here with that descriptor captured (and replayed if the import fails). A user's own
    TF_CPP_MIN_LOG_LEVEL wins; with --debug (KBUILDER_DEBUG=1) nothing is hidden.
    """
    if debugging():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # Importing TensorFlow imports Keras, which then fixes its backend (KERAS_BACKEND's, else
    # TensorFlow): only when that is the backend the command runs on. On JAX and torch too:
    # Keras seeds TensorFlow's generator when TensorFlow is installed (set_random_seed), so a
    # training run imports it anyway, and its start-up lines would come out there.
    keras_will_take = os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    backend = backend or keras_will_take
    if backend != keras_will_take or "tensorflow" in sys.modules or not tensorflow_available():
        return
    prefer_onednn()  # read at import, as select_backend would have set it
    with _captured_stderr_fd() as captured:
        try:
            import tensorflow  # noqa: F401  (the point: imported here, its start-up lines captured)
        except BaseException:
            captured.replay = True
            raise
    import absl.logging  # comes with TensorFlow, imported just above

    # TensorFlow's Python warnings go through absl: among them "Importing a function ... with
    # ops with unsaved custom gradients", twice when a JAX model's SavedModel is verified.
    absl.logging.set_verbosity(absl.logging.ERROR)


@contextlib.contextmanager
def native_lines_hidden() -> Iterator[None]:
    """Hide what C++ code writes to file descriptor 2 inside the block (TFLite's converter
    and interpreter log there, past TF_CPP_MIN_LOG_LEVEL); replayed if the block raises, so
    a failure keeps its explanation. Nothing is hidden with --debug (KBUILDER_DEBUG=1)."""
    if debugging():
        yield
        return
    with _captured_stderr_fd() as captured:
        try:
            yield
        except BaseException:
            captured.replay = True
            raise


class _captured_stderr_fd:
    """Redirect file descriptor 2 (C++ writes, not only sys.stderr) into a temporary file."""

    def __enter__(self) -> Self:
        self.replay = False
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        if self.replay:
            self.file.seek(0)
            sys.stderr.write(self.file.read().decode(errors="replace"))
        self.file.close()

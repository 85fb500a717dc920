"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ start-up lines (oneDNN notice, "could not find cuda drivers", cuInit
failure) ignore TF_CPP_MIN_LOG_LEVEL, and they would bury the one-line messages the
CLI promises. They are written while TensorFlow loads and first looks for devices, so
file descriptor 2 points at /dev/null for exactly that long (:func:`stderr_to_devnull`,
also used around model conversion, which logs the same way).
"""

from __future__ import annotations

import contextlib
import os
import sys

from livemask.core.errors import LivemaskError


class TensorFlowMissing(LivemaskError):
    """TensorFlow is needed (a .keras model, explain, train, export) but not installed: exit 2."""

    exit_code = 2


@contextlib.contextmanager
def stderr_to_devnull():
    """Point file descriptor 2 (C++ and Python writes alike) at /dev/null for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise TensorFlowMissing(
            "TensorFlow is not installed: .keras models, explain, train and export need it "
            "(pip install 'livemask[tf]'); a lean install runs exported .onnx / .tflite models"
        )
    with stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()
        tf.constant(0.0) + 1.0  # first kernel: the cuInit message comes here

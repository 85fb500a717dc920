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
    with stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()
        tf.constant(0.0) + 1.0  # first kernel: the cuInit message comes here

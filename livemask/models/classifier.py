"""The mask classifier: loads the Keras model and classifies face crops in one batched call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np

from livemask.config import PROJECT_ROOT
from livemask.core.errors import ModelFileError
from livemask.core.params import Range
from livemask.models.backends.base import DEFAULT_BATCH_SIZES, DEFAULT_MODEL, FaceClassifier, check_batch_sizes

log = logging.getLogger(__name__)


def resolve_model_path(model_path: str) -> Path:
    p = Path(model_path).expanduser()
    if not p.is_absolute() and not p.exists() and (PROJECT_ROOT / p).exists():
        p = PROJECT_ROOT / p
    return p


def load_keras_model(model_path: str, key: str = "classifier.model_path"):
    """Load a .keras/.h5 classifier with safe_mode; a missing or bad file is a one-line error."""
    p = resolve_model_path(model_path)
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p} (set by config key '{key}')")
    if p.suffix not in (".keras", ".h5"):
        raise ModelFileError(f"{p}: expected a .keras or .h5 file (config key '{key}')")
    from livemask.core.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    import livemask.models.modelspec  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise ModelFileError(f"{p}: cannot load model ({type(err).__name__}: {first_line})") from None


class MaskClassifier(FaceClassifier):
    """The TensorFlow backend: a ``.keras`` model in a compiled ``tf.function``.

    Cropping, colour order and padded batches come from :class:`FaceClassifier`; this
    class loads the model, reads its spec from its contract layers and runs one batch.
    The Keras model stays available as ``.model`` for explanations.
    """

    kind = "keras"

    def __init__(self, model_path: str = DEFAULT_MODEL,
                 batch_sizes: list[Annotated[int, Range(1, 4096)]] = DEFAULT_BATCH_SIZES):
        self.model = load_keras_model(model_path)
        import tensorflow as tf

        from livemask.models.modelspec import read_spec

        self.spec = read_spec(self.model)
        self.batch_sizes = check_batch_sizes(batch_sizes)
        s = self.spec.input_size
        self._call = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
            reduce_retracing=True,
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._call(x).numpy()

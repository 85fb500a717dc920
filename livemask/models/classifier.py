"""The mask classifier: loads the Keras model and classifies face crops in one batched call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np

from livemask.config import PROJECT_ROOT
from livemask.core.errors import ModelFileError
from livemask.core.params import Range
from livemask.core.types import Detections, Predictions, check_array
from livemask.models.crop import crop_faces

log = logging.getLogger(__name__)

DEFAULT_MODEL = "models/mask_classifier.keras"


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
    import keras

    import livemask.models.modelspec  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise ModelFileError(f"{p}: cannot load model ({type(err).__name__}: {first_line})") from None


class MaskClassifier:
    """Classifies BGR face crops; the model's own spec says size, colour order and classes.

    ``batch_sizes``: inputs are padded up to the next of these sizes (larger inputs are
    split into chunks of the largest), so the compiled function sees a fixed set of shapes.
    """

    def __init__(self, model_path: str = DEFAULT_MODEL,
                 batch_sizes: list[Annotated[int, Range(1, 4096)]] = (1, 2, 4, 8, 16, 32)):
        import tensorflow as tf

        from livemask.models.modelspec import read_spec

        self.model = load_keras_model(model_path)
        self.spec = read_spec(self.model)
        self.batch_sizes = tuple(sorted(int(b) for b in batch_sizes))
        if not self.batch_sizes or self.batch_sizes[0] < 1:
            raise ModelFileError(f"classifier.batch_sizes must be positive integers, got {list(batch_sizes)}")
        s = self.spec.input_size
        self._call = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
            reduce_retracing=True,
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def crops(self, image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
        """BGR uint8 crops (N, S, S, 3) for the detections, cut by the model's crop rule."""
        return crop_faces(image_bgr, detections.boxes, self.spec.input_size, self.spec.crop_margin)

    def prepare(self, crops_bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 crops -> the float32 array the model takes (its colour order, 0-255)."""
        s = self.spec.input_size
        check_array("crops", crops_bgr, (None, s, s, 3), np.uint8)
        x = crops_bgr[..., ::-1] if self.spec.channel_order == "RGB" else crops_bgr
        return np.ascontiguousarray(x, dtype=np.float32)

    def predict_prepared(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) for model-ready inputs, in padded fixed-size batches."""
        n = len(x)
        out = np.zeros((n, len(self.class_names)), np.float32)
        biggest = self.batch_sizes[-1]
        for start in range(0, n, biggest):
            chunk = x[start:start + biggest]
            size = next(b for b in self.batch_sizes if b >= len(chunk))
            if size != len(chunk):
                chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), np.float32)])
            out[start:start + biggest] = self._call(chunk).numpy()[: min(biggest, n - start)]
        return out

    def predict_crops(self, crops_bgr: np.ndarray) -> Predictions:
        if len(crops_bgr) == 0:
            return Predictions.empty(self.class_names)
        return Predictions(self.predict_prepared(self.prepare(crops_bgr)), self.class_names)

    def classify(self, image_bgr: np.ndarray, detections: Detections) -> Predictions:
        """One batched call for all faces of a frame."""
        return self.predict_crops(self.crops(image_bgr, detections))

    def warmup(self) -> None:
        s = self.spec.input_size
        for b in self.batch_sizes:
            self._call(np.zeros((b, s, s, 3), np.float32))

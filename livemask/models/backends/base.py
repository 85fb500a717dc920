"""What every classifier backend shares: crop, prepare, padded batches, predictions.

A backend only loads its model, reads the model's :class:`~livemask.models.spec.ModelSpec`
and implements :meth:`FaceClassifier._run` (probabilities for one float32 batch in the
model's colour order, 0-255). Cropping, colour order, batching and the result type are
the same for TensorFlow, ONNX Runtime and LiteRT, so a model's answer does not depend on
the runtime beyond the runtime's arithmetic.
"""

from __future__ import annotations

import numpy as np

from livemask.core.errors import ModelFileError
from livemask.core.types import Detections, Predictions, check_array
from livemask.models.crop import crop_faces
from livemask.models.spec import ModelSpec

DEFAULT_MODEL = "models/mask_classifier.onnx"  # made by ``livemask export`` from DEFAULT_KERAS_MODEL
DEFAULT_KERAS_MODEL = "models/mask_classifier.keras"  # the trained model: explanations, training, export
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def check_batch_sizes(batch_sizes) -> tuple[int, ...]:
    sizes = tuple(sorted(int(b) for b in batch_sizes))
    if not sizes or sizes[0] < 1:
        raise ModelFileError(f"classifier.batch_sizes must be positive integers, got {list(batch_sizes)}")
    return sizes


class FaceClassifier:
    """Classifies BGR face crops; the model's own spec says size, colour order and classes.

    ``batch_sizes``: inputs are split into chunks of the largest size; with ``pad_batches``
    (a backend whose compiled shapes matter) each chunk is padded up to the next listed
    size, so the runtime only ever sees that fixed set of shapes.
    """

    kind = "base"  # "keras", "onnx", "tflite": the runtime, as shown in benchmarks and logs
    pad_batches = True
    spec: ModelSpec
    batch_sizes: tuple[int, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (B, C) float32 for one model-ready batch (B, S, S, 3)."""
        raise NotImplementedError

    def crops(self, image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
        """BGR uint8 crops (N, S, S, 3) for the detections, cut by the model's crop rule."""
        return crop_faces(image_bgr, detections.boxes, self.spec.input_size, self.spec.crop_margin,
                          self.spec.crop_rule, detections.landmarks)

    def prepare(self, crops_bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 crops -> the float32 array the model takes (its colour order, 0-255)."""
        s = self.spec.input_size
        check_array("crops", crops_bgr, (None, s, s, 3), np.uint8)
        x = crops_bgr[..., ::-1] if self.spec.channel_order == "RGB" else crops_bgr
        return np.ascontiguousarray(x, dtype=np.float32)

    def predict_prepared(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) for model-ready inputs, in (padded) fixed-size batches."""
        n = len(x)
        out = np.zeros((n, len(self.class_names)), np.float32)
        biggest = self.batch_sizes[-1]
        for start in range(0, n, biggest):
            chunk = x[start:start + biggest]
            k = len(chunk)
            if self.pad_batches:
                size = next(b for b in self.batch_sizes if b >= k)
                if size != k:
                    chunk = np.concatenate([chunk, np.zeros((size - k, *chunk.shape[1:]), np.float32)])
            out[start:start + k] = self._run(np.ascontiguousarray(chunk, np.float32))[:k]
        return out

    def predict_crops(self, crops_bgr: np.ndarray) -> Predictions:
        if len(crops_bgr) == 0:
            return Predictions.empty(self.class_names)
        return Predictions(self.predict_prepared(self.prepare(crops_bgr)), self.class_names)

    def classify(self, image_bgr: np.ndarray, detections: Detections) -> Predictions:
        """One batched call for all faces of a frame."""
        return self.predict_crops(self.crops(image_bgr, detections))

    def warmup(self) -> None:
        """Run every batch size once, so the first frames do not pay for set-up."""
        s = self.spec.input_size
        for b in self.batch_sizes:
            self._run(np.zeros((b, s, s, 3), np.float32))

"""The mask classifier: loads the Keras model and classifies face crops in one batched call."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from livemask.config import PROJECT_ROOT
from livemask.core.errors import ModelFileError
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
    with p.open("rb") as fh:  # keras says "file not found" for a file that is not a zip / HDF5
        magic = fh.read(8)
    if (p.suffix == ".keras" and magic[:4] != b"PK\x03\x04") or (p.suffix == ".h5" and magic != b"\x89HDF\r\n\x1a\n"):
        kind = "a zip archive" if p.suffix == ".keras" else "an HDF5 file"
        raise ModelFileError(f"{p}: cannot load model (not {kind}, as a {p.suffix} file is; config key '{key}')")
    import keras

    import livemask.models.modelspec  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise ModelFileError(f"{p}: cannot load model ({type(err).__name__}: {first_line})") from None


MIN_INPUT, MAX_INPUT = 8, 1024


def checked_spec(model, path: str, read_spec):
    """The model's spec, after checking what ``read_spec`` assumes; every error names the file."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {what}")

    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1:
        raise bad(f"{len(inputs)} inputs; expected one image input (None, S, S, 3)")
    if len(outputs) != 1:
        raise bad(f"{len(outputs)} outputs; expected one (the class probabilities)")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise bad(f"input shape {shape}; expected (None, S, S, 3) with a fixed size S")
    if not MIN_INPUT <= int(shape[1]) <= MAX_INPUT:
        raise bad(f"input size {shape[1]} outside {MIN_INPUT}..{MAX_INPUT}")
    try:
        spec = read_spec(model)
    except ModelFileError as err:
        raise bad(str(err)) from None
    names = spec.class_names
    if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise bad(f"class names {list(names)[:10]} must be 2 or more different non-empty names")
    return spec


class MaskClassifier:
    """Classifies BGR face crops; the model's own spec says size, colour order and classes.

    ``batch_sizes``: inputs are padded up to the next of these sizes (larger inputs are
    split into chunks of the largest), so the compiled function sees a fixed set of shapes.
    """

    def __init__(self, model_path: str = DEFAULT_MODEL, batch_sizes: list = (1, 2, 4, 8, 16, 32)):
        import tensorflow as tf

        from livemask.models.modelspec import read_spec

        self.model = load_keras_model(model_path)
        self.model_path = str(resolve_model_path(model_path))
        self.spec = checked_spec(self.model, self.model_path, read_spec)
        self.batch_sizes = tuple(sorted(int(b) for b in batch_sizes))
        if not self.batch_sizes or self.batch_sizes[0] < 1:
            raise ModelFileError(f"classifier.batch_sizes must be positive integers, got {list(batch_sizes)}")
        s = self.spec.input_size
        self._call = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)],
            reduce_retracing=True,
        )
        self._probe()

    def _probe(self) -> None:
        """One forward pass on a black crop: a model that cannot run, or gives other than
        one probability per class, fails here with one line naming the file."""
        s = self.spec.input_size
        try:
            out = np.asarray(self._call(np.zeros((1, s, s, 3), np.float32)))
        except Exception as err:  # TensorFlow raises many types
            first = (str(err).splitlines() or [""])[0][:160]
            raise ModelFileError(f"{self.model_path}: the model fails on a {s}x{s} input "
                                 f"({type(err).__name__}: {first})") from None
        n = len(self.class_names)
        if out.shape != (1, n) or not np.isfinite(out).all() or abs(float(out.sum()) - 1.0) > 1e-3:
            raise ModelFileError(f"{self.model_path}: output {out.shape} is not {n} class probabilities "
                                 f"({', '.join(self.class_names)})")

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

"""The mask classifier: loads the Keras model and classifies face crops in one batched call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import numpy as np

from livemask.config import PROJECT_ROOT
from livemask.core.errors import ModelFileError, exception_line
from livemask.core.params import Range
from livemask.models.backends.base import DEFAULT_BATCH_SIZES, DEFAULT_KERAS_MODEL, FaceClassifier, check_batch_sizes

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
    with p.open("rb") as fh:  # keras says "file not found" for a file that is not a zip / HDF5
        magic = fh.read(8)
    if (p.suffix == ".keras" and magic[:4] != b"PK\x03\x04") or (p.suffix == ".h5" and magic != b"\x89HDF\r\n\x1a\n"):
        kind = "a zip archive" if p.suffix == ".keras" else "an HDF5 file"
        raise ModelFileError(f"{p}: cannot load model (not {kind}, as a {p.suffix} file is; config key '{key}')")
    import keras

    import livemask.models.keras_layers  # noqa: F401  (registers the custom layers)

    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file
        raise ModelFileError(f"{p}: cannot load model ({exception_line(err)})") from None


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


class MaskClassifier(FaceClassifier):
    """The TensorFlow backend: a ``.keras`` model in a compiled ``tf.function``.

    Cropping, colour order and padded batches come from :class:`FaceClassifier`; this
    class loads the model, reads its spec from its contract layers and runs one batch.
    The Keras model stays available as ``.model`` for explanations.
    """

    kind = "keras"

    def __init__(self, model_path: str = DEFAULT_KERAS_MODEL,
                 batch_sizes: list[Annotated[int, Range(1, 4096)]] = DEFAULT_BATCH_SIZES):
        self.model = load_keras_model(model_path)
        import tensorflow as tf

        from livemask.models.keras_layers import read_spec

        self.model_path = str(resolve_model_path(model_path))
        self.spec = checked_spec(self.model, self.model_path, read_spec)
        self.batch_sizes = check_batch_sizes(batch_sizes)
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

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._call(x).numpy()

"""Classifier backends, chosen by the model file's extension.

=========  ====================  ==========================================================
suffix     runtime               contract (class names, colour order, scaling, crop margin)
=========  ====================  ==========================================================
.keras/.h5 TensorFlow (Keras 3)  the model's Preprocess / ClassProbabilities layers
.onnx      ONNX Runtime          ONNX metadata entry ``livemask`` (JSON)
.tflite    LiteRT (ai-edge-litert) sidecar ``NAME.tflite.json``
=========  ====================  ==========================================================

All share :class:`~livemask.models.backends.base.FaceClassifier`. Only the ``.keras``
backend imports TensorFlow; an exported model runs without it. Explanations need the
Keras model: an exported backend's ``.model`` loads ``classifier.explain_model`` (the ``.keras``
file it was exported from, checked by SHA-256) on first use, or raises a one-line error naming
the extra to install when TensorFlow is missing.
"""

from __future__ import annotations

from typing import Annotated

from livemask.core.errors import ModelFileError
from livemask.core.params import Range
from livemask.models.backends.base import DEFAULT_BATCH_SIZES, DEFAULT_KERAS_MODEL, DEFAULT_MODEL, FaceClassifier

KERAS_SUFFIXES = (".keras", ".h5")
EXPORTED_SUFFIXES = (".onnx", ".tflite")

__all__ = ["DEFAULT_BATCH_SIZES", "DEFAULT_KERAS_MODEL", "DEFAULT_MODEL", "FaceClassifier", "needs_tensorflow",
           "open_classifier"]


def needs_tensorflow(model_path: str) -> bool:
    """True when ``model_path`` is a Keras model (its backend imports TensorFlow)."""
    return str(model_path).lower().endswith(KERAS_SUFFIXES)


def open_classifier(model_path: str = DEFAULT_MODEL,
                    batch_sizes: list[Annotated[int, Range(1, 4096)]] = DEFAULT_BATCH_SIZES,
                    explain_model: str | None = DEFAULT_KERAS_MODEL,
                    threads: Annotated[int, Range(0, 256)] = 0) -> FaceClassifier:
    """The ``classifier`` section of config.yaml: load ``model_path`` with the backend its suffix names.

    ``threads``: an exported model's runtime threads for one batch (0: one per core; a ``.keras`` model runs
    on TensorFlow's own threads).

    ``explain_model``: for an exported ``model_path``, the ``.keras`` file it was made from, which
    explanations load (with TensorFlow) when first asked; a ``.keras`` ``model_path`` explains itself."""
    if explain_model is not None and not needs_tensorflow(explain_model):
        raise ModelFileError(f"classifier.explain_model: expected a .keras or .h5 file, got {explain_model!r}")
    from livemask.models.backends.keras_model import resolve_model_path

    p = resolve_model_path(model_path)
    suffix = p.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        from livemask.models.backends.keras_model import MaskClassifier

        return MaskClassifier(model_path, batch_sizes)
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p} (set by config key 'classifier.model_path')")
    if suffix == ".onnx":
        from livemask.models.backends.exported import OnnxClassifier

        return OnnxClassifier(p, batch_sizes, explain_model, threads)
    if suffix == ".tflite":
        from livemask.models.backends.exported import LiteRTClassifier

        return LiteRTClassifier(p, batch_sizes, explain_model, threads)
    raise ModelFileError(f"{p}: unknown model type '{p.suffix}' (expected .keras, .onnx or .tflite; "
                         "config key 'classifier.model_path')")

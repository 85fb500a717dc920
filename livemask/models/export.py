"""Export the ``.keras`` classifier to ONNX or LiteRT, with its contract, optionally int8.

The conversion is Keras 3's own ``model.export`` (``format="onnx"`` through ``tf2onnx``,
``format="litert"`` through TensorFlow's LiteRT converter), on an input signature of
``(batch, S, S, 3)`` float32 in the model's colour order, 0-255: the model's
``Preprocess`` and ``ClassProbabilities`` layers are part of the graph, so an exported
model takes the same input and returns the same calibrated probabilities.

The contract (:class:`~livemask.models.spec.ModelSpec` plus what the file was made from)
travels with the file: inside an ONNX file as the metadata entry ``livemask``; next to
a ``.tflite`` file as ``NAME.tflite.json``, with the model file's SHA-256.

int8 (LiteRT only): weights and activations are quantised, calibrated on real face crops
cut by the inference crop rule from the faces the configured detector finds in a folder
of images (by default ``../shared/data/faces``); inputs and outputs stay float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livemask import __version__
from livemask.config import PROJECT_ROOT
from livemask.core.errors import InputImageError, LivemaskError, exception_line
from livemask.core.images import IMAGE_SUFFIXES, read_image
from livemask.models.crop import crop_face_by_rule

log = logging.getLogger(__name__)

FORMATS = ("onnx", "tflite")
QUANTIZE = ("int8",)
DEFAULT_CALIBRATION = PROJECT_ROOT.parent / "shared" / "data" / "faces"
CALIBRATION_IMAGES = 300  # images looked at for calibration faces (one face each, spread over the folder)
# what an export may differ from its Keras model on the real faces it is checked on, or it is not written
# (measured: float 1e-7 to 1e-6, int8 0.04-0.08 with the same label on all; docs/performance.md)
FLOAT_LIMIT = 1e-3  # largest |p_exported - p_keras| of a float export
INT8_AGREEMENT = 0.95  # smallest share of faces with the same label for an int8 export


class ExportError(LivemaskError):
    """The export cannot run (missing tool, bad option, no calibration faces): exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path | None
    format: str
    quantization: str
    bytes: int
    seconds: float
    calibration_faces: int
    compared_faces: int  # real face crops the exported file was checked on against the Keras model
    max_abs_diff: float | None
    label_agreement: float | None


def default_output(model_path: Path, fmt: str, quantize: str | None) -> Path:
    stem = model_path.stem + (f"_{quantize}" if quantize else "")
    return model_path.with_name(f"{stem}.{fmt}")


def list_images_recursive(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def spread(items: list, n: int, offset: float = 0.0) -> list:
    """``n`` items evenly spread over the (sorted) list, so every subfolder is represented.

    ``offset`` in [0, 1) shifts the picks by that fraction of a step (a disjoint sample).
    """
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step + offset * step)] for i in range(n)]


def face_crops(folder: Path, detector, size: int, margin: float, limit: int = CALIBRATION_IMAGES,
               offset: float = 0.0, rule: str = "box") -> np.ndarray:
    """BGR uint8 crops (N, S, S, 3): the best face of up to ``limit`` images of ``folder`` (recursive).

    Faces are found by ``detector`` and cut by the model's crop ``rule``; images without a
    face or that cannot be read are left out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"calibration folder not found: {folder}")
    paths = spread(list_images_recursive(folder), limit, offset)
    crops = []
    for path in paths:
        try:
            image = read_image(path)
        except InputImageError:
            continue
        det = detector.detect(image)
        if len(det):
            best = int(np.argmax(det.scores))
            crops.append(crop_face_by_rule(image, det.boxes[best], det.landmarks[best], size, margin, rule)[0])
    if not crops:
        raise ExportError(f"no calibration faces: {len(paths)} image(s) in {folder}, no face found in any "
                          "(name a folder of face photos with --calibration)")
    return np.stack(crops)


def _tool(module: str, package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ExportError(f"exporting needs {package}: pip install 'livemask[export]' (or pip install {package})")


def _contract(clf, source: Path, quantization: str, calibration_faces: int) -> dict:
    return {
        **clf.spec.to_dict(),
        "quantization": quantization,
        "exported_from": source.name,
        "exported_from_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "calibration_faces": calibration_faces,
        "livemask_version": __version__,
    }


def _export_onnx(clf, tmp: Path, contract: dict) -> Path:
    _tool("tf2onnx", "tf2onnx")
    _tool("onnx", "onnx")
    import onnx
    import tensorflow as tf

    s = clf.spec.input_size
    raw = tmp / "raw.onnx"
    sig = [tf.TensorSpec([None, s, s, 3], tf.float32, name="crops")]
    clf.model.export(str(raw), format="onnx", input_signature=sig, verbose=False)
    model = onnx.load(str(raw))
    del model.metadata_props[:]
    model.metadata_props.add(key="livemask", value=json.dumps(contract, sort_keys=True))
    names = ", ".join(clf.spec.class_names)
    model.doc_string = f"livemask mask classifier ({names}), exported from {contract['exported_from']}"
    out = tmp / "model.onnx"
    onnx.save(model, str(out))
    return out


def _export_tflite(clf, tmp: Path, quantize: str | None, calibration: np.ndarray | None) -> Path:
    import tensorflow as tf

    s = clf.spec.input_size
    out = tmp / "model.tflite"
    sig = [tf.TensorSpec([None, s, s, 3], tf.float32, name="crops")]
    options: dict = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}  # no Flex ops: LiteRT runs it
    if quantize == "int8":
        x = clf.prepare(calibration)

        def representative():
            for i in range(len(x)):
                yield [x[i:i + 1]]

        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative,
            # int8 kernels where they exist, float builtins for the rest; float32 input and output
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]},
        }
    clf.model.export(str(out), format="litert", input_signature=sig, verbose=False, **options)
    return out


def _compare(clf, exported, crops: np.ndarray | None) -> tuple[int, float | None, float | None]:
    if crops is None or not len(crops):
        return 0, None, None
    x = clf.prepare(crops)
    ref, got = clf.predict_prepared(x), exported.predict_prepared(x)
    return len(x), float(np.abs(ref - got).max()), float(np.mean(ref.argmax(1) == got.argmax(1)))


def check_options(model_path: str | Path, fmt: str, output: str | Path | None = None,
                  quantize: str | None = None) -> tuple[Path, Path]:
    """Validate the options before any work; returns (the .keras file, the file to write)."""
    from livemask.models.backends.keras_model import resolve_model_path

    if fmt not in FORMATS:
        raise ExportError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ExportError(f"--quantize: expected one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if quantize and fmt != "tflite":
        raise ExportError(f"--quantize {quantize} is only available for --format tflite")
    source = resolve_model_path(str(model_path))
    if source.suffix.lower() not in (".keras", ".h5"):
        raise ExportError(f"{source}: export needs a .keras model (--model, or classifier.explain_model)")
    out = Path(output) if output else default_output(source, fmt, quantize)
    if out.suffix.lower() != f".{fmt}":
        raise ExportError(f"--output {out}: a {fmt} model file must end in .{fmt}")
    check_output_path(out, source)
    return source, out


def check_output_path(out: Path, source: Path) -> None:
    """Before the export (it takes seconds): ``out`` is not the model, not a folder, and its folder can be
    created and written, else one OutputError line (exit 2)."""
    import os

    from livemask.core.output_paths import check_output_file, prepare_out_dir

    check_output_file(out, [source], "--output")
    resolved = out.expanduser().resolve()
    if resolved.is_dir():
        raise ExportError(f"--output {out}: is a folder; name the model file to write")
    if resolved.exists() and not os.access(resolved, os.W_OK):
        raise ExportError(f"--output {out}: exists and is not writable")
    prepare_out_dir(resolved.parent, f"--output {out}: folder")


def export_classifier(model_path: str | Path, fmt: str, output: str | Path | None = None,
                      quantize: str | None = None, calibration: np.ndarray | None = None,
                      check_crops: np.ndarray | None = None) -> ExportResult:
    """Export the ``.keras`` model at ``model_path``; returns where and how well it went.

    ``calibration``: BGR uint8 face crops (N, S, S, 3) for int8 (required then).
    ``check_crops``: face crops on which the exported file is compared with the Keras model
    (default: the calibration crops); a file further from it than :data:`FLOAT_LIMIT` (float) or
    :data:`INT8_AGREEMENT` (int8) allows is not written (ExportError).
    """
    from livemask.models.backends import open_classifier
    from livemask.models.backends.keras_model import MaskClassifier

    source, out = check_options(model_path, fmt, output, quantize)
    if quantize and (calibration is None or not len(calibration)):
        raise ExportError("int8 quantisation needs calibration face images (--calibration DIR)")
    t0 = time.perf_counter()
    clf = MaskClassifier(str(source))
    quantization = quantize or "none"
    n_cal = 0 if calibration is None else len(calibration)
    contract = _contract(clf, source, quantization, n_cal if quantize else 0)
    from livemask.core.quiet import stderr_to_devnull

    with tempfile.TemporaryDirectory(prefix="livemask-export-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            with stderr_to_devnull(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = _export_onnx(clf, tmp, contract) if fmt == "onnx" else \
                    _export_tflite(clf, tmp, quantize, calibration)
        except LivemaskError:
            raise
        except Exception as err:
            raise ExportError(f"export to {fmt} failed ({exception_line(err)})") from None
        sidecar = None
        if fmt == "tflite":
            contract["model_sha256"] = hashlib.sha256(made.read_bytes()).hexdigest()
            (tmp / "model.tflite.json").write_text(json.dumps(contract, indent=1, sort_keys=True) + "\n")
        exported = open_classifier(str(made), clf.batch_sizes)  # the file loads and its contract checks out
        compared, diff, agree = _compare(clf, exported, check_crops if check_crops is not None else calibration)
        if compared and (agree < INT8_AGREEMENT if quantize else diff > FLOAT_LIMIT):
            raise ExportError(f"the {fmt} file does not compute what {source.name} computes: on {compared} real face "
                              f"crops max |p - p_keras| = {diff:.2g}, same label {100 * agree:.1f}% (a conversion "
                              f"fault); nothing written")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(made), out)
            if fmt == "tflite":
                sidecar = out.with_name(out.name + ".json")
                shutil.move(str(tmp / "model.tflite.json"), sidecar)
        except OSError as err:
            raise ExportError(f"cannot write {out} ({err.strerror or err})") from None
    return ExportResult(out, sidecar, fmt, quantization, os.path.getsize(out), time.perf_counter() - t0,
                        n_cal if quantize else 0, compared, diff, agree)

"""``livemask export``: the classifier as an ONNX or LiteRT file for runtimes without TensorFlow.

Writes ``--output`` (default: next to the ``.keras`` file, ``mask_classifier.onnx``,
``mask_classifier.tflite`` or ``mask_classifier_int8.tflite``; a ``.tflite`` gets its
contract in ``NAME.tflite.json``). When face images are available (``--calibration``, by
default ``../shared/data/faces``) the exported file is checked against the Keras model on
real face crops and the largest probability difference and label agreement are printed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from livemask.models.export import CALIBRATION_IMAGES, DEFAULT_CALIBRATION, FORMATS, QUANTIZE, ExportError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (ONNX Runtime) or tflite (LiteRT)")
    parser.add_argument("--model", help="the .keras model to export (default: classifier.model_path when it is "
                                         "a .keras file, else classifier.explain_model)")
    parser.add_argument("--output", type=Path, help="file to write (default: next to the model, .onnx / .tflite)")
    parser.add_argument("--quantize", choices=QUANTIZE, help="int8 weights and activations (tflite only), "
                                                             "calibrated on real face crops")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help=f"folder of face photos (searched recursively) for int8 calibration and the check "
                             f"against Keras (default: {DEFAULT_CALIBRATION} when present)")
    parser.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES, metavar="N",
                        help=f"images to take from the folder, spread over it (default: {CALIBRATION_IMAGES})")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.models.backends import DEFAULT_KERAS_MODEL, needs_tensorflow
    from livemask.models.export import check_options, export_classifier, face_crops
    from livemask.models.keras_layers import read_spec

    section = config["classifier"]
    model_path = args.model or section.get("model_path", DEFAULT_KERAS_MODEL)
    if not args.model and not needs_tensorflow(model_path):  # the default: labels from the exported file
        model_path = section.get("explain_model") or DEFAULT_KERAS_MODEL
    check_options(model_path, args.format, args.output, args.quantize)
    if args.calibration_images < 1:
        raise ExportError(f"--calibration-images must be at least 1, got {args.calibration_images}")
    folder = args.calibration
    if folder is None and DEFAULT_CALIBRATION.is_dir():
        folder = DEFAULT_CALIBRATION
    if args.quantize and folder is None:
        raise ExportError(f"--quantize {args.quantize} needs calibration face images: name a folder with "
                          f"--calibration DIR ({DEFAULT_CALIBRATION} not found)")
    crops = None
    if folder is not None:
        from livemask.models.backends.keras_model import load_keras_model

        spec = read_spec(load_keras_model(model_path))
        detector = compose.detector(config)
        crops = face_crops(folder, detector, spec.input_size, spec.crop_margin, args.calibration_images,
                           rule=spec.crop_rule)
        log.info("%d face crops from %s", len(crops), folder)
    result = export_classifier(model_path, args.format, args.output, args.quantize, crops)
    if args.json:
        record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items()}
        print(json.dumps(record), flush=True)
    else:
        print(f"wrote {result.path} ({result.bytes / 1024:.0f} KiB, {result.format}, quantization "
              f"{result.quantization}, {result.seconds:.1f} s)" + (f" + {result.sidecar}" if result.sidecar else ""))
        if result.compared_faces:
            print(f"checked on {result.compared_faces} real face crops: max |p - p_keras| = "
                  f"{result.max_abs_diff:.2e}, same label {100 * result.label_agreement:.1f}%")
    return 0

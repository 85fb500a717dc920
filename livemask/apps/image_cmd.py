"""``livemask image``: detect and classify faces in still images, write annotated copies."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from livemask.core.errors import InputImageError, LivemaskError
from livemask.core.images import list_images, read_image
from livemask.core.output_paths import OutputNames, prepare_out_dir, write_image
from livemask.core.records import face_records
from livemask.sinks.draw import FaceAnnotator

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="folder for annotated images (default: out): OUT/<stem>.png, or <stem>-2.png... "
                             "when that name is an input or already used in this run")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")


def command(args, config) -> int:
    from livemask.apps import compose

    paths = list_images(args.paths)
    if not paths:
        raise InputImageError("no images found in " + ", ".join(map(str, args.paths)))
    prepare_out_dir(args.out)  # a file, /proc or an unwritable folder fails here, before the models load
    names = OutputNames(args.out, paths)
    detector = compose.detector(config)
    classifier = compose.classifier(config)
    annotator = FaceAnnotator()
    failures = 0
    for path in paths:
        try:
            image = read_image(path)
            detections = detector.detect(image)
            predictions = classifier.classify(image, detections)
        except LivemaskError as err:
            print(error_line(err), file=sys.stderr, flush=True)
            failures += 1
            continue
        (out,) = names.claim(path.stem, ["{}.png"])  # never an input's name, never twice the same
        write_image(out, annotator.annotate(image.copy(), detections, predictions))  # OutputError stops here
        faces = face_records(detections, predictions)
        if args.json:
            print(json.dumps({"path": str(path), "output": str(out), "faces": faces}), flush=True)
        log.info("%s: %d face(s) -> %s", path, len(faces), out)
    return 1 if failures else 0


def error_line(err: Exception) -> str:
    from livemask.core.redact import safe_message

    return f"livemask: error: {safe_message(str(err))}"

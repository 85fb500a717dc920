"""``livemask explain``: Grad-CAM / occlusion panels for every face in still images.

For each image it writes ``OUT/<stem>_explain.png`` (one row per face) and, when faces
are found, the maps as ``OUT/<stem>_<method>.npy`` (N, S, S) float32 in [0, 1], in the
order of the faces. When one of these names is an input or is already used in this run
(two inputs with the same stem), ``<stem>-2``, ``<stem>-3``... is used instead. With
``--json`` it prints one JSON object per image, naming the files written.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from livemask.apps.image_cmd import error_line
from livemask.core.errors import InputImageError, LivemaskError
from livemask.core.images import list_images, read_image
from livemask.core.output_paths import OutputNames, prepare_out_dir, save_array, write_image
from livemask.core.records import face_record

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="IMAGE", help="image files or folders")
    parser.add_argument("--method", choices=("gradcam", "occlusion", "all"), default="gradcam",
                        help="explanation method (default: gradcam)")
    parser.add_argument("--target", default=None, metavar="CLASS",
                        help="explain this class for every face (default: each face's predicted class)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for panels and maps (default: out)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")


def _round(v: float, k: int = 4) -> float:
    return round(float(v), k)


def image_record(path: Path, panel: Path, detections, results, map_files: dict[str, Path],
                 landmarks=None) -> dict:
    """One image: its faces in the one face layout (:func:`face_record`) with their explanations; each
    explanation's ``summary`` is the map in words (:mod:`livemask.explain.words`), ``landmarks`` (N, 5, 2)
    in crop pixels placing its face regions."""
    from livemask.explain.words import summarise

    faces = []
    for i in range(len(detections)):
        entries = []
        for res in results:
            entry = {"method": res.method, "target": res.class_names[int(res.targets[i])],
                     "target_probability": _round(res.probabilities[i, res.targets[i]]),
                     "target_log_odds": _round(res.log_odds[i]),
                     "ms": _round(res.ms_per_face, 2), "map": str(map_files[res.method]), "map_index": i}
            if res.faithfulness is not None:
                entry["faithfulness"] = res.faithfulness.record(i)
                entry["faithfulness_ms"] = _round(res.faithfulness_ms_per_face, 2)
            entry["summary"] = summarise(res, i, None if landmarks is None else landmarks[i]).record()
            entries.append(entry)
        faces.append(face_record(detections.boxes[i], detections.scores[i], results[0].probabilities[i],
                                 results[0].class_names, explanations=entries))
    return {"path": str(path), "panel": str(panel), "faces": faces}


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.explain.suite import methods_for

    methods_for(args.method)
    paths = list_images(args.paths)
    if not paths:
        raise InputImageError("no images found in " + ", ".join(map(str, args.paths)))
    prepare_out_dir(args.out)  # a file, /proc or an unwritable folder fails here, before the models load
    names = OutputNames(args.out, paths)
    detector = compose.detector(config)
    classifier = compose.classifier(config)
    suite = compose.explain_suite(config, classifier)
    if args.target is not None and args.target not in classifier.class_names:
        raise LivemaskError(f"--target {args.target!r}: the model's classes are {', '.join(classifier.class_names)}")
    suite.warmup()  # compile once, so the reported times are per face, not per trace
    failures = 0
    for path in paths:
        try:
            image = read_image(path)
            detections = detector.detect(image)
            crops = classifier.crops(image, detections)
            results = suite.explain(crops, args.method, targets=args.target)
        except LivemaskError as err:
            print(error_line(err), file=sys.stderr, flush=True)
            failures += 1
            continue
        panel_path, *npy = names.claim(path.stem, ["{}_explain.png", *(f"{{}}_{r.method}.npy" for r in results)])
        map_files = {res.method: npy[i] for i, res in enumerate(results)}
        landmarks = suite.crop_landmarks(detections)
        panel = suite.render(crops, results, f"{path.name} - {args.method}", landmarks=landmarks)
        write_image(panel_path, panel)  # an OutputError (disk full, ...) stops the command: one line, exit 2
        for res in results:
            if len(res):
                save_array(map_files[res.method], res.maps)
        if args.json:
            print(json.dumps(image_record(path, panel_path, detections, results, map_files, landmarks)), flush=True)
        log.info("%s: %d face(s) -> %s", path, len(detections), panel_path)
    return 1 if failures else 0

"""``livemask eval``: detection recall/precision and mask accuracy on a labelled folder (see livemask.data.evaluate)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from livemask.core.errors import InputImageError
from livemask.data.datasets import DataReport, is_class_folders, is_scene_set, read_list
from livemask.data.evaluate import evaluate_folders, evaluate_scenes

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("dir", type=Path, help="VOC scene set (images/ + annotations/) or class folders")
    parser.add_argument("--list", type=Path, help="only the images named in this file (name or stem a line)")
    parser.add_argument("--split", help="class folders with manifest.csv: only this split (e.g. val)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def command(args, config) -> int:
    from livemask.apps import compose

    root: Path = args.dir
    if not root.is_dir():
        raise InputImageError(f"{root}: no such folder")
    report = DataReport()  # malformed annotations, lists and manifests: skipped, warned, counted in the output
    only = read_list(args.list, report) if args.list else None
    detector = compose.detector(config)
    classifier = compose.classifier(config)
    if is_scene_set(root):
        if args.split:
            raise InputImageError("--split applies to class folders with a manifest.csv, not to scene sets")
        result = evaluate_scenes(root, detector, classifier, only, report)
    elif is_class_folders(root):
        result = evaluate_folders(root, detector, classifier, only, args.split, report)
    else:
        raise InputImageError(f"{root}: expected images/ + annotations/, or with_mask/, without_mask/ or "
                              "mask_weared_incorrect/ folders")
    result["detector"] = detector.describe()  # which runtime and precision ran, next to the figures
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            log.info("%s: %s", key, value)
    return 0

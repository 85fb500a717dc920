"""Aligned against box crops: how often the alignment falls back, and two models compared on the same faces.

    python benchmarks/crop_rules.py --data ../shared/data [--cache .cache/train-crops.npz]
        [--model models/mask_classifier.keras --model ALIGNED.keras ...] [--json F]
    python benchmarks/crop_rules.py --speed

``--speed`` only times cutting one face by each rule (the astronaut photo, 512 px, a face of about
100 px; median of 250 calls after 50, both rules in the same process) and stops.

Reads (or builds) ``livemask train``'s crop cache of the ``aligned`` rule, which holds for every face
both its aligned crop and its box crop. Prints, per evaluation part (faces val; scenes holdout and
scenes_extra val at 16 px and more), how many faces were aligned and why the others fell back to the box
crop; then for each model, on the crops of its own rule: accuracy, per-class recall and precision and
the confusion matrix per part, per faces-val source, and scene faces by size
(``livemask.data.train.crop_report``). Crop-level figures: the faces are cut from the detector's
box (faces) or the annotation box (scenes), no detection step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

PARTS = ("faces-val", "scenes-holdout", "extra-val", "faces-train", "scenes-train", "extra-train")


def fallback_table(crops) -> list[str]:
    lines = ["| part | faces | aligned | fallback: no landmarks | implausible | poor fit |",
             "|---|---|---|---|---|---|"]
    for part in PARTS:
        sel = crops.part == part
        if part not in ("faces-val", "faces-train", "faces-calib"):
            sel &= crops.size >= 16
        n = int(sel.sum())
        if not n:
            continue
        reasons = crops.fallback[sel]
        implausible = int(np.isin(reasons, ["outside the box", "eye distance", "roll", "order"]).sum())
        lines.append(f"| {part} | {n} | {crops.aligned[sel].mean():.3f} | {int((reasons == 'no landmarks').sum())} | "
                     f"{implausible} | {int((reasons == 'fit').sum())} |")
    return lines


def crop_speed() -> None:
    import statistics
    import time

    import cv2
    import skimage.data
    from common import machine

    from face_detector import CenterFaceDetector
    from livemask.models.crop import crop_faces

    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    det = CenterFaceDetector().detect(image)
    print(machine())
    print("| rule | ms per face (median) |\n|---|---|")
    for rule in ("box", "aligned"):
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            crop_faces(image, det.boxes, 64, 0.2, rule, det.landmarks)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"| {rule} | {statistics.median(times[50:]):.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--speed", action="store_true", help="only time the two crop rules")
    parser.add_argument("--cache", type=Path, default=Path(".cache/train-crops.npz"))
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every report here")
    args = parser.parse_args()
    if args.speed:
        crop_speed()
        return 0
    if args.data is None:
        parser.error("--data is required (or --speed)")

    from livemask.apps.compose import detector, load_config
    from livemask.data.train import crop_report, load_or_build_crops
    from livemask.models.backends.keras_model import MaskClassifier

    crops = load_or_build_crops(args.data, detector(load_config(None)), 64, args.cache, "aligned")
    print("\n".join(fallback_table(crops)))
    reports = {}
    for model in args.model or ["models/mask_classifier.keras"]:
        rule = MaskClassifier(model).spec.crop_rule
        view = crops if rule == "aligned" else replace(crops, base=crops.box_base)
        rep = crop_report(Path(model), view)
        reports[model] = {"crop_rule": rule, **rep}
        print(f"\n{model} ({rule} crops)")
        for part in ("faces-val", "scenes-holdout", "extra-val"):
            r = rep[part]
            recall = ", ".join(f"{k} {v:.3f}" for k, v in r["recall"].items())
            precision = ", ".join(f"{k} {v:.3f}" for k, v in r["precision"].items())
            print(f"  {part}: n {r['n']}, accuracy {r['accuracy']:.4f}; recall {recall}; precision {precision}; "
                  f"confusion {r['confusion (rows truth, cols predicted)']}")
        for src, r in rep["faces-val-by-source"].items():
            print(f"  faces-val {src}: n {r['n']}, accuracy {r['accuracy']:.4f}, "
                  f"confusion {r['confusion (rows truth, cols predicted)']}")
        for band, r in rep["scene-holdout-and-extra-val-by-size"].items():
            print(f"  scenes {band}: n {r['n']}, accuracy {r['accuracy']}")
        # the faces that fell back, apart: does the model do worse on them?
        val = crops.part == "faces-val"
        pred = MaskClassifier(model).predict_crops(view.base[val]).class_ids
        truth = crops.labels[val]
        for name, sel in (("aligned", crops.aligned[val]), ("fallback", ~crops.aligned[val])):
            if sel.any():
                print(f"  faces-val {name}: n {int(sel.sum())}, accuracy {(pred[sel] == truth[sel]).mean():.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps(reports, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The classifier at other crop margins, on faces cut from the detector's boxes as inference cuts them.

    python benchmarks/crop_margin.py --data ../shared/data --model models/mask_classifier.keras
        [--margins 0.2,0.26,0.32,0.38,0.44] [--save F.keras] [--json F]

The crop margin is part of a box-rule model's contract (``Preprocess.crop_margin``: the square crop's side is
``(1 + margin)`` times the box's longer side). A model trained at one margin may answer better at another: the
detector's boxes are not the boxes it was trained on everywhere (scene faces are cut from their annotated boxes
in training), and training jitters the crop's scale. Every face photo's largest detection (faces-calib and
faces-val, as ``livemask train`` splits them) and every scene face matched to a detection (IoU 0.4 or more, 16 px
and more: scenes train / holdout, scenes_extra train / val) is cut at each margin of the grid and classified with
the model's own weights. The margin is chosen on faces-calib alone (never trained on): the least log-loss at the
model's temperature; every margin of the grid is printed, so the choice can be seen. ``--save F.keras`` writes
the model with the chosen margin and its temperature refitted on faces-calib at that margin (the weights are
the model's own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

SETS = ("faces-calib", "faces-val", "scenes-train", "scenes-holdout", "extra-train", "extra-val")


def cut_faces(data: Path, detector, margins: list[float], size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{set: (crops (margins, N, size, size, 3) BGR uint8, labels (N,))}: faces cut from the detector's boxes."""
    from livemask.core.geometry import greedy_match, iou_matrix
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders
    from livemask.data.train import LABELS, group_is_calibration, scene_images
    from livemask.models.crop import crop_face

    cut: dict[str, tuple[list, list]] = {name: ([], []) for name in SETS}

    def add(name: str, image: np.ndarray, box: np.ndarray, label: str) -> None:
        cut[name][0].append([crop_face(image, box, size, m) for m in margins])
        cut[name][1].append(LABELS[label])

    for item in load_face_folders(data / "faces"):
        name = "faces-val" if item.split == "val" else (
            "faces-calib" if group_is_calibration(item.group) else None)
        if name is None:
            continue
        image = read_image(item.path)
        found = detector.detect(image)
        if len(found):
            add(name, image, found.boxes[found.largest()], item.label)
    for _, name, scene in scene_images(data):
        image = read_image(scene.path)
        found = detector.detect(image)
        if not len(scene.boxes) or not len(found):
            continue
        for a, b in greedy_match(iou_matrix(scene.boxes, found.boxes), 0.4):
            box = scene.boxes[a]
            if scene.names[a] in LABELS and (box[2:] - box[:2]).min() >= 16:
                add(name, image, found.boxes[b], scene.names[a])
    return {name: (np.stack(c, 1), np.asarray(y, np.int64)) for name, (c, y) in cut.items() if y}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a box-rule .keras classifier")
    parser.add_argument("--margins", default="0.2,0.26,0.32,0.38,0.44", help="comma-separated crop margins")
    parser.add_argument("--save", type=Path, default=None, help="write the model at the chosen margin (.keras)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        margins = [float(m) for m in args.margins.split(",")]
    except ValueError:
        raise SystemExit(f"--margins: comma-separated numbers, got {args.margins!r}") from None
    if not margins or any(not 0 <= m <= 1 for m in margins):
        raise SystemExit("--margins: each between 0 and 1")
    if args.save is not None and args.save.suffix != ".keras":
        raise SystemExit("--save: a .keras file")
    if not (args.data / "faces").is_dir():
        raise SystemExit(f"{args.data}: no faces/ folder")

    from common import machine

    from livemask.apps.compose import detector, load_config
    from livemask.data.temperature import expected_calibration_error, fit_temperature, logits_of, softmax
    from livemask.data.train import summarise
    from livemask.models.backends.keras_model import MaskClassifier

    clf = MaskClassifier(str(args.model))
    if clf.spec.crop_rule != "box":
        raise SystemExit(f"{args.model}: crop rule {clf.spec.crop_rule!r}; this script moves a box-rule margin")
    faces = cut_faces(args.data, detector(load_config(None)), margins, clf.spec.input_size)
    temperature = clf.spec.temperature
    logits = {name: [logits_of(clf.model, clf.prepare(c[k])) for k in range(len(margins))]
              for name, (c, _) in faces.items()}
    rows = {}
    for k, m in enumerate(margins):
        row = {}
        for name, (_, y) in faces.items():
            p = softmax(logits[name][k], temperature)
            row[name] = {**summarise(y, p.argmax(1)),
                         "log_loss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())}
        rows[m] = row
    chosen = min(margins, key=lambda m: (rows[m]["faces-calib"]["log_loss"], abs(m - clf.spec.crop_margin)))

    print(f"machine: {machine()}")
    print(f"model {args.model} (trained at margin {clf.spec.crop_margin}, temperature {temperature:.3f}); "
          f"faces: " + ", ".join(f"{n} {len(y)}" for n, (_, y) in faces.items()))
    names = [n for n in SETS if n in faces]
    print("\n| margin | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for m in margins:
        cells = []
        for n in names:
            r = rows[m][n]
            confusion = np.asarray(r["confusion (rows truth, cols predicted)"])  # unrounded recall for the table
            rec = " / ".join(f"{confusion[c, c] / confusion[c].sum():.3f}" if confusion[c].sum() else "-"
                             for c in range(len(confusion)))
            cells.append(f"{100 * r['accuracy']:.2f}% ({rec}), log-loss {r['log_loss']:.3f}")
        mark = " (chosen on faces-calib)" if m == chosen else ""
        print(f"| {m}{mark} | " + " | ".join(cells) + " |")
    if args.save is not None:
        k = margins.index(chosen)
        _, y = faces["faces-calib"]
        refit = fit_temperature(logits["faces-calib"][k], y)
        clf.model.get_layer("preprocess").crop_margin = chosen
        clf.model.get_layer("probabilities").temperature = refit
        clf.model.save(args.save)
        yv = faces["faces-val"][1]
        print(f"wrote {args.save}: crop margin {chosen}, temperature {refit:.4f} (faces-calib); ECE faces val "
              f"{expected_calibration_error(logits['faces-val'][k], yv, refit):.4f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"model": str(args.model), "chosen_margin": chosen,
                                         "rows": {str(m): r for m, r in rows.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Teacher candidates for distillation: single models and their ensembles, scored on the same faces.

    python benchmarks/distill_teacher.py --data ../shared/data --model v3.keras --model ALIGNED.keras ...
        [--cache .cache/train-crops.npz] [--min-members 1] [--json F]

Reads (or builds) ``livemask train``'s crop cache of the ``aligned`` rule, which holds every face's aligned
crop and its box crop; each model sees the crop of its own rule (as ``benchmarks/crop_rules.py`` does), so a
box model and aligned models are compared and combined on the same faces. An ensemble averages the members'
calibrated probabilities (each model file's own temperature, fitted on faces-calib); its "ECE refit" is the
ECE on faces val after one more temperature is fitted on faces-calib to the log of the averaged
probabilities. Prints one row per model and per combination of two or more models: faces val accuracy over
three classes, ``mask_incorrect`` recall and precision, ECE, scenes holdout and scenes_extra val crops of
16 px and more (accuracy; class recalls on scenes_extra val). Crop-level figures: no detection step.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np


def scores(probs: np.ndarray, crops) -> dict:
    from livemask.data.temperature import ece_of_probabilities, fit_temperature

    pred = probs.argmax(1)
    out = {}
    val = crops.part == "faces-val"
    t = crops.labels[val]
    p = pred[val]
    out["faces_val"] = float((p == t).mean())
    out["mi_recall"] = float(((p == 2) & (t == 2)).sum() / max(1, (t == 2).sum()))
    out["mi_precision"] = float(((p == 2) & (t == 2)).sum() / max(1, (p == 2).sum()))
    out["ece"] = ece_of_probabilities(probs[val], t)
    logp = np.log(np.clip(probs, 1e-12, None))
    calib = crops.part == "faces-calib"
    temp = fit_temperature(logp[calib], crops.labels[calib])
    z = logp[val] / temp
    e = np.exp(z - z.max(1, keepdims=True))
    out["ece_refit"] = ece_of_probabilities(e / e.sum(1, keepdims=True), t)
    conf = np.zeros((3, 3), np.int64)
    np.add.at(conf, (t, p), 1)
    out["faces_val_confusion"] = conf.tolist()
    for part, key in (("scenes-holdout", "scenes_holdout"), ("extra-val", "extra_val")):
        sel = (crops.part == part) & (crops.size >= 16)
        out[key] = float((pred[sel] == crops.labels[sel]).mean())
        out[key + "_n"] = int(sel.sum())
    sel = (crops.part == "extra-val") & (crops.size >= 16)
    out["extra_val_class_recall"] = [float((pred[sel & (crops.labels == k)] == k).mean()) for k in range(3)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/train-crops.npz"))
    parser.add_argument("--model", action="append", required=True, help="model file (repeatable)")
    parser.add_argument("--min-members", type=int, default=1, help="print only combinations of this many or more")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    args = parser.parse_args()

    from livemask.apps.compose import detector, load_config
    from livemask.data.train import load_or_build_crops
    from livemask.models.backends.keras_model import MaskClassifier

    crops = load_or_build_crops(args.data, detector(load_config(None)), 64, args.cache, "aligned")
    probs = {}
    for model in args.model:
        clf = MaskClassifier(model)
        x = crops.base if clf.spec.crop_rule == "aligned" else crops.box_base
        probs[Path(model).stem] = clf.predict_crops(x).probabilities
        print(f"{model}: {clf.spec.crop_rule} crops", flush=True)
    rows = {}
    names = list(probs)
    for k in range(max(1, args.min_members), len(names) + 1):
        for combo in itertools.combinations(names, k):
            rows[" + ".join(combo)] = scores(np.mean([probs[n] for n in combo], axis=0), crops)
    print("\n| model(s) | faces val | mask_incorrect R / P | ECE (refit) | scenes holdout 16px+ | "
          "scenes_extra val 16px+ | scenes_extra val recall mask / no / below |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        rec = " / ".join(f"{v:.3f}" for v in r["extra_val_class_recall"])
        print(f"| {name} | {100 * r['faces_val']:.2f}% | {r['mi_recall']:.3f} / {r['mi_precision']:.3f} | "
              f"{r['ece']:.4f} ({r['ece_refit']:.4f}) | {100 * r['scenes_holdout']:.2f}% | "
              f"{100 * r['extra_val']:.2f}% | {rec} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

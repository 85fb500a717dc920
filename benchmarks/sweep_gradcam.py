"""Grad-CAM layer for the committed model, chosen by measurement (issue 8).

    python benchmarks/sweep_gradcam.py [--layers block2_relu1,block2_relu0,block1_relu1,block1_pool,block0_relu1]
        [--model models/mask_classifier.keras] [--per-class N] [--crops F | --save-crops F]

The same faces as ``bench_explain.py`` (largest face of each ``faces`` val photo), each explained
for its predicted class. For every layer it prints the map's resolution, the deletion ratio (median,
share < 1), the share with insertion above random, the lower-half share of masked faces called
``mask`` (scored as in ``bench_explain.py``, on the target's log-odds, with the fill of config.yaml)
and the median time per face at batch 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_explain import ROOT, figures, median_ms, val_faces

HEADER = ["layer", "map", "ratio median", "ratio < 1", "insertion > random", "lower half (masked)", "ms/face"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--layers", default="block2_relu1,block2_relu0,block1_pool,block1_relu1,block1_relu0,"
                        "block0_relu1")
    parser.add_argument("--per-class", type=int, default=0, help="faces per class folder (0 = all)")
    parser.add_argument("--timed", type=int, default=20, help="faces timed one by one")
    parser.add_argument("--crops", type=Path, help="crops saved by --save-crops or bench_explain.py --save-crops")
    parser.add_argument("--save-crops", type=Path, help="save the detected crops (.npz, one array per class folder)")
    args = parser.parse_args(argv)
    if not (args.data / "faces").is_dir() and not args.crops:
        print(f"no faces folder under {args.data}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    import keras
    from common import machine, table

    from face_detector import CenterFaceDetector
    from livemask.apps.compose import load_config
    from livemask.explain.base import resize_maps
    from livemask.explain.gradcam import GradCAM
    from livemask.models.classifier import MaskClassifier

    keras.config.disable_interactive_logging()
    load_start = os.getloadavg()
    classes = ["with_mask", "without_mask"]
    classifier = MaskClassifier(args.model)
    if args.crops:
        saved = np.load(args.crops)
        parts = [saved[c][:args.per_class or None] for c in classes]
        crops, folders = np.concatenate(parts), np.repeat(classes, [len(p) for p in parts])
    else:
        crops, folders = val_faces(classifier, CenterFaceDetector(), args.data, classes, args.per_class)
    if args.save_crops:
        np.savez(args.save_crops, **{c: crops[folders == c] for c in classes})
    x = classifier.prepare(crops)
    s = classifier.input_size
    predicted = classifier.predict_prepared(x).argmax(axis=1)
    masked_called_mask = (folders == "with_mask") & (predicted == classifier.class_names.index("mask"))
    timed = sorted(set(np.linspace(0, len(x) - 1, args.timed).astype(int)))
    settings = dict(load_config().get("explain", {}))
    keep = ("fill", "blur_sigma_fraction", "faithfulness_steps", "seed")
    rows = []
    for layer in args.layers.split(","):
        cam = GradCAM(classifier, layer=layer, **{k: settings[k] for k in keep if k in settings})
        ms = median_ms(lambda i, e=cam: e.explain_prepared(x[i:i + 1], faithfulness=False), timed)
        result = cam.explain_prepared(x, faithfulness=False)
        faith = cam.score(x, resize_maps(result.raw, s), result.targets)
        f = figures(faith, result.maps, masked_called_mask)
        h, w = result.raw.shape[1:3]
        rows.append([layer, f"{h}x{w}", f"{f['ratio_median']:.2f}", f"{f['ratio_below_1']:.0%}",
                     f"{f['insertion_above']:.0%}", f"{f['lower_half']:.0%} of {f['lower_n']}", f"{ms:.1f}"])
        print(table(HEADER, rows[-1:]), flush=True)
    load_end = os.getloadavg()
    print(f"\nmachine: {machine()}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(f"model: {args.model}; faces: {len(x)} ({', '.join(f'{c} {int((folders == c).sum())}' for c in classes)}); "
          f"fill {settings.get('fill')}\n")
    print(table(HEADER, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

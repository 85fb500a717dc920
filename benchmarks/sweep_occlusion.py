"""Occlusion patch size and stride for the 64 px crop, chosen by measurement (issue 8, item 3).

    python benchmarks/sweep_occlusion.py [--grid 8:8,8:4,12:8,16:8,16:4,24:8] [--fill blur grey]
        [--model models/mask_classifier.keras] [--per-class N] [--crops F]

The same faces as ``bench_explain.py`` (largest face of each ``faces`` val photo, or crops it
saved with ``--save-crops``), each explained for its predicted class. For every patch:stride
(pixels on the model's crop) and fill it prints the deletion ratio (median, share < 1), the
share with insertion above random, the lower-half share of masked faces called ``mask``
(all scored as in ``bench_explain.py``, on the target's log-odds) and the median time per face
at batch 1 with the number of occluded copies it costs.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--grid", default="8:8,8:4,12:8,16:8,16:4,24:8", help="patch:stride pairs in pixels")
    parser.add_argument("--fill", nargs="+", default=["blur", "grey"])
    parser.add_argument("--per-class", type=int, default=0, help="faces per class folder (0 = all)")
    parser.add_argument("--timed", type=int, default=20, help="faces timed one by one")
    parser.add_argument("--crops", type=Path, help="crops saved by bench_explain.py --save-crops")
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
    from livemask.explain.suite import ExplainSuite
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
    x = classifier.prepare(crops)
    s = classifier.input_size
    predicted = classifier.predict_prepared(x).argmax(axis=1)
    masked_called_mask = (folders == "with_mask") & (predicted == classifier.class_names.index("mask"))
    timed = sorted(set(np.linspace(0, len(x) - 1, args.timed).astype(int)))
    settings = dict(load_config().get("explain", {}))
    rows = []
    for fill in args.fill:
        for pair in args.grid.split(","):
            patch, stride = (int(v) for v in pair.split(":"))
            suite = ExplainSuite(classifier, **{**settings, "fill": fill, "patch_fraction": patch / s,
                                                "stride_fraction": stride / s})
            occ = suite.explainers["occlusion"]
            ms = median_ms(lambda i, e=occ: e.explain_prepared(x[i:i + 1], faithfulness=False), timed)
            result = occ.explain_prepared(x, faithfulness=False)
            faith = occ.score(x, resize_maps(result.raw, s), result.targets)
            f = figures(faith, result.maps, masked_called_mask)
            rows.append([fill, f"{occ.patch} / {occ.stride}", str(len(occ.positions)), f"{f['ratio_median']:.2f}",
                         f"{f['ratio_below_1']:.0%}", f"{f['insertion_above']:.0%}",
                         f"{f['lower_half']:.0%} of {f['lower_n']}", f"{ms:.1f}"])
            print(table(["fill", "patch / stride px", "copies", "ratio median", "ratio < 1", "insertion > random",
                         "lower half (masked)", "ms/face"], rows[-1:]), flush=True)
    load_end = os.getloadavg()
    print(f"\nmachine: {machine()}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(f"model: {args.model}; faces: {len(x)} ({', '.join(f'{c} {int((folders == c).sum())}' for c in classes)}); "
          f"faithfulness scored with the same fill as the map\n")
    print(table(["fill", "patch / stride px", "copies", "ratio median", "ratio < 1", "insertion > random",
                 "lower half (masked)", "ms/face"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain import add_face_arguments, figures, median_ms, sweep_faces

HEADER = ["layer", "map", "ratio median", "ratio < 1", "insertion > random", "lower half (masked)", "ms/face"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_face_arguments(parser, timed=20)
    parser.add_argument("--layers", default="block2_relu1,block2_relu0,block1_pool,block1_relu1,block1_relu0,"
                        "block0_relu1")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    faces = sweep_faces(args)
    if faces is None:
        return 2
    from common import machine, table

    from livemask.explain.base import resize_maps
    from livemask.explain.gradcam import GradCAM

    x, s, settings = faces.x, faces.classifier.input_size, faces.settings
    keep = ("fill", "blur_sigma_fraction", "faithfulness_steps", "seed")
    rows = []
    for layer in args.layers.split(","):
        cam = GradCAM(faces.classifier, layer=layer, **{k: settings[k] for k in keep if k in settings})
        ms = median_ms(lambda i, e=cam: e.explain_prepared(x[i:i + 1], faithfulness=False), faces.timed)
        result = cam.explain_prepared(x, faithfulness=False)
        faith = cam.score(x, resize_maps(result.raw, s), result.targets)
        f = figures(faith, result.maps, faces.masked_called_mask)
        h, w = result.raw.shape[1:3]
        rows.append([layer, f"{h}x{w}", f"{f['ratio_median']:.2f}", f"{f['ratio_below_1']:.0%}",
                     f"{f['insertion_above']:.0%}", f"{f['lower_half']:.0%} of {f['lower_n']}", f"{ms:.1f}"])
        print(table(HEADER, rows[-1:]), flush=True)
    load_end = os.getloadavg()
    counts = ", ".join(f"{c} {int((faces.folders == c).sum())}" for c in ("with_mask", "without_mask"))
    print(f"\nmachine: {machine()}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(f"model: {args.model}; faces: {len(x)} ({counts}); fill {settings.get('fill')}\n")
    print(table(HEADER, rows))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())

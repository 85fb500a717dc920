"""How the fill (blur strength, the model's mid-grey, or skin) changes both maps and their scores (issue 8).

    python benchmarks/sweep_fill.py [--sigma 4 6 8 12 16] [--grey] [--skin] [--model models/mask_classifier.keras]
        [--per-class N] [--crops F]

The same faces as ``bench_explain.py`` (largest face of each ``faces`` val photo, or crops it
saved with ``--save-crops``), each explained for its predicted class by both methods. For each
fill the explainers are built with it (occlusion fills its patches with it, and every map's
deletion / insertion curves delete onto it and restore from it); the blur's sigma is given in
pixels of the model's crop (config.yaml's ``explain.blur_sigma_fraction`` times the crop side).
It prints the deletion ratio (median, share < 1), the share of faces with insertion above random
(all, masked, unmasked) and the lower-half share of masked faces called ``mask``, scored as in
``bench_explain.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain import add_face_arguments, figures, sweep_faces

HEADER = ["fill", "method", "ratio median", "ratio < 1", "insertion > random", "… masked", "… unmasked",
          "lower half (masked)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_face_arguments(parser, timed=1)
    parser.add_argument("--sigma", nargs="*", type=float, default=[4, 6, 8, 12, 16],
                        help="blur sigmas in pixels of the model's crop")
    parser.add_argument("--grey", action="store_true", help="also the model's mid-grey fill")
    parser.add_argument("--skin", action="store_true", help="also the skin fill (each face's forehead colour)")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    faces = sweep_faces(args)
    if faces is None:
        return 2
    from common import machine, table

    from livemask.explain.base import resize_maps
    from livemask.explain.suite import ExplainSuite

    x, s = faces.x, faces.classifier.input_size
    masked = faces.folders == "with_mask"
    fills = ([("blur", sigma) for sigma in args.sigma] + ([("grey", None)] if args.grey else [])
             + ([("skin", None)] if args.skin else []))
    rows = []
    for fill, sigma in fills:
        options = {**faces.settings, "fill": fill}
        if sigma is not None:
            options["blur_sigma_fraction"] = sigma / s
        suite = ExplainSuite(faces.classifier, **options)
        for method, explainer in suite.explainers.items():
            result = explainer.explain_prepared(x, faithfulness=False)
            faith = explainer.score(x, resize_maps(result.raw, s), result.targets)
            f = figures(faith, result.maps, faces.masked_called_mask)
            inserted = faith.insertion_auc > faith.random_insertion_auc
            rows.append([fill if sigma is None else f"blur, sigma {sigma:g} px", method, f"{f['ratio_median']:.2f}",
                         f"{f['ratio_below_1']:.0%}", f"{f['insertion_above']:.0%}", f"{inserted[masked].mean():.0%}",
                         f"{inserted[~masked].mean():.0%}", f"{f['lower_half']:.0%} of {f['lower_n']}"])
            print(table(HEADER, rows[-1:]), flush=True)
    load_end = os.getloadavg()
    print(f"\nmachine: {machine()}; load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(f"model: {args.model}; faces: {len(x)} (with_mask {int(masked.sum())}, without_mask "
          f"{int((~masked).sum())}); each map scored with the fill it was made with\n")
    print(table(HEADER, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

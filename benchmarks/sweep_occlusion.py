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
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain import add_face_arguments, figures, median_ms, sweep_faces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_face_arguments(parser, timed=20)
    parser.add_argument("--grid", default="8:8,8:4,12:8,16:8,16:4,24:8", help="patch:stride pairs in pixels")
    parser.add_argument("--fill", nargs="+", default=["blur", "grey"])
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    faces = sweep_faces(args)
    if faces is None:
        return 2
    from common import machine, table

    from livemask.explain.base import resize_maps
    from livemask.explain.suite import ExplainSuite

    classifier, x, folders, settings = faces.classifier, faces.x, faces.folders, faces.settings
    s, timed, masked_called_mask = classifier.input_size, faces.timed, faces.masked_called_mask
    classes = ["with_mask", "without_mask"]
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

"""A model call's CPU cost with one ONNX Runtime thread against more: the 8-bit CenterFace at the video size
(640x480 frames, ``pipeline.detector_long_side`` 320) and the exported classifier (batches of 1, 4 and 16 crops).

With several cameras every camera's detector runs in its own thread, so the cores are already shared out
among the calls; what a call split over more threads adds is the work of waking and joining them. This
measures it in one process: the CPU seconds of the process (``getrusage``: every thread's, the runtime's pool
included) per call, and the wall time per call, one thread count after the other, ``--rounds`` times in turn;
medians over the rounds.

Usage: python benchmarks/bench_model_threads.py [--threads 1,2] [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from common import machine, table  # noqa: E402


def cpu_s() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def per_call(fn, calls: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of ``fn``, over ``calls`` calls after 5 unmeasured."""
    for _ in range(5):
        fn()
    c0, t0 = cpu_s(), time.perf_counter()
    for _ in range(calls):
        fn()
    return 1000 * (cpu_s() - c0) / calls, 1000 * (time.perf_counter() - t0) / calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts to compare, comma-separated")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from face_detector.centerface import CenterFaceDetector
    from livemask.models.backends import open_classifier

    counts = [int(t) for t in args.threads.split(",")]
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), np.uint8)
    models = {}
    for n in counts:
        det = CenterFaceDetector(input_long_side=320, precision="int8", runtime="onnxruntime", threads=n)
        clf = open_classifier(str(ROOT / "models" / "mask_classifier.onnx"), explain_model=None, threads=n)
        models[n] = (det, clf)
    crops = {b: rng.integers(0, 256, (b, 64, 64, 3), np.uint8) for b in (1, 4, 16)}
    work = {"detector, one 640x480 frame": lambda m: m[0].detect(frame)}
    for b, x in crops.items():
        work[f"classifier, batch of {b}"] = lambda m, x=x: m[1].predict_crops(x)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for what, fn in work.items():
            for n in counts:
                results.setdefault((what, n), []).append(per_call(lambda f=fn, m=models[n]: f(m), args.calls))
    rows = []
    for what in work:
        for n in counts:
            runs = results[(what, n)]
            rows.append([what, n, f"{statistics.median(c for c, _ in runs):.2f}",
                         f"{statistics.median(w for _, w in runs):.2f}"])
    print(f"{machine()}; {args.rounds} rounds of {args.calls} calls, medians")
    print(table(["model call", "threads", "CPU ms per call", "wall ms per call"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

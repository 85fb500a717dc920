"""Classifier cost per face on every backend, and ``livemask image`` start-up per backend.

Run: python benchmarks/bench_classifier.py  (prints markdown tables; medians)

1. livemask's padded tf.function call vs Keras ``model.predict`` (issue 2: <= 1 ms per face at
   batch 16 on 2 cores).
2. keras / onnx / tflite / tflite-int8 per face at batch 1 and 16 through the backends'
   ``predict_prepared`` (issue 14: one exported backend <= 0.4 ms per face at batch 16).
   Exports are made from ``--model`` into ``--exports`` (int8 calibrated on ``--calibration``)
   unless they are there already.
3. ``livemask image PHOTO --json`` start-up per backend: wall time from process start to its
   first result line (issue 14: <= 1.5 s with an exported backend). ``--lean-python`` adds the
   same for an interpreter of a lean install (``pip install 'livemask[lite]'``, no TensorFlow).

All timings run back to back in this one process (start-ups interleaved round-robin), and the
load average is printed before and after: on a shared machine, read figures next to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_ms, table, times_ms

from livemask.core.quiet import import_tensorflow_quietly

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("keras", "onnx", "tflite", "tflite-int8")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_exports(model: Path, folder: Path, calibration: Path, detector, spec) -> dict[str, Path]:
    from livemask.models.export import export_classifier, face_crops

    paths = {"keras": model, "onnx": folder / "mask_classifier.onnx", "tflite": folder / "mask_classifier.tflite",
             "tflite-int8": folder / "mask_classifier_int8.tflite"}
    crops = None
    for name, fmt, quantize in (("onnx", "onnx", None), ("tflite", "tflite", None), ("tflite-int8", "tflite", "int8")):
        if paths[name].is_file():
            continue
        if crops is None:
            crops = face_crops(calibration, detector, spec.input_size, spec.crop_margin, rule=spec.crop_rule)
        result = export_classifier(model, fmt, paths[name], quantize, crops)
        print(f"exported {result.path} ({result.bytes / 1024:.0f} KiB; on {result.compared_faces} real faces: "
              f"max |p - p_keras| {result.max_abs_diff:.1e}, same label {100 * result.label_agreement:.1f}%)")
    return paths


def median_and_best_ms(fn, repeat: int, warmup: int = 5) -> tuple[float, float]:
    """Median and fastest wall time of ``fn()`` in ms (the fastest shows the cost without contention)."""
    times = times_ms(fn, repeat, warmup)
    return statistics.median(times), min(times)


def startup_seconds(python: str, model: Path, photo: Path, out: Path) -> float:
    """Process start to the first result line of ``livemask image --json``."""
    cmd = [python, "-m", "livemask", "image", str(photo), "--json", "--out", str(out),
           "--set", f"classifier.model_path={model}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.wait(timeout=120)
    if proc.returncode != 0 or not line.startswith("{"):
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mask_classifier.keras")
    parser.add_argument("--exports", type=Path, default=ROOT / "out" / "bench-exports",
                        help="folder for the exported models (made when missing)")
    parser.add_argument("--calibration", type=Path, default=ROOT.parent / "shared" / "data" / "faces",
                        help="face photos for int8 calibration")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--startups", type=int, default=5, help="start-up runs per backend (0: none)")
    parser.add_argument("--lean-python", help="python of a lean install ([lite], no TensorFlow) to time too")
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    import_tensorflow_quietly()
    import cv2
    import skimage.data

    from face_detector import CenterFaceDetector
    from livemask.models.backends import open_classifier

    detector = CenterFaceDetector()
    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    clf = open_classifier(str(args.model))
    clf.warmup()
    crop = clf.crops(face, detector.detect(face))[0]

    rows = []
    for batch in (1, 4, 16, 32):
        crops = np.repeat(crop[None], batch, axis=0)
        ours = median_ms(lambda c=crops: clf.predict_crops(c), args.repeat)
        x = clf.prepare(crops)
        predict = median_ms(lambda x=x: clf.model.predict(x, verbose=0), max(5, args.repeat // 5), warmup=2)
        rows.append([batch, f"{ours:.2f}", f"{ours / batch:.3f}", f"{predict:.1f}", f"{predict / batch:.2f}",
                     f"{predict / ours:.0f}x"])
    print(f"Mask classifier {args.model} ({clf.input_size}x{clf.input_size} {clf.spec.channel_order}, "
          f"{clf.model.count_params():,} parameters, classes {', '.join(clf.class_names)})")
    print(f"Machine: {machine()}")
    print(table(["batch", "livemask ms/batch", "livemask ms/face", "model.predict ms/batch",
                 "model.predict ms/face", "speed-up"], rows))

    args.exports.mkdir(parents=True, exist_ok=True)
    paths = ensure_exports(args.model, args.exports, args.calibration, detector, clf.spec)
    print(f"\nload average before the backend timings: {load()}")
    rows = []
    for name in BACKENDS:
        backend = clf if name == "keras" else open_classifier(str(paths[name]))
        backend.warmup()
        row = [name, f"{paths[name].stat().st_size / 1024:.0f}"]
        for batch in (1, 16):
            x = backend.prepare(np.repeat(crop[None], batch, axis=0))
            med, best = median_and_best_ms(lambda x=x, b=backend: b.predict_prepared(x), args.repeat)
            row += [f"{med / batch:.3f}", f"{best / batch:.3f}"]
        rows.append(row)
    print(table(["backend", "file KiB", "ms/face batch 1 (median)", "(fastest)", "ms/face batch 16 (median)",
                 "(fastest)"], rows))
    if args.startups < 1:
        return

    photo = args.exports / "astronaut.png"
    cv2.imwrite(str(photo), face)
    runs = [("full", sys.executable, name) for name in BACKENDS]
    if args.lean_python:
        runs += [("lean", args.lean_python, name) for name in BACKENDS[1:]]
    times: dict[tuple[str, str], list[float]] = {(kind, name): [] for kind, _, name in runs}
    print(f"\nload average before the start-up timings: {load()}")
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.startups):
            for kind, python, name in runs:
                times[(kind, name)].append(startup_seconds(python, paths[name], photo, Path(out)))
    rows = [[kind, name, f"{statistics.median(t):.2f}", f"{min(t):.2f}", f"{max(t):.2f}"]
            for (kind, name), t in times.items()]
    print(f"`livemask image` start-up, process start to first result ({args.startups} runs each, round-robin)")
    print(table(["install", "backend", "median s", "min s", "max s"], rows))
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()

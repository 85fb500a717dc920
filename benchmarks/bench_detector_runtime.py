"""CenterFace on OpenCV's DNN module and on ONNX Runtime in float32 and int8: ms per detect(), interleaved.

    python benchmarks/bench_detector_runtime.py [--sizes 320,480,640] [--calls 40]

One 640x480 frame (scikit-image's astronaut letterboxed, as ``bench_detectors.py``) and one
1280x720 frame of ``../shared/data/videos/unmasked_man_outdoors.mp4`` when that is here; for each
detector input size (``input_long_side``) the three setups (OpenCV; ONNX Runtime float32;
ONNX Runtime ``precision: int8``) are built, warmed up, and then called in turn, ``--calls``
times each; the table gives the median ms of ``detect()`` (resize, network, decoding, NMS), the
speed-ups against OpenCV and against ONNX Runtime float32, and the faces each found. The engine's
frame rate with each comes from ``bench_ab.py --baseline . --baseline-set detector.runtime=opencv
--set detector.runtime=onnxruntime`` (or ``--set detector.precision=int8``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np
from common import machine, table

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["frame", "input long side", "OpenCV ms", "ORT float32 ms", "ORT int8 ms", "ORT vs OpenCV",
          "int8 vs float32", "faces (OpenCV / float32 / int8)"]
CLIP = ROOT.parent / "shared" / "data" / "videos" / "unmasked_man_outdoors.mp4"


def frames() -> dict[str, np.ndarray]:
    import skimage.data

    astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    letterboxed = np.zeros((480, 640, 3), np.uint8)
    letterboxed[:, 64:576] = cv2.resize(astronaut, (512, 480))
    out = {"640x480 astronaut": letterboxed}
    if CLIP.is_file():
        cap = cv2.VideoCapture(str(CLIP))
        ok, frame = cap.read()
        cap.release()
        if ok:
            out[f"{frame.shape[1]}x{frame.shape[0]} {CLIP.stem}"] = frame
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="320,480,640", help="detector input_long_side values")
    parser.add_argument("--calls", type=int, default=40, help="timed calls per runtime, size and frame")
    args = parser.parse_args()
    from face_detector.centerface import CenterFaceDetector, onnxruntime_available

    if not onnxruntime_available():
        print("skipped: ONNX Runtime needs the 'onnxruntime' and 'onnx' packages (the 'lite' extra)")
        return 0
    load_before = os.getloadavg()
    rows = []
    for label, frame in frames().items():
        for side in (int(v) for v in args.sizes.split(",")):
            setups = {"opencv": CenterFaceDetector(input_long_side=side, runtime="opencv"),
                      "float32": CenterFaceDetector(input_long_side=side, runtime="onnxruntime"),
                      "int8": CenterFaceDetector(input_long_side=side, runtime="onnxruntime", precision="int8")}
            times: dict[str, list[float]] = {r: [] for r in setups}
            found = {r: len(d.detect(frame)) for r, d in setups.items()}  # warm-up
            for _ in range(args.calls):
                for r, det in setups.items():
                    t0 = time.perf_counter()
                    det.detect(frame)
                    times[r].append((time.perf_counter() - t0) * 1000.0)
            ms = {r: statistics.median(t) for r, t in times.items()}
            rows.append([label, str(side), f"{ms['opencv']:.1f}", f"{ms['float32']:.1f}", f"{ms['int8']:.1f}",
                         f"{ms['opencv'] / ms['float32']:.2f}", f"{ms['float32'] / ms['int8']:.2f}",
                         " / ".join(str(found[r]) for r in setups)])
            print(table(HEADER, rows[-1:]), flush=True)
    load_after = os.getloadavg()
    print(f"\nmachine: {machine()}; cv2 threads {cv2.getNumThreads()}; load average {load_before[0]:.2f} at the "
          f"start, {load_after[0]:.2f} at the end; median of {args.calls} calls each, in turn\n")
    print(table(HEADER, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

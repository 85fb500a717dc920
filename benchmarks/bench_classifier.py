"""Classifier cost per face: livemask's padded tf.function call vs Keras model.predict.

Run: python benchmarks/bench_classifier.py  (prints a markdown table; medians)
Target (issue 2): <= 1 ms per face at batch 16 on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_ms, table

from livemask.core.quiet import import_tensorflow_quietly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/mask_classifier.keras")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    import_tensorflow_quietly()
    import cv2
    import skimage.data

    from face_detector import CenterFaceDetector
    from livemask.models.classifier import MaskClassifier

    clf = MaskClassifier(args.model)
    clf.warmup()
    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    crop = clf.crops(face, CenterFaceDetector().detect(face))[0]
    rows = []
    for batch in (1, 4, 16, 32):
        crops = np.repeat(crop[None], batch, axis=0)
        ours = median_ms(lambda c=crops: clf.predict_crops(c), args.repeat)
        x = clf.prepare(crops)
        predict = median_ms(lambda x=x: clf.model.predict(x, verbose=0), max(5, args.repeat // 5), warmup=2)
        rows.append([batch, f"{ours:.2f}", f"{ours / batch:.3f}", f"{predict:.1f}", f"{predict / batch:.2f}",
                     f"{predict / ours:.0f}x"])
    print(f"Mask classifier {args.model} ({clf.input_size}x{clf.input_size} RGB, "
          f"{clf.model.count_params():,} parameters)")
    print(f"Machine: {machine()}")
    print(table(["batch", "livemask ms/batch", "livemask ms/face", "model.predict ms/batch",
                 "model.predict ms/face", "speed-up"], rows))


if __name__ == "__main__":
    main()

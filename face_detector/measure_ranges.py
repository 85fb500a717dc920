"""Measure CenterFace's int8 activation ranges on real scenes: ``python -m face_detector.measure_ranges``.

    python -m face_detector.measure_ranges ../shared/data/scenes ../shared/data/scenes_extra [--count 300]

Draws ``--count`` images (seed 0) from the train lists of the VOC folders given (never a val
list), runs the float network on them as the detector would (long side 640) and writes the
ranges that :func:`face_detector.quantize.quantize` uses, by default over the shipped
``face_detector/centerface_int8_ranges.json``.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from face_detector.centerface import bundled_model_path, network_input, network_size
from face_detector.quantize import RANGES, calibrate, free_sizes

CALIBRATION_LONG_SIDE = 640  # the detector's default input_long_side


def blobs(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The network inputs of BGR ``frames``, each resized as the detector does at long side 640."""
    for bgr in frames:
        yield network_input(bgr, *network_size(*bgr.shape[:2], CALIBRATION_LONG_SIDE))


def main(argv: list[str] | None = None) -> int:
    """Measure the ranges; returns the exit status."""
    import cv2
    import onnx

    parser = argparse.ArgumentParser(prog="python -m face_detector.measure_ranges", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="VOC folders (images/ and a list of names)")
    parser.add_argument("--list", default="train.txt", help="list file inside each folder (never a val list)")
    parser.add_argument("--count", type=int, default=300, help="scenes drawn at random (seed 0)")
    parser.add_argument("-o", "--output", type=Path, default=RANGES)
    args = parser.parse_args(argv)
    paths = []
    for folder in args.folders:
        listed = folder / args.list
        if not listed.is_file():
            parser.error(f"{listed}: no such list file (a VOC folder has images/ and {args.list})")
        names = listed.read_text(errors="replace").split()
        paths += [folder / "images" / f"{n}.jpg" for n in names if (folder / "images" / f"{n}.jpg").is_file()]
    if not paths:
        parser.error(f"no images/NAME.jpg of the names in {args.list} in {', '.join(map(str, args.folders))}")
    random.Random(0).shuffle(paths)
    paths = sorted(paths[:args.count])
    frames = (image for image in (cv2.imread(str(p)) for p in paths) if image is not None)
    calibrate(free_sizes(onnx.load(str(bundled_model_path()))), blobs(frames), args.output)
    print(f"{args.output}: ranges from {len(paths)} scenes of {', '.join(str(f) for f in args.folders)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The people stage's own cost per frame, with and without ``people.follow_camera`` (the camera's motion),
comparing faces on every frame (``people.check_every_s: 0``) or every 0.2 s (the default).

A real clip with a real person and a real face photo on the wall (``masked_woman_laptop.mp4`` of
``../shared/data/videos``, as ``tests/test_static_camera.py`` makes it), seen through a 640x360 window
that shakes, drifts and turns like a hand-held camera; detection (CenterFace at 320, every 2nd frame),
classification and tracking are run once, then the same results go through a fresh people stage per
configuration, in rotated order: CPU milliseconds per frame (process time, all threads), median of the
repeats. The verdicts are printed beside the cost: sightings flagged static (the picture's, and any other) and
people counted at the end.

Usage: python benchmarks/bench_people.py [--frames 200] [--repeats 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clipmaker import hand_held, pasted_photo_frames  # noqa: E402
from common import machine, rotated, table  # noqa: E402

from livemask.core.types import Frame  # noqa: E402
from livemask.engine.people import People, PeopleOptions  # noqa: E402
from livemask.engine.pipeline import FrameProcessor  # noqa: E402
from livemask.engine.tracker import Tracker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    from face_detector import CenterFaceDetector
    from livemask.apps import compose

    detector = CenterFaceDetector(input_long_side=320)
    classifier = compose.classifier(compose.load_config(None))
    frames, _region, fps = pasted_photo_frames(args.data, detector, margin=100)
    clips = {"still": [f[22:382, 40:680] for f in frames[:args.frames]],
             "hand-held": hand_held(frames[:args.frames], (640, 360))[0]}
    results = {}
    for name, clip in clips.items():
        processor = FrameProcessor(detector, classifier, Tracker(), 2)
        results[name] = [processor.process(Frame(i, i / fps, image, name)) for i, image in enumerate(clip)]
    configs = list(itertools.product(clips, (False, True), (0.0, 0.2)))
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    verdicts: dict[tuple, tuple[int, int]] = {}
    for clip, follow, every in rotated(configs, args.repeats):
        people = People(PeopleOptions(follow_camera=follow, check_every_s=every))
        started = time.process_time()
        outs = [people.update(result) for result in results[clip]]
        times[(clip, follow, every)].append((time.process_time() - started) * 1000.0 / len(results[clip]))
        verdicts[(clip, follow, every)] = (sum(int(out.analytics.static.sum()) for out in outs),
                                           outs[-1].analytics.people.counted)
    rows = [[clip, str(follow).lower(), every, f"{statistics.median(times[(clip, follow, every)]):.2f}",
             *verdicts[(clip, follow, every)]] for clip, follow, every in configs]
    print(f"{args.frames} frames 640x360, {args.repeats} repeats")
    print(table(["clip", "follow_camera", "check_every_s", "people stage CPU ms / frame (median)",
                 "sightings flagged static", "people counted"], rows))
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().strip())
    print(machine())


if __name__ == "__main__":
    main()

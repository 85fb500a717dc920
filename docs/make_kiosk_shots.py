"""Make the kiosk screenshots (docs/kiosk-*.png) through the kiosk renderer itself.

    .venv/bin/python docs/make_kiosk_shots.py [--data ../shared/data] [--out docs]

Each shot is one camera frame (1280x720) through the real CenterFace detector, the committed classifier
and :class:`livemask.sinks.kiosk.KioskRenderer` with the default kiosk settings, drawn at 960x540:

* masked / unmasked: the first ``yyn_*`` portrait (by file name) in ``faces/with_mask`` and
  ``faces/without_mask`` in which the detector finds exactly one face, enlarged to the frame's height
  in front of a plain wall;
* too far: the unmasked portrait at 110 px on the wall (its face is below ``kiosk.min_face_px``);
* nobody: the wall alone;
* starting / ended: the start screen (shown while the models load) and the end screen of a file.

The photos are only read; what is written is the program's own screen. Prints each file, the photo it
came from, the state, label and size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from face_detector import CenterFaceDetector  # noqa: E402
from livemask.core.types import Frame, FrameResult  # noqa: E402
from livemask.models.backends import open_classifier  # noqa: E402
from livemask.sinks.kiosk import ENDED, STARTING, KioskOptions, KioskRenderer  # noqa: E402

FRAME = (1280, 720)
WALL = (176, 184, 190)  # BGR, a light grey wall


def portrait(folder: Path, detector) -> Path:
    for path in sorted(folder.glob("yyn_*.jpg")):
        image = cv2.imread(str(path))
        if image is not None and len(detector.detect(image)) == 1:
            return path
    raise SystemExit(f"no yyn_* photo with exactly one detected face in {folder}")


def on_wall(photo: np.ndarray | None, height: int) -> np.ndarray:
    """A camera frame: the wall, and ``photo`` scaled to ``height`` px, centred."""
    w, h = FRAME
    frame = np.full((h, w, 3), WALL, np.uint8)
    if photo is not None:
        ph, pw = photo.shape[:2]
        width = round(pw * height / ph)
        small = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA if height < ph else cv2.INTER_CUBIC)
        x, y = (w - width) // 2, (h - height) // 2
        frame[y:y + height, x:x + width] = small
    return frame


def shot(frame: np.ndarray, detector, classifier) -> tuple[np.ndarray, KioskRenderer]:
    dets = detector.detect(frame)
    result = FrameResult(Frame(0, 0.0, frame, "shot"), dets, classifier.classify(frame, dets),
                         np.arange(1, len(dets) + 1, dtype=np.int64))
    renderer = KioskRenderer(KioskOptions(width=960, height=540))
    return renderer.render(result), renderer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    detector = CenterFaceDetector()
    classifier = open_classifier(str(ROOT / "models" / "mask_classifier.keras"))
    masked = portrait(data / "faces" / "with_mask", detector)
    unmasked = portrait(data / "faces" / "without_mask", detector)
    plan = [("kiosk-masked.png", masked, FRAME[1]), ("kiosk-unmasked.png", unmasked, FRAME[1]),
            ("kiosk-too-far.png", unmasked, 110), ("kiosk-nobody.png", None, 0)]
    for name, path, height in plan:
        photo = cv2.imread(str(path)) if path is not None else None
        image, renderer = shot(on_wall(photo, height), detector, classifier)
        target = out / name
        cv2.imwrite(str(target), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        view = renderer.view
        print(f"{target}: {path.name if path else 'the wall alone'}, {view.state}"
              f"{' ' + view.label if view.label else ''}, {target.stat().st_size // 1024} KB")
    for name, text in (("kiosk-starting.png", STARTING), ("kiosk-ended.png", ENDED)):
        target = out / name
        cv2.imwrite(str(target), KioskRenderer(KioskOptions(width=960, height=540)).message_screen(text),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"{target}: {text!r}, {target.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

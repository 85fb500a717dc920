"""Make a short demo clip offline from scikit-image's photos: ``python -m livemask.apps.demo out.mp4``.

The astronaut photo (a real, unmasked face) drifts across a 640x480 frame, so a fresh
machine without a camera or data still has something for ``livemask run`` to show.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


def demo_frames(n: int = 120, size: tuple[int, int] = (640, 480)):
    """Yield ``n`` BGR frames with the astronaut's face moving left to right."""
    import skimage.data

    w, h = size
    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (h * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
    back = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    back = cv2.GaussianBlur(cv2.resize(back, (w, h)), (0, 0), 5)
    fh, fw = face.shape[:2]
    for i in range(n):
        frame = back.copy()
        x = int((w - fw) * (0.5 + 0.5 * np.sin(2 * np.pi * i / n)))
        y = (h - fh) // 2
        frame[y:y + fh, x:x + fw] = face
        yield frame


def write_demo(path: Path, n: int = 120, fps: float = 25.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    try:
        for frame in demo_frames(n):
            writer.write(frame)
    finally:
        writer.release()
    return path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = write_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo.mp4"))
    log.info("wrote %s", out)

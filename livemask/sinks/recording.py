"""Where results go in headless mode: an annotated video file and a JSON-lines event log.

Both are written so that they are complete after an interrupt: the caller closes them in
``finally`` (the video's index is written on close), and the event log is flushed at
least every ``flush_s`` seconds and ends with a summary line.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.types import FrameResult

log = logging.getLogger(__name__)

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class VideoRecorder:
    """Writes BGR frames of one fixed size to a video file (mp4v in .mp4, MJPG in .avi).

    A frame of another size (an image folder with mixed sizes) is resized to fit.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise LivemaskError(f"{self.path}: unsupported video file type (use {', '.join(FOURCC)})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size = (int(size[0]), int(size[1]))
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC[suffix]), self.fps, self.size)
        if not self.writer.isOpened():
            raise LivemaskError(f"{self.path}: cannot open for writing")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            log.info("wrote %d frames to %s", self.frames, self.path)


def face_records(result: FrameResult) -> list[dict]:
    det, pred = result.detections, result.predictions
    ids = result.track_ids if result.track_ids is not None else [None] * len(det)
    return [
        {"box": [round(float(v), 1) for v in box], "label": label, "probability": round(float(prob), 4),
         "track_id": None if tid is None else int(tid)}
        for box, label, prob, tid in zip(det.boxes, pred.labels, pred.confidences, ids, strict=True)
    ]


class EventLog:
    """One JSON line per processed frame, then one ``{"summary": ...}`` line.

    ``timestamp`` is the capture time in Unix seconds; ``position_s`` the position in
    the file for file and folder sources.
    """

    def __init__(self, path: str | Path, flush_s: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.file = self.path.open("w", encoding="utf-8")
        except OSError as err:
            raise LivemaskError(f"{self.path}: cannot open for writing ({err.strerror})") from None
        self.flush_s = float(flush_s)
        self._flushed = time.monotonic()
        # monotonic capture times -> wall clock
        self._wall_offset = time.time() - time.monotonic()
        self.lines = 0

    def _write(self, obj: dict) -> None:
        self.file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.lines += 1
        now = time.monotonic()
        if now - self._flushed >= self.flush_s:
            self.file.flush()
            self._flushed = now

    def write(self, result: FrameResult) -> None:
        frame = result.frame
        record = {"frame_id": frame.frame_id, "timestamp": round(frame.timestamp + self._wall_offset, 3)}
        if frame.position_ms is not None:
            record["position_s"] = round(frame.position_ms / 1000.0, 3)
        record["faces"] = face_records(result)
        self._write(record)

    def write_summary(self, summary: dict) -> None:
        self._write({"summary": summary})
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

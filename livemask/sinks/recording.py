"""File sinks: an annotated video (:class:`VideoSink`) and a JSON-lines event log (:class:`EventLog`).

Both are complete after an interrupt: the engine closes every sink on the way out (the
video's index is written on close), and the event log is flushed at least every
``flush_s`` seconds and ends with a summary line. Faces are written with the one face
record of :mod:`livemask.core.records`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.records import face_records
from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo
from livemask.sinks.render import Renderer

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


class VideoSink:
    """The annotated video as a threaded sink: drawing and encoding run beside the live loop.

    The writer opens on the first frame, at that frame's size and the source's fps.
    """

    name = "video"
    threaded = True
    queue_size = 8

    def __init__(self, path: str | Path, renderer: Renderer | None = None):
        self.path = Path(path)
        self.renderer = renderer or Renderer()
        self.fps = 30.0
        self.recorder: VideoRecorder | None = None

    def open(self, info: RunInfo) -> None:
        self.fps = info.fps

    def write(self, result: FrameResult) -> None:
        image = self.renderer.render(result)
        if self.recorder is None:
            self.recorder = VideoRecorder(self.path, self.fps, (image.shape[1], image.shape[0]))
        self.recorder.write(image)

    def close(self, summary: dict) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def stats(self) -> dict:
        return {"video": str(self.path)}


class EventLog:
    """One JSON line per processed frame, then one ``{"summary": ...}`` line (a sink, on the engine's loop).

    ``timestamp`` is the capture time in Unix seconds; ``position_s`` the position in
    the file for file and folder sources; ``faces`` the face records of the frame.
    """

    name = "events"
    threaded = False

    def __init__(self, path: str | Path, flush_s: float = 1.0):
        self.path = Path(path)
        self.flush_s = float(flush_s)
        self.file = None
        self.lines = 0

    def open(self, info: RunInfo | None = None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("w", encoding="utf-8")
        except OSError as err:
            raise LivemaskError(f"{self.path}: cannot open for writing ({err.strerror})") from None
        self._flushed = time.monotonic()
        # monotonic capture times -> wall clock
        self._wall_offset = time.time() - time.monotonic()

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
        record["faces"] = face_records(result.detections, result.predictions, result.track_ids)
        self._write(record)

    def close(self, summary: dict | None = None) -> None:
        """Write the summary line (when given) and close the file."""
        if self.file is None or self.file.closed:
            return
        try:
            if summary is not None:
                self._write({"summary": summary})
            self.file.flush()
        finally:
            self.file.close()

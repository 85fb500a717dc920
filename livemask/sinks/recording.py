"""File sinks: an annotated video (:class:`VideoSink`) and a JSON-lines event log (:class:`EventLog`).

Both are complete after an interrupt: the engine closes every sink on the way out (the
video's index is written on close), and the event log is flushed at least every
``flush_s`` seconds and ends with a summary line. Faces are written with the one face
record of :mod:`livemask.core.records`.

Every write is checked. ``cv2.VideoWriter.write`` reports nothing, so the video is read
back after it is closed: when it cannot be opened or holds fewer frames than were given
(a full disk, a file size limit), that is an :class:`OutputError` naming the file (a file
with no readable frame is removed), and the
summary handed to the later sinks (the event log, the log line) says how many frames the
file really holds. A failed write of the event log is an OutputError naming the file too.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from livemask.core.clock import wall_offset
from livemask.core.errors import OutputError
from livemask.core.records import event_lines
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
            raise OutputError(f"{self.path}: unsupported video file type (use {', '.join(FOURCC)})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot write {self.path} ({err.strerror or err})") from None
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size = (int(size[0]), int(size[1]))
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC[suffix]), self.fps, self.size)
        if not self.writer.isOpened():
            raise OutputError(f"cannot write {self.path} (the video writer cannot open it)")
        self.frames = 0  # frames given to the writer
        self.verified: int | None = None  # frames the closed file holds (set by close)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Release the writer and read the file back; an OutputError when it is not all there."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        self.verified = readable_frames(self.path, self.frames)
        if self.verified < self.frames:
            reason = _short_reason(self.path)
            kept = ""
            if self.verified == 0:  # nothing playable: do not leave a file that looks like a recording
                try:
                    self.path.unlink()
                    kept = "; removed"
                except OSError:
                    pass
            raise OutputError(
                f"cannot write {self.path} ({reason}: {self.verified} of {self.frames} frames readable{kept})")
        log.info("wrote %d frames to %s", self.frames, self.path)


def readable_frames(path: Path, expected: int | None = None) -> int:
    """How many frames OpenCV can decode from ``path`` (0 when it cannot be opened).

    With ``expected``: when the container's index says at least that many and the last of them
    decodes, ``expected`` is returned without decoding the whole file (a long recording is checked
    in a moment); otherwise the frames are counted one by one.
    """
    try:
        if path.stat().st_size == 0:
            return 0
    except OSError:
        return 0
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        if expected:
            indexed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if indexed >= expected and cap.set(cv2.CAP_PROP_POS_FRAMES, expected - 1) and cap.grab():
                return expected
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def _short_reason(path: Path) -> str:
    """Why a video could be short: the file size limit or a full file system, when either is the case."""
    import resource

    try:
        size = path.stat().st_size
    except OSError:
        return "not written"
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and size >= soft - 1024 * 1024:
        return "File too large"
    try:
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < 1024 * 1024:
            return "No space left on device"
    except OSError:
        pass
    return "incomplete"


class VideoSink:
    """The annotated video as a threaded sink: drawing and encoding run beside the live loop.

    The writer opens on the first frame, at that frame's size and the source's fps (or ``fps``).
    """

    name = "video"
    threaded = True
    queue_size = 8

    def __init__(self, path: str | Path, renderer: Renderer | None = None, fps: float | None = None):
        self.path = Path(path)
        self.renderer = renderer or Renderer()
        self.fixed_fps = fps  # None: the source's
        self.fps = fps or 30.0
        self.recorder: VideoRecorder | None = None

    def open(self, info: RunInfo) -> None:
        self.fps = self.fixed_fps or info.fps

    def write(self, result: FrameResult) -> None:
        image = self.renderer.render(result)
        if self.recorder is None:
            self.recorder = VideoRecorder(self.path, self.fps, (image.shape[1], image.shape[0]))
        self.recorder.write(image)

    def close(self, summary: dict) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.close()
        except OutputError as err:
            # the sinks closed after this one (event log, log line) must not claim frames the file lacks
            record = summary.setdefault("sinks", {}).setdefault(self.name, {})
            record.update(written=self.recorder.verified, error=str(err))
            summary["ended"] = "error"
            summary["error"] = summary.get("error") or str(err)
            raise

    def stats(self) -> dict:
        return {"video": str(self.path)}


class EventLog:
    """One JSON line per processed frame, then one ``{"summary": ...}`` line (a sink, on the engine's loop).

    ``timestamp`` is the capture time in Unix seconds; ``position_s`` the position in
    the file for file and folder sources; ``faces`` the face records of the frame; ``people``
    the people counted by track so far (when the people stage ran). Each alert fired on the
    frame follows the frame's line as its own ``{"alert": {...}}`` line.
    """

    name = "events"
    threaded = False

    def __init__(self, path: str | Path, flush_s: float = 1.0):
        self.path = Path(path)
        self.flush_s = float(flush_s)
        self.file = None
        self.lines = 0
        self.camera: str | None = None  # a run with several cameras: every line names its camera

    def open(self, info: RunInfo | None = None) -> None:
        self.camera = getattr(info, "camera", None)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("w", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot write {self.path} ({err.strerror or err})") from None
        self._flushed = time.monotonic()
        # monotonic capture times -> wall clock
        self._wall_offset = wall_offset()

    def _failed(self, err: OSError) -> OutputError:
        return OutputError(f"cannot write {self.path} ({err.strerror or err})")

    def _write(self, obj: dict) -> None:
        if self.camera is not None:
            obj = {"camera": self.camera, **obj}
        try:
            self.file.write(json.dumps(obj, separators=(",", ":")) + "\n")
            now = time.monotonic()
            if now - self._flushed >= self.flush_s:
                self.file.flush()
                self._flushed = now
        except OSError as err:
            raise self._failed(err) from None
        self.lines += 1

    def write(self, result: FrameResult) -> None:
        if self.file is None:  # used without open() (livemask.batch.worker): open on the first line
            self.open()
        for line in event_lines(result, self._wall_offset):
            self._write(line)

    def write_summary(self, summary: dict) -> None:
        """The summary line on its own (livemask.batch.worker writes it, then calls close())."""
        if self.file is None:
            self.open()
        self._write({"summary": summary})

    def close(self, summary: dict | None = None) -> None:
        """Write the summary line (when given) and close the file."""
        if self.file is None or self.file.closed:
            return
        try:
            if summary is not None:
                self._write({"summary": summary})
            self.file.flush()
            if self.path.is_file():
                os.fsync(self.file.fileno())  # a full disk may only show here
        except OSError as err:
            raise self._failed(err) from None
        finally:
            try:
                self.file.close()
            except OSError:
                pass  # the failure was raised above (the same buffered bytes)

"""Video sources: a camera index, a video file, an RTSP/HTTP(S) URL or an image folder.

A :class:`Source` opens and reads one kind of input and returns BGR uint8 images; the capture
thread that runs it lives in :mod:`livemask.engine.capture`. A source's errors are
:class:`~livemask.core.errors.SourceError`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import Interrupted, LivemaskError, SourceError
from livemask.core.images import IMAGE_SUFFIXES, read_image
from livemask.core.redact import redact_url
from livemask.engine.video_container import frame_count_is_exact, truncation

log = logging.getLogger(__name__)

URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def quiet_video_backend(verbose: bool = False) -> None:
    """Keep OpenCV's and FFmpeg's own console messages out of the user's one-line errors.

    Must run before the first capture is opened (FFmpeg reads its level once).
    """
    if not verbose:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class Source:
    """One input. Subclasses implement :meth:`_open`, :meth:`_read` and :meth:`_close`.

    ``read()`` returns the next image or ``None`` at the end; it raises SourceError when
    the input fails. ``live`` sources produce frames whether or not anybody reads them.
    """

    live = False

    def __init__(self, name: str):
        self.name = name
        self.fps: float = 0.0
        self.size: tuple[int, int] | None = None  # (width, height) once known
        self.frame_count: int | None = None  # number of frames when the container says
        self.reconnects = 0  # successful re-opens after a lost connection
        self.skipped = 0  # inputs skipped because they could not be read (images of a folder)
        self.gap_s = 0.0  # seconds without frames while reconnecting
        self._opened = False

    def open(self) -> None:
        self._open()
        self._opened = True

    def read(self) -> np.ndarray | None:
        return self._read()

    def position_ms(self) -> float | None:
        return None

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._close()

    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> np.ndarray | None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _CaptureSource(Source):
    """Common code for sources read with ``cv2.VideoCapture``."""

    def __init__(self, name: str):
        super().__init__(name)
        self.cap: cv2.VideoCapture | None = None

    def _describe(self, cap: cv2.VideoCapture) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None

    def _close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class CameraSource(_CaptureSource):
    """A webcam by index (0 is the first camera)."""

    live = True

    def __init__(self, index: int):
        super().__init__(f"camera {index}")
        self.index = int(index)

    def _open(self) -> None:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open camera {self.index} (no such camera, or it is in use)")
        self.cap = cap
        self._describe(cap)

    def _read(self) -> np.ndarray | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            raise SourceError(f"camera {self.index} stopped delivering frames")
        return image


class FileSource(_CaptureSource):
    """A video file. A file that ends before its own frame count is reported as truncated."""

    def __init__(self, path: str | Path):
        super().__init__(str(path))
        self.path = Path(path)
        self.frames_read = 0

    def _open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such video file")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.path}: cannot open as a video (not a video, or truncated/corrupt)")
        self.cap = cap
        self.frames_read = 0  # (re)opened at its start
        self._describe(cap)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def _read(self) -> np.ndarray | None:
        ok, image = self.cap.read()
        if ok and image is not None:
            self.frames_read += 1
            return image
        # The frame count is a count only for containers that index every frame (MP4, AVI); for
        # Matroska and others it is duration x fps. Damage is a container that declares more bytes
        # than the file has, or an indexed container whose frames stop decoding early.
        if self.frame_count and self.frames_read < self.frame_count - 2:
            cut = truncation(self.path)
            if cut is not None or frame_count_is_exact(self.path):
                raise SourceError(
                    f"{self.path}: video ends at frame {self.frames_read} of {self.frame_count} "
                    f"(truncated or corrupt file{': ' + cut if cut else ''})"
                )
            log.info("%s: %d frames (the container's count of %d was an estimate)", self.path, self.frames_read,
                     self.frame_count)
        return None

    def position_ms(self) -> float | None:
        return (self.frames_read - 1) * 1000.0 / self.fps if self.fps else None


class UrlSource(_CaptureSource):
    """An RTSP/HTTP(S) stream that reconnects with capped exponential backoff.

    After a lost connection it tries ``reconnect_tries`` times, waiting
    ``reconnect_delay_s`` and doubling the wait up to ``reconnect_max_delay_s``; every
    try is logged. The time without frames is added to :attr:`gap_s`.
    """

    live = True

    def __init__(self, url: str, reconnect_tries: int = 5, reconnect_delay_s: float = 0.5,
                 reconnect_max_delay_s: float = 5.0, timeout_s: float = 5.0,
                 stop_event: threading.Event | None = None):
        super().__init__(redact_url(url))  # the name is what logs, errors and summaries show
        self.url = url
        self.reconnect_tries = int(reconnect_tries)
        self.reconnect_delay_s = float(reconnect_delay_s)
        self.reconnect_max_delay_s = float(reconnect_max_delay_s)
        self.timeout_ms = int(float(timeout_s) * 1000)
        self.stop_event = stop_event or threading.Event()
        self.reconnecting: tuple[int, int] | None = None  # (try k, of n) while a lost stream is being retried

    def _connect(self) -> bool | None:
        """One connection attempt: True when open, False when refused, None when stop was requested.

        The blocking open runs in a helper thread so that a stop request (Ctrl-C) is seen at once.
        """
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        lock, result, abandoned = threading.Lock(), {}, threading.Event()

        def attempt() -> None:
            try:
                cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
            except cv2.error:
                cap = None
            with lock:
                if abandoned.is_set():
                    if cap is not None:
                        cap.release()
                    return
                result["cap"] = cap

        worker = threading.Thread(target=attempt, name="connect", daemon=True)
        worker.start()
        while worker.is_alive():
            if self.stop_event.wait(0.05):
                with lock:
                    abandoned.set()
                    cap = result.pop("cap", None)
                if cap is not None:
                    cap.release()
                return None
        cap = result.get("cap")
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return False
        self._close()
        self.cap = cap
        self._describe(cap)
        return True

    def _open(self) -> None:
        ok = self._connect()
        tries = 1
        if ok is False:
            ok, more = self._reconnect("cannot connect")
            tries += more
        if ok is None or (self.stop_event.is_set() and not ok):
            raise Interrupted(f"{self.name}: interrupted while connecting")
        if not ok:
            raise SourceError(f"{self.name}: cannot open stream after {tries} {'try' if tries == 1 else 'tries'}")

    def _reconnect(self, why: str) -> tuple[bool | None, int]:
        """Try to get the stream back: (True, tries) when back, (False, tries) when all tries
        failed, (None, tries) when stop was requested."""
        self._close()
        lost_at = time.monotonic()
        delay = self.reconnect_delay_s
        for attempt in range(1, self.reconnect_tries + 1):
            self.reconnecting = (attempt, self.reconnect_tries)
            log.warning("%s: %s; reconnecting in %.1f s (try %d of %d)", self.name, why, delay, attempt,
                        self.reconnect_tries)
            if self.stop_event.wait(delay):
                return None, attempt - 1
            ok = self._connect()
            if ok is None:
                return None, attempt
            if ok:
                self.reconnecting = None
                self.gap_s += time.monotonic() - lost_at
                log.info("%s: reconnected after %.1f s", self.name, time.monotonic() - lost_at)
                return True, attempt
            why = "still unreachable"
            delay = min(delay * 2.0, self.reconnect_max_delay_s)
        return False, self.reconnect_tries

    def _read(self) -> np.ndarray | None:
        while True:
            if self.cap is not None:
                ok, image = self.cap.read()
                if ok and image is not None:
                    return image
            if self.stop_event.is_set():
                return None
            ok, tries = self._reconnect("stream lost")
            if not ok:
                if ok is None or self.stop_event.is_set():
                    return None
                raise SourceError(f"{self.name}: stream lost and not back after {tries} "
                                  f"{'try' if tries == 1 else 'tries'}")
            self.reconnects += 1


class FolderSource(Source):
    """The images of a folder in name order.

    An image that cannot be read (not an image, over the pixel limit, damaged) is skipped
    with one log line naming it and counted in :attr:`skipped`, wherever it is in the
    folder; a folder with no readable image is a SourceError.
    """

    def __init__(self, folder: str | Path, fps: float = 0.0):
        super().__init__(str(folder))
        self.folder = Path(folder)
        self.fps = float(fps)
        self.paths: list[Path] = []
        self.index = 0

    def _open(self) -> None:
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self.frame_count = len(self.paths)
        self._first = self._read()  # the first readable image gives the size
        if self._first is None:
            raise SourceError(f"{self.folder}: none of its {len(self.paths)} images can be read")
        self.size = (self._first.shape[1], self._first.shape[0])

    def _read(self) -> np.ndarray | None:
        first, self._first = getattr(self, "_first", None), None
        if first is not None:
            return first
        while self.index < len(self.paths):
            path = self.paths[self.index]
            self.index += 1
            try:
                return read_image(path)
            except LivemaskError as err:
                self.skipped += 1
                log.error("%s (skipped)", err)
        return None

    def position_ms(self) -> float | None:
        return (self.index - 1) * 1000.0 / self.fps if self.fps else None


def parse_source(text: str | int) -> tuple[str, str | int]:
    """Classify ``--source``: ("camera", index) | ("url", url) | ("folder", path) | ("file", path).

    ``env:NAME`` reads the source from environment variable NAME, so that a URL with
    credentials need not appear on the command line (or in ``ps``).
    """
    text = str(text).strip()
    if text.startswith("env:"):
        name = text[4:]
        text = os.environ.get(name, "").strip()
        if not text:
            raise SourceError(f"--source env:{name}: environment variable {name!r} is not set or empty")
    if not text:
        raise SourceError("the source is empty (give a camera index, a video file, a URL or an image folder)")
    if re.fullmatch(r"\d+", text):
        return "camera", int(text)
    if URL_PATTERN.match(text):
        return "url", text
    if Path(text).is_dir():
        return "folder", text
    return "file", text

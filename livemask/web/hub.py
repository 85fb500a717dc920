"""The live source's frames for the page: :class:`FrameHub`, a sink of the engine.

:class:`FrameHub` is one of the engine's sinks (:mod:`livemask.engine.sink`): threaded, so
the engine hands it results through a small bounded channel and never waits for it (what it
could not take is dropped and counted in the run's summary). ``write`` keeps only the newest
frame (annotated by the :class:`~livemask.sinks.render.Renderer`) and never waits for a viewer, so a slow
browser cannot stall the loop. Its :class:`EventFeed`,
on the engine's thread, appends every frame's event-log lines (:func:`livemask.core.records.event_lines`:
the same lines as the ``--events`` file, with ``people`` and an ``alert`` line per alert when the people
stage ran), so no line is lost when a frame is. The routes that serve it are :mod:`livemask.web.live_routes`;
their viewers wait in :meth:`FrameHub.wait_newer` and each write wakes them (nobody polls).

A frame is drawn (boxes, labels, the status lines) and JPEG-encoded only for viewers (the drawing about
0.3 ms, the JPEG 0.5 ms at 640x480 here: with ten cameras at 15 fps and nobody watching, 150 of each a second
saved), once per size
whatever their number: in ``write`` while a viewer took that size in the last :data:`WANTED_S` seconds,
otherwise by the first viewer who asks (:attr:`LiveFrame.jpeg`, the full frame; :attr:`LiveFrame.tile_jpeg`,
:data:`TILE_WIDTH` px wide, ``frame.jpg?size=tile``). The Site page's grid takes :meth:`LiveFrame.tile_image`
(not encoded: the tiles go into one mosaic JPEG, :mod:`livemask.web.mosaic`).

A file source on the page is a capture kept for replay (:meth:`~livemask.engine.capture.Capture.keep_for_replay`),
the hub's :attr:`FrameHub.playback`: the viewers' routes call :meth:`FrameHub.watched` (the first viewer starts
it), :meth:`FrameHub.state` says ``ended`` at its end and :meth:`FrameHub.replay` plays it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from livemask.core.clock import wall_offset
from livemask.core.records import event_lines, face_records
from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo

log = logging.getLogger(__name__)

TILE_WIDTH = 320  # px: the Site page's tiles (a 4-column grid on a 1280 px screen, at most 2x for HiDPI)
WANTED_S = 2.0  # a size a viewer took this recently is encoded as each frame arrives


@dataclass(frozen=True)
class LiveFrame:
    """The newest frame as viewers get it; its annotated image, its face records and its JPEGs are made on first
    use, once (a frame nobody looks at is never drawn)."""

    seq: int  # 1, 2, ... in the order written
    draw: Callable[[FrameResult], np.ndarray]  # the annotated frame (BGR) of a result
    result: FrameResult
    captured_ms: float  # capture time, Unix milliseconds
    written_ms: float  # when the hub got it, Unix milliseconds
    counts: dict
    quality: int = 80
    wanted: dict = field(default_factory=dict, compare=False, repr=False)  # the hub's: size -> until (monotonic)
    _made: dict = field(default_factory=dict, compare=False, repr=False)  # "image", "faces", scaled images
    _jpegs: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    @property
    def image(self) -> np.ndarray:
        """The annotated frame (BGR), drawn on first use."""
        with self._lock:
            if "image" not in self._made:
                self._made["image"] = self.draw(self.result)
            return self._made["image"]

    @property
    def faces(self) -> list:
        """The frame's face records (:func:`livemask.core.records.face_records`), made on first use."""
        with self._lock:
            if "faces" not in self._made:
                r = self.result
                self._made["faces"] = face_records(r.detections, r.predictions, r.track_ids,
                                                   None if r.analytics is None else r.analytics.static)
            return self._made["faces"]

    @property
    def jpeg(self) -> bytes:
        """The whole annotated frame as JPEG."""
        return self.encoded(0)

    @property
    def tile_jpeg(self) -> bytes:
        """The frame :data:`TILE_WIDTH` px wide (never wider than it is) as JPEG: the Site page's tiles."""
        return self.encoded(TILE_WIDTH)

    def tile_image(self) -> np.ndarray:
        """The annotated frame :data:`TILE_WIDTH` px wide (never wider than it is), BGR, made once: the Site
        page's mosaic of tiles (:mod:`livemask.web.mosaic`)."""
        return self.scaled(TILE_WIDTH)

    def scaled(self, width: int) -> np.ndarray:
        """The annotated frame ``width`` px wide (0, or not narrower than it is: as drawn), made once per width:
        the tiles' JPEG and the mosaic share one resize."""
        with self._lock:
            key = ("scaled", width)
            if key not in self._made:
                self._made[key] = downscaled(self.image, width)
            return self._made[key]

    def encoded(self, width: int, note: bool = True) -> bytes:
        """The JPEG at ``width`` px (0: as it is), made once; ``note``: a viewer asked (the hub then encodes
        that size as frames arrive)."""
        if note:
            self.wanted[width] = time.monotonic() + WANTED_S
        with self._lock:
            data = self._jpegs.get(width)
            if data is None:
                ok, buf = cv2.imencode(".jpg", self.scaled(width), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if not ok:
                    raise RuntimeError(f"frame {self.result.frame.frame_id}: JPEG encoding failed")
                data = self._jpegs[width] = buf.tobytes()
        return data


def downscaled(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` ``width`` px wide, its aspect kept (0, or not narrower than it is: ``image`` itself)."""
    h, w = image.shape[:2]
    if 0 < width < w:
        return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return image


def count_in_view(result: FrameResult) -> dict[str, int]:
    """People in view per class: distinct tracks (boxes when the result is not tracked), without the faces
    the people stage marked static (pictures)."""
    counts = {name: 0 for name in result.predictions.class_names}
    labels = result.predictions.labels
    if result.track_ids is None:
        for label in labels:
            counts[label] += 1
        return counts
    static = result.analytics.static if result.analytics is not None else np.zeros(len(labels), np.bool_)
    seen: dict[int, str] = {}
    for tid, label, still in zip(result.track_ids, labels, static, strict=True):
        if not still:
            seen[int(tid)] = label
    for label in seen.values():
        counts[label] += 1
    return counts


def people_so_far(result: FrameResult) -> dict | None:
    """The people stage's counts up to this frame (``PeopleStats.to_dict``); None when it did not run."""
    return None if result.analytics is None else result.analytics.people.to_dict()


class EventFeed:
    """The hub's event lines, an engine sink on the engine's own thread (not threaded): every frame's
    lines and every alert reach the page's ``/v1/events``, even when the hub's threaded frame sink drops
    a frame because the encoder fell behind. Its work is a few face records and ``json.dumps``."""

    name = "browser-events"
    threaded = False

    def __init__(self, hub: FrameHub):
        self.hub = hub

    def open(self, info: RunInfo) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        self.hub.add_events(result)

    def close(self, summary: dict) -> None:
        pass


class FrameHub:
    """Newest annotated frame, recent event lines and counts of a live source (thread-safe).

    The engine gets two sinks from it: the hub itself (threaded: annotates and encodes the newest frame)
    and :attr:`events`, an :class:`EventFeed` that adds the event lines on the engine's thread."""

    name = "browser"
    threaded = True
    queue_size = 2

    def __init__(self, jpeg_quality: int = 80, events_kept: int = 500, overlay: bool = True):
        from livemask.sinks.render import Renderer

        self.jpeg_quality = int(jpeg_quality)
        self.renderer = Renderer(overlay)  # the window's and the recording's drawing: boxes, labels, status
        self._lock = threading.Lock()
        self._latest: LiveFrame | None = None
        self._wanted: dict[int, float] = {}  # JPEG width -> until when a viewer wants it (LiveFrame.encoded)
        self._events: deque[tuple[int, str]] = deque(maxlen=int(events_kept))
        self._wall_offset = wall_offset()
        self._tracks: set[int] = set()
        self._event_seq = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []  # viewers waiting for a frame
        self.events = EventFeed(self)
        self.info: dict = {}
        self.summary_at_close: dict | None = None
        self.frames = 0
        self.opened = False
        self.closed = False
        self.playback = None  # the capture of a file kept for replay (set by `serve`), else None
        self.state_of: Callable[[], str] | None = None  # the camera's state (a Site's camera), else from the hub

    # -- sink side (the inference thread) -------------------------------------------------
    def open(self, info: RunInfo) -> None:
        with self._lock:
            self.info = {"source": info.source, "fps": info.fps, "size": list(info.size or ()),
                         "frame_count": info.total, "classes": list(info.class_names)}
            self.opened = True

    def fps(self) -> float:
        return self.renderer.fps()

    def write(self, result: FrameResult) -> None:
        """Take one result: keep it as the newest frame (drawn and encoded here only while a viewer takes it)."""
        self.renderer.tick(result)
        now = time.monotonic()
        counts = count_in_view(result)
        captured = (result.frame.timestamp + self._wall_offset) * 1000.0
        frame = LiveFrame(self.frames + 1, self._draw, result, captured, (now + self._wall_offset) * 1000.0,
                          counts, self.jpeg_quality, self._wanted)
        for width, until in list(self._wanted.items()):  # encoded here, off the event loop, while watched
            if until > now:
                frame.encoded(width, note=False)
        with self._lock:
            self.frames += 1
            self._latest = frame
        self._wake()

    def _draw(self, result: FrameResult) -> np.ndarray:
        return self.renderer.render(result, tick=False)

    def add_events(self, result: FrameResult) -> None:
        """Append the frame's event-log lines (the frame's, then one per alert) and note its tracks."""
        texts = [json.dumps(line, separators=(",", ":")) for line in event_lines(result, self._wall_offset)]
        with self._lock:
            if result.track_ids is not None:
                self._tracks.update(int(t) for t in result.track_ids)
            for text in texts:
                self._event_seq += 1
                self._events.append((self._event_seq, text))

    def close(self, summary: dict) -> None:
        with self._lock:
            self.summary_at_close = dict(summary)
            self.closed = True
        self._wake()

    # -- viewer side (the event loop) ----------------------------------------------------
    def latest(self) -> LiveFrame | None:
        return self._latest

    def watched(self) -> None:
        """A viewer came: a file kept for replay that waits for its first viewer starts playing."""
        if self.playback is not None:
            self.playback.watch()

    def replay(self) -> bool:
        """Play a file kept for replay again from its start; False when there is none or it has not ended."""
        return self.playback is not None and self.playback.replay()

    def at_end(self) -> bool:
        """The source ended: the run is over, or a file kept for replay is at its end."""
        return self.closed or (self.playback is not None and self.playback.playback == "ended")

    def state(self) -> str:
        """``connecting``, ``waiting for a viewer``, ``live``, ``ended`` (a Site's camera: its own state)."""
        if self.state_of is not None:
            return self.state_of()
        if self.at_end():
            return "ended"
        if self.playback is not None and self.playback.playback == "waiting":
            return "waiting for a viewer"
        return "live" if self.opened else "connecting"

    def events_after(self, seq: int) -> list[tuple[int, str]]:
        """The kept lines numbered after ``seq``, oldest first (numbers are consecutive: only the new ones are
        looked at, not the whole list, at every poll of every viewer)."""
        with self._lock:
            new = min(len(self._events), self._event_seq - max(0, int(seq)))
            return [self._events[i] for i in range(len(self._events) - new, len(self._events))]

    def summary(self) -> dict:
        latest = self._latest
        return {"source": self.info.get("source"), "opened": self.opened, "ended": self.at_end(), "state": self.state(),
                "replayable": self.playback is not None,
                "frames": self.frames, "fps": round(self.fps(), 2),
                "in_view": latest.counts if latest is not None else {},
                "people": None if latest is None else people_so_far(latest.result),
                "tracks_seen": len(self._tracks), "info": self.info, "summary": self.summary_at_close}

    def shutdown(self) -> None:
        """The server is stopping: viewers end their streams."""
        with self._lock:
            self.closed = True
        self._wake()

    # -- waking viewers (a frame is written on the sink's thread, viewers wait on the event loop) ----------------
    def _wake(self) -> None:
        """Every viewer waiting in :meth:`wait_newer` goes on (called after a write or the end)."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_done, waiter)
            except RuntimeError:  # that viewer's loop has closed
                pass

    async def wait_newer(self, last: int, timeout_s: float) -> None:
        """Return once the newest frame is not ``last`` (its ``seq``), the hub has closed, or ``timeout_s`` has
        passed, whichever comes first. Viewers wait here instead of polling: a write wakes them."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        with self._lock:
            latest = self._latest
            if self.closed or (latest is not None and latest.seq != last):
                return
            self._waiters.append((loop, waiter))
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))


def _done(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)

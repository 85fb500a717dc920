"""The capture thread: reads a :class:`~livemask.engine.sources.Source` into a bounded channel of frames.

* live sources (camera, URL, a file paced with ``realtime``) use :attr:`BufferPolicy.DROP_OLDEST`:
  when the consumer falls behind the oldest waiting frame is thrown away and counted, so
  what the consumer gets is always recent;
* files and folders use :attr:`BufferPolicy.BLOCK`: the reader waits for room, nothing is lost.

The thread ends with the channel's end marker on every path (end of input, stop request,
error); an error is re-raised in the consumer as :class:`~livemask.core.errors.SourceError`.
:meth:`Capture.stop` returns within a second whatever the thread is doing, and the
source is released in the thread's ``finally``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from livemask.core.errors import SourceError
from livemask.core.images import as_bgr8
from livemask.core.params import Range, check_fields
from livemask.core.types import Frame
from livemask.engine.channel import BufferPolicy, Channel
from livemask.engine.sources import CameraSource, FileSource, FolderSource, Source, UrlSource, parse_source

log = logging.getLogger(__name__)


@dataclass
class SourceOptions:
    """The ``source`` section of config.yaml (see there for the meaning of each key)."""

    source: str | int = "0"
    queue_size: Annotated[int, Range(1, 1000)] = 4
    live_queue_size: Annotated[int, Range(1, 1000)] = 1
    realtime: bool = False
    reconnect_tries: Annotated[int, Range(0, 10_000)] = 5
    reconnect_delay_s: Annotated[float, Range(0, 3600)] = 0.5
    reconnect_max_delay_s: Annotated[float, Range(0, 3600)] = 5.0
    timeout_s: Annotated[float, Range(0, 3600, lo_open=True)] = 5.0
    folder_fps: Annotated[float, Range(0, 1000)] = 10.0

    def __post_init__(self) -> None:
        check_fields(self)
        self.source = str(self.source)

    def make_capture(self, stop_event: threading.Event | None = None, max_frames: int | None = None,
                     source: Source | None = None) -> Capture:
        """The source in a :class:`Capture` with the queue size for its kind (live or not)."""
        source = source or self.make_source(stop_event)
        live = source.live or self.realtime
        return Capture(source, self.live_queue_size if live else self.queue_size, realtime=self.realtime,
                       max_frames=max_frames, stop_event=stop_event)

    def make_source(self, stop_event: threading.Event | None = None) -> Source:
        kind, value = parse_source(self.source)
        if kind == "camera":
            return CameraSource(value)
        if kind == "url":
            return UrlSource(value, self.reconnect_tries, self.reconnect_delay_s, self.reconnect_max_delay_s,
                             self.timeout_s, stop_event)
        if kind == "folder":
            return FolderSource(value, self.folder_fps)
        return FileSource(value)


@dataclass
class CaptureStats:
    """Counters of one capture run, read by the pipeline for the summary."""

    frames: int = 0  # frames read from the source
    dropped: int = 0  # frames thrown away because the consumer was behind
    reconnects: int = 0
    skipped: int = 0  # unreadable inputs skipped (images of a folder source)
    gap_s: float = 0.0
    error: str | None = None


class Capture:
    """Reads a :class:`Source` in a thread into a bounded queue of :class:`Frame`.

    The queue is a :class:`~livemask.engine.channel.Channel`: DROP_OLDEST for live sources,
    BLOCK for files and folders;
    ``realtime`` paces a file or folder at its own fps and makes it behave like a camera
    (DROP_OLDEST); :meth:`hold` pauses such a file where it is (the pacing clock stops too, so
    :meth:`release` goes on from the same frame), while a camera or stream keeps dropping as before.
    ``max_frames`` stops reading after that many frames.

    :meth:`keep_for_replay` (``serve``'s pages) makes a paced file wait for its first viewer
    (:meth:`watch`) and, at its end, for :meth:`replay` instead of ending; :attr:`playback` says where it is.
    """

    def __init__(self, source: Source, queue_size: int = 4, realtime: bool = False, max_frames: int | None = None,
                 stop_event: threading.Event | None = None):
        self.source = source
        self.realtime = bool(realtime) and not source.live
        self.live = source.live or self.realtime
        self.policy = BufferPolicy.DROP_OLDEST if self.live else BufferPolicy.BLOCK
        self.max_frames = max_frames
        self.stop_event = stop_event or threading.Event()
        self.queue: Channel[Frame] = Channel(queue_size, self.policy, self.stop_event, "capture")
        if isinstance(source, UrlSource):
            source.stop_event = self.stop_event
        self.stats = CaptureStats()
        self._thread: threading.Thread | None = None
        self._going = threading.Event()  # cleared by hold(): a paced file waits where it is
        self._going.set()
        self.playback: str | None = None  # a replayable file: "waiting" (for a viewer), "playing", "ended"
        self.plays = 0  # times the file was started (the first viewer, then each replay)
        self._replay = threading.Event()
        self._playback_lock = threading.Lock()
        # told each new playback state ("waiting", "playing", "ended") of a replayable file, e.g. the MQTT
        # sink, whose state messages otherwise stop at the last frame
        self.playback_listeners: list[Callable[[str], None]] = []

    def _tell_playback(self, state: str) -> None:
        for listener in self.playback_listeners:
            try:
                listener(state)
            except Exception:  # a listener's fault never stops the file
                log.debug("playback listener failed", exc_info=True)

    def hold(self) -> bool:
        """Pause a file paced with ``realtime`` at the next frame; False (nothing held) for a live source."""
        if not self.realtime:
            return False
        self._going.clear()
        return True

    def release(self) -> None:
        """Go on after :meth:`hold`, from the frame where it stopped."""
        self._going.set()

    @property
    def replayable(self) -> bool:
        """Kept for replay (:meth:`keep_for_replay`): its ``playback`` says where it is."""
        return self.playback is not None

    def keep_for_replay(self) -> bool:
        """A file paced with ``realtime`` waits for :meth:`watch` before its first frame and, at its end, for
        :meth:`replay` instead of ending (the run goes on); False (nothing changed) for any other source."""
        if not self.realtime or not isinstance(self.source, FileSource) or self._thread is not None:
            return False
        self.playback = "waiting"
        self._going.clear()
        return True

    def watch(self) -> None:
        """A viewer came: a replayable file still waiting for its first viewer starts playing."""
        with self._playback_lock:
            if self.playback != "waiting":
                return
            self.playback = "playing"
            self.plays += 1
            self._going.set()
        self._tell_playback("playing")

    def replay(self) -> bool:
        """Play a replayable file again from its start; False when it is not at its end (a second click while
        it restarts does nothing)."""
        with self._playback_lock:
            if self.playback != "ended":
                return False
            self.playback = "playing"
            self._replay.set()
        self._tell_playback("playing")
        return True

    def _wait_for_replay(self) -> bool:
        """At the end of a replayable file: wait for :meth:`replay` (True, the file reopened at its start) or
        a stop (False)."""
        with self._playback_lock:
            self.playback = "ended"
        self._tell_playback("ended")
        while not self._replay.wait(0.05):
            if self.stop_event.is_set():
                return False
        self._replay.clear()
        self.source.close()
        self.source.open()
        self.plays += 1
        return True

    # -- producer side ------------------------------------------------------------------
    def open(self) -> Capture:
        """Open the source in the calling thread, so that "cannot open" errors surface at once."""
        self.source.open()
        return self

    def start(self) -> Capture:
        if not self.source._opened:
            self.open()
        self._thread = threading.Thread(target=self._run, name=f"capture[{self.source.name}]", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        error: SourceError | None = None
        try:
            fps = self.source.fps or 30.0
            started = time.monotonic()
            frame_id = 0
            while not self.stop_event.is_set():
                if self.max_frames is not None and frame_id >= self.max_frames:
                    break
                if self.realtime:
                    if not self._going.is_set():  # held: wait, then shift the pacing clock by the pause
                        held_at = time.monotonic()
                        while not self._going.wait(0.05) and not self.stop_event.is_set():
                            pass
                        started += time.monotonic() - held_at
                    due = started + frame_id / fps
                    if self.stop_event.wait(max(due - time.monotonic(), 0.0)):
                        break
                image = self.source.read()
                if image is None:
                    if not self.replayable or not self._wait_for_replay():
                        break
                    started = time.monotonic() - frame_id / fps  # paced from the new start; frame ids go on
                    continue
                frame = Frame(frame_id, time.monotonic(), as_bgr8(image, self.source.name), self.source.name,
                              self.source.position_ms())
                frame_id += 1
                self.stats.frames = frame_id
                self.queue.put(frame)
                self.stats.dropped = self.queue.dropped
        except BaseException as err:  # every error must reach the consumer
            error = err if isinstance(err, SourceError) else SourceError(f"{self.source.name}: {err}")
            self.stats.error = str(error)
        finally:
            self.stats.reconnects = self.source.reconnects
            self.stats.skipped = self.source.skipped
            self.stats.gap_s = self.source.gap_s
            try:
                self.source.close()
            except Exception as err:
                log.warning("%s: error while closing: %s", self.source.name, err)
            self.stats.dropped = self.queue.dropped
            self.queue.close(error)

    # -- consumer side ------------------------------------------------------------------
    def get(self, timeout: float = 0.1) -> Frame | None:
        """Next frame; ``None`` at the end; raises queue.Empty on timeout and SourceError on failure."""
        return self.queue.get(timeout=timeout)

    def __iter__(self):
        return iter(self.queue)

    def stop(self, timeout: float = 0.9) -> None:
        """Ask the thread to end, drain the queue, join; returns within ``timeout`` (+ a little)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline:
            self.queue.drain()
            self._thread.join(timeout=0.02)
        self.queue.drain()
        if self._thread is not None and self._thread.is_alive():
            log.warning("%s: capture thread still busy in a read; it will release the source when that returns",
                        self.source.name)
        elif self._thread is None:
            self.source.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

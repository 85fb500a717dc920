"""The sink protocol: where the engine's results go (window, video, event log, progress, summary, ...).

A sink is any object with::

    name: str                      # names it in the summary and in errors
    threaded: bool                 # False: write() runs on the engine's loop; True: see below
    open(info: RunInfo) -> None    # before the first result (raise to refuse the run)
    write(result: FrameResult)     # once per result, in frame order
    close(summary: dict) -> None   # once, after the last write, with the run's summary
    stats() -> dict                # optional: keys merged into the summary

A ``threaded`` sink gets its own thread behind a bounded :class:`Channel` (``queue_size``,
default 8): a live run never waits for it, and what it could not take is dropped and
counted (``summary["sinks"][name]["dropped"]``); a file run waits for it (nothing is lost).
A sink whose ``write`` (or ``open``) raises is not called again; the run ends with a
one-line error naming it, after every other sink is finished and closed.

The window is the one sink that must run on the main thread (OpenCV/Qt): it is handed to
the engine as its ``display``, which adds ``paused`` and ``poll(wait_ms) -> bool``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from livemask.core.errors import LivemaskError, OutputError, exception_line
from livemask.core.types import FrameResult
from livemask.engine.channel import BufferPolicy, Channel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """What a sink knows before the first result."""

    source: str
    fps: float  # the source's frame rate (30 when it does not say)
    size: tuple[int, int] | None  # (width, height) when the source says
    total: int | None  # results to expect (files and folders, or --max-frames), None when unknown
    live: bool
    class_names: tuple[str, ...]
    camera: str | None = None  # the camera's name in a run with several cameras (the ``cameras`` section)


@runtime_checkable
class Sink(Protocol):
    name: str
    threaded: bool

    def open(self, info: RunInfo) -> None: ...

    def write(self, result: FrameResult) -> None: ...

    def close(self, summary: dict) -> None: ...


class Display(Sink, Protocol):
    """The main-thread sink (the window)."""

    @property
    def paused(self) -> bool: ...

    def poll(self, wait_ms: int) -> bool:
        """Handle keys and window events for up to ``wait_ms``; False when the user ends the run."""
        ...


def describe(err: BaseException) -> str:
    """One line for an unexpected exception in a sink (its cause is the message's last line)."""
    return exception_line(err, last=True)


class SinkRunner:
    """Runs one sink for the engine: inline, or in its own thread behind a bounded channel."""

    def __init__(self, sink: Sink, live: bool):
        self.sink = sink
        self.name = str(getattr(sink, "name", type(sink).__name__))
        self.threaded = bool(getattr(sink, "threaded", False))
        self.written = 0
        self.error: BaseException | None = None
        self._failed = threading.Event()  # stops a blocked put once the sink thread has died
        self._thread: threading.Thread | None = None
        self.channel: Channel[FrameResult] | None = None
        if self.threaded:
            policy = BufferPolicy.DROP_OLDEST if live else BufferPolicy.BLOCK
            self.channel = Channel(getattr(sink, "queue_size", 8), policy, self._failed, f"sink {self.name}")

    @property
    def dropped(self) -> int:
        return self.channel.dropped if self.channel is not None else 0

    @property
    def failed(self) -> bool:
        return self._failed.is_set()

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
            log.debug("sink %s failed", self.name, exc_info=err)
        self._failed.set()

    def open(self, info: RunInfo) -> None:
        try:
            self.sink.open(info)
        except BaseException as err:
            self._fail(err)
            raise self.failure() from None
        if self.threaded:
            self._thread = threading.Thread(target=self._work, name=f"sink-{self.name}", daemon=True)
            self._thread.start()

    def write(self, result: FrameResult) -> None:
        if self.failed:
            return
        if self.channel is not None:
            self.channel.put(result)
            return
        try:
            self.sink.write(result)
            self.written += 1
        except BaseException as err:
            self._fail(err)

    def _work(self) -> None:
        try:
            for result in self.channel:
                self.sink.write(result)
                self.written += 1
        except BaseException as err:
            self._fail(err)
            self.channel.drain()

    def finish(self, timeout: float = 30.0) -> None:
        """Let a threaded sink write what is waiting, then end its thread."""
        if self._thread is None:
            return
        self.channel.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._fail(LivemaskError(f"did not finish writing within {timeout:.0f} s"))

    def close(self, summary: dict) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # still inside write(): closing under it would corrupt the output
        try:
            self.sink.close(summary)
        except BaseException as err:
            self._fail(err)

    def stats(self) -> dict[str, Any]:
        stats = getattr(self.sink, "stats", None)
        return stats() if callable(stats) else {}

    def failure(self) -> OutputError | None:
        """The sink's error as the run's one-line error, or None."""
        if self.error is None:
            return None
        err = self.error
        out = OutputError(f"output {self.name!r} failed: {err if isinstance(err, LivemaskError) else describe(err)}")
        if isinstance(err, LivemaskError):
            out.exit_code = err.exit_code
        return out

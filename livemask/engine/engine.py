"""The engine: source -> detect -> classify -> track, each result handed to a list of sinks.

:class:`Engine` runs a :class:`~livemask.engine.pipeline.Pipeline` (capture, detect and
classify threads) and, on the calling (main) thread, hands every :class:`FrameResult`
to its sinks (:mod:`livemask.engine.sink`) in frame order. It knows nothing of the config,
of drawing or of files: the composition root (:mod:`livemask.apps.compose`) builds the
parts and the sinks.

* Without a display the loop waits for results (``get`` with a timeout).
* With a display (the window, main thread only) the loop never blocks: it polls the
  display for keys between results; in a live run the display shows only the newest
  result (the older ones still go to every other sink, counted as ``superseded``).
* Every result passes the people stage (:mod:`livemask.engine.people`: counts, static faces,
  alerts) on this thread before any sink sees it, when the engine is given one.
* A sink that fails, a stage that fails, a stop request (signal) or the user quitting
  end the loop; then the pipeline is stopped, threaded sinks finish what is waiting,
  the summary is built and every sink is closed with it. A failure is raised afterwards
  as one :class:`LivemaskError`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from livemask.core.errors import LivemaskError
from livemask.core.redact import one_line, redact_text
from livemask.core.types import FrameResult
from livemask.engine.capture import Capture
from livemask.engine.people import People
from livemask.engine.pipeline import FrameProcessor, Percentiles, Pipeline
from livemask.engine.sink import Display, RunInfo, Sink, SinkRunner, describe

log = logging.getLogger(__name__)


class Engine:
    """One run of the pipeline into sinks; :meth:`run` returns the summary or raises the run's error."""

    def __init__(self, capture: Capture, processor: FrameProcessor, sinks: Sequence[Sink] = (),
                 display: Display | None = None, stage_queue: int = 2,
                 stop_reason: Callable[[], str | None] | None = None, overlap: bool = True,
                 people: People | None = None, camera: str | None = None):
        self.capture = capture
        self.processor = processor
        self.pipeline = Pipeline(capture, processor, stage_queue, overlap)
        self.stop_event: threading.Event = capture.stop_event
        self.live = capture.live
        self.runners = [SinkRunner(s, self.live) for s in sinks]
        self.display = display
        self.stop_reason = stop_reason or (lambda: None)
        self.people = people  # the people stage (counts, static faces, alerts), after the tracker
        self.camera = camera  # the camera's name in a run with several cameras; every sink gets it in RunInfo
        self.last_summary: dict | None = None  # the summary of the finished run, also when run() raised
        self.written = 0
        self.faces: dict[str, int] = {}
        self.superseded = 0
        self.output_latency = Percentiles()  # capture -> handed to the sinks, ms
        self._user_quit = False
        self._started = time.monotonic()
        self._opened: list = []  # the display and sink runners that opened
        self._closed = False  # the sink runners were closed
        self._ended_by: str | None = None  # set by display_lost()
        self._finishing = threading.RLock()  # display_lost() may come from another thread, or re-entrantly

    def info(self) -> RunInfo:
        source = self.capture.source
        total = source.frame_count
        if self.capture.max_frames is not None:
            total = self.capture.max_frames if total is None else min(total, self.capture.max_frames)
        return RunInfo(source.name, source.fps or 30.0, source.size, None if self.live else total, self.live,
                       tuple(self.processor.classifier.class_names), self.camera)

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict:
        error: LivemaskError | None = None
        self._started = time.monotonic()
        try:
            info = self.info()
            for part in ([self.display] if self.display is not None else []) + self.runners:
                part.open(info)
                self._opened.append(part)
            self.pipeline.start()
            self._loop_display() if self.display is not None else self._loop()
        except LivemaskError as err:
            error = err
        except Exception as err:  # an unexpected failure still ends as one line, with finished outputs
            log.debug("unexpected error", exc_info=True)
            error = LivemaskError(describe(err))
        finally:
            summary = self._finish(error)
        error = error or self._sink_failure()  # a sink that failed while closing (event log summary, ...)
        if error is not None:
            raise error
        return summary

    def display_lost(self, reason: str = "display lost") -> dict | None:
        """The display can no longer be used (its X connection is gone): stop, and finish and close every
        other output as a stop request would, without touching the display. It may be called from inside
        a display call of the loop (on the way out of the process); None when the outputs were already
        closed. The summary's ``ended`` is ``reason``."""
        with self._finishing:
            if self._closed:
                return None
            self._ended_by = reason
            self.stop_event.set()
            return self._finish(None, with_display=False)

    def _finish(self, error: LivemaskError | None, with_display: bool = True) -> dict:
        """Stop the pipeline, let threaded sinks write what waits, build the summary, close the display and
        the sinks with it (each sink once, even when this is entered again from inside the display's close)."""
        with self._finishing:
            elapsed = time.monotonic() - self._started
            self.pipeline.stop()
            for runner in self.runners:
                runner.finish()
            error = error or self._sink_failure()
            summary = self.summary(elapsed, error)
            self.last_summary = summary
            if with_display and self.display is not None and self.display in self._opened:
                self._close_display(summary)
            if not self._closed:
                self._closed = True
                for runner in self.runners:
                    if runner in self._opened:
                        runner.close(summary)
            return summary

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                result = self.pipeline.get(timeout=0.1)
            except queue.Empty:
                continue
            if result is None:
                return
            self._dispatch(result)

    def _loop_display(self) -> None:
        display = self.display
        held = False
        while not self.stop_event.is_set():
            newest = None
            if display.paused != held:  # a paced file holds where it is while paused; a camera keeps dropping
                held = display.paused
                self.capture.hold() if held else self.capture.release()
            if not display.paused:
                for result in self._take():
                    if newest is not None:
                        self.superseded += 1
                    newest = self._dispatch(result)
                if newest is None and self.pipeline.ended:
                    return
            if newest is not None:
                display.write(newest)
            wait = 1 if newest is not None else (30 if display.paused else 5)
            if not display.poll(wait):
                self._user_quit = True
                return

    def _take(self) -> list[FrameResult]:
        """Results waiting now: all of them in a live run (the display shows the newest), else one."""
        out: list[FrameResult] = []
        while True:
            try:
                result = self.pipeline.get_nowait()
            except queue.Empty:
                return out
            if result is None:
                return out
            out.append(result)
            if not self.live:
                return out

    def _dispatch(self, result: FrameResult) -> FrameResult:
        """The people stage (every result, so no alert is lost), then every sink; returns what they got."""
        if self.people is not None:
            result = self.people.update(result)
        for runner in self.runners:
            runner.write(result)
        self.written += 1
        for label in result.predictions.labels:
            self.faces[label] = self.faces.get(label, 0) + 1
        self.output_latency.add((time.monotonic() - result.frame.timestamp) * 1000.0)
        failure = self._sink_failure()
        if failure is not None:
            raise failure
        return result

    def _sink_failure(self) -> LivemaskError | None:
        for runner in self.runners:
            if runner.error is not None:
                return runner.failure()
        return None

    def _close_display(self, summary: dict) -> None:
        try:
            self.display.close(summary)
        except Exception as err:  # closing the window must not hide the run's result
            log.warning("window did not close cleanly: %s", describe(err))

    # -- summary ------------------------------------------------------------------------------
    def summary(self, elapsed: float, error: BaseException | None) -> dict:
        reason = self.stop_reason()
        if error is not None:
            ended = "error"
        elif self._ended_by is not None:
            ended = self._ended_by
        elif reason is not None:
            ended = reason
        elif self.pipeline.ended and not self._user_quit:
            ended = "end of source"
        else:
            ended = getattr(self.display, "ended_by", None) or "user"
        tracker = self.processor.tracker
        display = {"stale_not_shown": 0, "superseded": self.superseded,
                   "capture_to_display_ms": self.output_latency.summary()}
        extra: dict = {}
        if self.display is not None:
            display.update(getattr(self.display, "stats", dict)())
        for runner in self.runners:
            extra.update(runner.stats())
        return {
            "source": self.capture.source.name,
            "ended": ended,
            "error": _redacted(error),
            **self.pipeline.stats(),
            "skipped": self.capture.stats.skipped,
            "frames_written": self.written,
            "faces": dict(self.faces),
            "tracks": tracker.total_tracks if tracker.enabled else None,
            "people": self.people.summary() if self.people is not None else None,
            "fps": round(self.written / elapsed, 2) if elapsed > 0 else None,
            "detector": self.processor.detector.describe(),  # which detector, runtime and precision made these
            "duration_s": round(elapsed, 2),
            **display,
            "sinks": {r.name: {"written": r.written, "dropped": r.dropped,
                               "error": _redacted(r.failure())} for r in self.runners},
            **extra,
        }


def _redacted(error: BaseException | None) -> str | None:
    """An error as the summary holds it: no URL credentials or other secrets, one line (it goes into the event log)."""
    return None if error is None else one_line(redact_text(str(error)), 1000)

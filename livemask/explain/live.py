"""Freeze-and-explain for the live window (keys g, o, e in ``livemask run``).

The display loop calls :meth:`ExplainSession.request` on a key press: the frame and its
detections are frozen (copied) and handed to one worker thread, which cuts the crops and
computes the maps for every face, so the live window keeps running. The display loop
calls :meth:`ExplainSession.update` once per iteration: it shows the finished panel in
the window ``livemask - explain`` and re-raises a worker failure as a LivemaskError.

At most one request runs and one waits; a further key press while both slots are taken
is refused with a message (the returned status), never dropped silently.

Warm-up: creating the session (when the live window opens) starts a background thread
that builds the explainers and traces their compiled calls (about 1 s of CPU on a busy
2-core machine), so the first key press does not pay for it. That thread runs at a lower
CPU priority (nice +5 for the thread, on Linux) so the live view keeps its share of the
cores; :attr:`ExplainSession.ready` is set when it is done. A request made earlier waits
for it in the queue.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.types import Detections, FrameResult
from livemask.explain.suite import ExplainSuite, methods_for
from livemask.sinks.winwatch import ClosedWatch

log = logging.getLogger(__name__)

WINDOW = "livemask - explain"
MAX_OUTSTANDING = 2  # one computing + one waiting
WARMUP_NICE = 5  # niceness added to the warm-up thread
_STOP = object()


@dataclass(frozen=True)
class _Job:
    number: int
    method: str
    frame_id: int
    image: np.ndarray  # frozen copy of the frame, BGR uint8
    detections: Detections


@dataclass(frozen=True)
class _Done:
    job: _Job
    panel: np.ndarray
    seconds: float


class ExplainSession:
    """Explanations for frozen frames of a live view; all cv2 window calls stay on the display thread."""

    def __init__(self, classifier, make_suite: Callable[[], ExplainSuite]):
        """``make_suite`` builds the explainers (the composition root hands it over); it runs on the
        warm-up thread, never on the caller's."""
        self.classifier = classifier
        self.suite: ExplainSuite | None = None
        self.ready = threading.Event()  # set when the explainers are built and traced (or failed)
        self._make_suite = make_suite
        self._jobs: queue.Queue = queue.Queue(maxsize=MAX_OUTSTANDING + 1)  # + room for the stop sentinel
        self._done: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._counter = 0
        self._stop = threading.Event()
        self._warm: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._shown: _Done | None = None
        self._open = False
        self._watch = ClosedWatch(WINDOW)
        self._status: str | None = None
        self.warmup_seconds: float | None = None
        self._warm = threading.Thread(target=self._warm_up, name="livemask-explain-warmup", daemon=True)
        self._warm.start()
        self._ensure_worker()

    # -- display-thread API -----------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def status(self) -> str | None:
        return self._status

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._outstanding > 0

    def request(self, result: FrameResult, method: str) -> str:
        """Freeze ``result`` and explain all its faces with ``method`` (gradcam, occlusion, all)."""
        methods_for(method)  # unknown method: ConfigError
        if self._stop.is_set():
            return self._say("explain: session is shut down")
        n = len(result.detections)
        if n == 0:
            return self._say(f"explain {method}: no faces in frame {result.frame.frame_id}, nothing to explain")
        with self._lock:
            if self._outstanding >= MAX_OUTSTANDING:
                return self._say(f"explain {method}: refused, busy (one computing, one waiting); try again")
            self._outstanding += 1
            waiting = self._outstanding > 1
            self._counter += 1
            job = _Job(self._counter, method, result.frame.frame_id, result.frame.image.copy(), result.detections)
        self._ensure_worker()
        self._jobs.put(job)
        if waiting:
            return self._say(f"explain {method}: queued after the current one ({n} face(s), frame {job.frame_id})")
        return self._say(f"explain {method}: computing {n} face(s) of frame {job.frame_id}...")

    def update(self) -> None:
        """Show a finished panel; forward worker errors. Call once per display-loop iteration."""
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, BaseException):
                self._say("explain failed")
                if isinstance(item, LivemaskError):
                    raise item
                raise LivemaskError(f"explain failed: {type(item).__name__}: {item}") from item
            self._shown = item
            cv2.imshow(WINDOW, item.panel)
            if not self._open:
                self._watch.reset()
            self._open = True
            self._say(f"explain {item.job.method}: {len(item.job.detections)} face(s) in {item.seconds:.2f} s "
                      "(s saves, Esc closes)")
        if self._open and self._window_closed_by_user():
            self._open = False
            self._say("explain window closed")

    def save(self, out_dir: Path) -> Path | None:
        """Write the shown panel as PNG into ``out_dir``; None when no panel is open."""
        if not self._open or self._shown is None:
            return None
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        job = self._shown.job
        path = out_dir / f"explain_frame{job.frame_id:06d}_{job.method}_{time.strftime('%Y%m%d-%H%M%S')}.png"
        if not cv2.imwrite(str(path), self._shown.panel):
            raise LivemaskError(f"cannot write {path}")
        self._say(f"explain panel saved to {path}")
        log.info("explain panel saved to %s", path)
        return path

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(WINDOW)
            except cv2.error:
                pass
        self._open = False

    def shutdown(self) -> None:
        """Stop the worker (a job in progress finishes first), join it and close the window."""
        self._stop.set()
        if self._thread is not None:
            while True:  # drop waiting jobs so the sentinel fits
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
                with self._lock:
                    self._outstanding -= 1
            self._jobs.put(_STOP)
            self._thread.join(timeout=60)
            # a warm-up still tracing is not waited for (quitting stays quick); it is a daemon thread
            if self._thread.is_alive():
                log.warning("explain worker did not stop within 60 s")
            self._thread = None
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _say(self, text: str) -> str:
        self._status = text
        return text

    def _window_closed_by_user(self) -> bool:
        return self._watch.closed()

    def _ensure_worker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="livemask-explain", daemon=True)
            self._thread.start()

    def _warm_up(self) -> None:
        """Build the explainers and trace their compiled calls, at a lower CPU priority."""
        t0 = time.perf_counter()
        try:
            if hasattr(os, "setpriority"):
                try:  # Linux: a thread's niceness is its own (the live view's threads keep theirs)
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                                   os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + WARMUP_NICE)
                except OSError:
                    pass
            suite = self._make_suite()
            suite.warmup()
            self.suite = suite
            self.warmup_seconds = time.perf_counter() - t0
            log.debug("explainers built and traced in %.2f s", self.warmup_seconds)
        except Exception as err:  # forwarded to the display thread by update()
            self._done.put(err)
        finally:
            self.ready.set()

    def _work(self) -> None:
        while not self.ready.wait(timeout=0.1):  # jobs wait for the warm-up
            if self._stop.is_set():
                return
        while True:
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if job is _STOP:
                return
            try:
                if self.suite is None:
                    raise LivemaskError("explainers are unavailable (their set-up failed)")
                if not self._stop.is_set():
                    self._done.put(self._compute(job))
            except BaseException as err:  # forwarded to the display thread by update()
                self._done.put(err)
            finally:
                with self._lock:
                    self._outstanding -= 1

    def _compute(self, job: _Job) -> _Done:
        t0 = time.perf_counter()
        crops = self.classifier.crops(job.image, job.detections)
        results = self.suite.explain(crops, job.method)
        title = f"frame {job.frame_id} - {job.method} - s: save PNG, Esc: close"
        panel = self.suite.render(crops, results, title)
        return _Done(job, panel, time.perf_counter() - t0)

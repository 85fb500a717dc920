"""Freeze-and-explain for the live window (keys g, o, e in ``livemask run``).

The display loop calls :meth:`ExplainSession.request` on a key press: the frame and its
detections are frozen (copied) and handed to one worker thread, which cuts the crops and
computes the maps for every face, so the live window keeps running. The display loop
calls :meth:`ExplainSession.update` once per iteration: it takes a finished panel and
re-raises a worker failure as a LivemaskError.

The session opens no window of its own: the page on screen is :attr:`ExplainSession.panel`,
rendered to fit the space the caller gives with :meth:`ExplainSession.show_inside`, and the
caller's window draws it in place of its live view (one camera) or of its tiles (several
cameras). A second Qt window, created anew at each open, could stay unpainted on a busy X server
(docs/known-issues.md); one window per process cannot.

**States** (:attr:`ExplainSession.state`, display thread): ``idle`` (nothing requested
since the last close), ``computing`` (one request accepted, its panel not shown yet),
``queued`` (one computing and one waiting), ``shown`` (a panel on screen, nothing pending).
A new request while a panel is shown makes the state ``computing`` again (the old panel stays
until the new one replaces it). At most one request runs and one waits; a further key press
while both slots are taken is refused with a message, never dropped silently.

:meth:`ExplainSession.close` (Esc) returns to ``idle`` at once: the panel is dropped, the
waiting request is cancelled and the result of the one computing is discarded when it arrives,
so a closed panel stays closed. Faces beyond what fits the space are paged with ``]`` / ``[``.

Warm-up: creating the session (when the live window opens) starts a background thread
that builds the explainers and traces their compiled calls (about 1 s of CPU on a busy
2-core machine), so the first key press does not pay for it. That thread runs at a lower
CPU priority (nice +5 for the thread, on Linux) so the live view keeps its share of the
cores; :attr:`ExplainSession.ready` is set when it is done. A request made earlier waits
for it in the queue.
"""

from __future__ import annotations

import dataclasses
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
from livemask.core.types import FrameResult
from livemask.explain.suite import ExplainSuite, methods_for
from livemask.sinks.window_policy import snapshot_base

log = logging.getLogger(__name__)

MAX_OUTSTANDING = 2  # one computing + one waiting
WARMUP_NICE = 5  # niceness added to the warm-up thread
IDLE, COMPUTING, QUEUED, SHOWN = "idle", "computing", "queued", "shown"
_STOP = object()


@dataclass(frozen=True)
class Reply:
    """What a request did: ``accepted`` (it will be computed) and a line for the user."""

    accepted: bool
    text: str


@dataclass(frozen=True)
class _Job:
    number: int
    generation: int  # close() starts a new generation: results of older ones are dropped
    method: str
    result: FrameResult  # frozen: its frame image is a copy
    label: str | None = None  # the camera's name in a run with several cameras (in the panel's title)


@dataclass(frozen=True)
class _Done:
    job: _Job
    crops: np.ndarray | None
    results: list | None
    seconds: float
    error: BaseException | None = None


class ExplainSession:
    """Explanations for frozen frames of a live view; the panel is drawn by the caller's window."""

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
        self._in_flight: dict[int, _Job] = {}  # accepted and not yet taken back by update() (any generation)
        self._counter = 0
        self._generation = 0
        self._stop = threading.Event()
        self._warm: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._shown: _Done | None = None
        self._page = 0
        self._per_page = 0
        self._space = (0, 0)  # the most the panel may cover (0: no limit), set by show_inside()
        self._open = False
        self._panel: np.ndarray | None = None  # the page on screen
        self.warmup_seconds: float | None = None
        self.cancelled = 0  # requests cancelled or results discarded by close()
        self._warm = threading.Thread(target=self._warm_up, name="livemask-explain-warmup", daemon=True)
        self._warm.start()
        self._ensure_worker()

    # -- display-thread API -----------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            pending = sum(job.generation == self._generation for job in self._in_flight.values())
        if pending >= 2:
            return QUEUED
        if pending == 1:
            return COMPUTING
        return SHOWN if self._open else IDLE

    @property
    def is_open(self) -> bool:
        """True while a panel is on screen."""
        return self._open

    @property
    def status(self) -> str | None:
        """The line that describes the current state (None when idle); it changes with the state."""
        state = self.state
        with self._lock:
            pending = sorted((j for j in self._in_flight.values() if j.generation == self._generation),
                             key=lambda j: j.number)
        if pending:
            job = pending[0]
            faces, frame_id = len(job.result.detections), job.result.frame.frame_id
            text = f"explain {job.method}: computing {faces} face(s) of frame {frame_id}..."
            if state == QUEUED:
                text += f" ({pending[1].method} waiting)"
            return text + " (Esc cancels)"
        if state == SHOWN and self._shown is not None:
            job = self._shown.job
            pages = self.pages
            paging = f", page {self._page + 1}/{pages} (] next, [ back)" if pages > 1 else ""
            return (f"explain {job.method}: frame {job.result.frame.frame_id}, {len(job.result.detections)} face(s) "
                    f"in {self._shown.seconds:.2f} s{paging} (s saves, Esc closes)")
        return None

    @property
    def busy(self) -> bool:
        """True while a request of the current generation is waiting or computing."""
        return self.state in (COMPUTING, QUEUED)

    @property
    def shown_result(self) -> FrameResult | None:
        """The frozen frame the panel on screen explains (None when no panel is shown)."""
        return self._shown.job.result if self._open and self._shown is not None else None

    @property
    def panel(self) -> np.ndarray | None:
        """The page of the panel on screen, for the caller's window to draw (see :meth:`show_inside`);
        None when no panel is shown."""
        return self._panel if self._open else None

    def show_inside(self, size: tuple[int, int]) -> None:
        """The space the caller's window gives the panel, ``size`` (width, height): panels (and pages)
        rendered from now on fit it. The window of one camera gives its live view's place, the window of
        several cameras its tiles' area."""
        self._space = (max(int(size[0]), 1), max(int(size[1]), 1))

    @property
    def pages(self) -> int:
        if self._shown is None or not self._per_page:
            return 1
        return max(1, -(-len(self._shown.job.result.detections) // self._per_page))

    def request(self, result: FrameResult, method: str, label: str | None = None) -> Reply:
        """Freeze ``result`` and explain all its faces with ``method`` (gradcam, occlusion, all); ``label``
        (a camera's name) starts the panel's title."""
        methods_for(method)  # unknown method: ConfigError
        if self._stop.is_set():
            return Reply(False, "explain: session is shut down")
        n = len(result.detections)
        if n == 0:
            return Reply(False, f"explain {method}: no faces in frame {result.frame.frame_id}, nothing to explain")
        with self._lock:
            if len(self._in_flight) >= MAX_OUTSTANDING:
                return Reply(False, f"explain {method}: refused, busy (one computing, one waiting); try again")
            self._counter += 1
            frame = dataclasses.replace(result.frame, image=result.frame.image.copy())
            job = _Job(self._counter, self._generation, method, dataclasses.replace(result, frame=frame), label)
            self._in_flight[job.number] = job
            waiting = len(self._in_flight) > 1
        self._ensure_worker()
        self._jobs.put(job)
        if waiting:
            return Reply(True, f"explain {method}: queued ({n} face(s), frame {result.frame.frame_id})")
        return Reply(True, f"explain {method}: computing {n} face(s) of frame {result.frame.frame_id}...")

    def update(self) -> None:
        """Take a finished panel (it becomes :attr:`panel`); forward worker errors. Call once per
        display-loop iteration."""
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Done):  # the warm-up failed
                raise item if isinstance(item, LivemaskError) else LivemaskError(f"explain failed: {item}")
            with self._lock:
                self._in_flight.pop(item.job.number, None)
                stale = item.job.generation != self._generation
            if stale:  # closed (Esc) after it was requested
                continue
            if item.error is not None:
                err = item.error
                if isinstance(err, LivemaskError):
                    raise err
                raise LivemaskError(f"explain failed: {type(err).__name__}: {err}") from err
            self._shown, self._page = item, 0
            self._panel = self._render(item)
            self._open = True

    def page(self, step: int) -> bool:
        """Show the next (+1) or previous (-1) page of faces; False when there is no other page."""
        if not self._open or self._shown is None:
            return False
        page = min(max(self._page + step, 0), self.pages - 1)
        if page == self._page:
            return False
        self._page = page
        self._panel = self._render(self._shown)
        return True

    def save(self, out_dir: Path, base: str | None = None) -> Path | None:
        """Write the shown panel (the page on screen) as PNG into ``out_dir``, named ``<base>-explain.png``
        (default base: ``livemask-<time>-f<explained frame id>``); None when no panel is shown."""
        if not self._open or self._shown is None:
            return None
        from livemask.core.output_paths import write_image

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        base = base or snapshot_base(self._shown.job.result.frame.frame_id)
        path = out_dir / f"{base}-explain.png"
        write_image(path, self._render(self._shown))
        log.info("explain panel saved to %s", path)
        return path

    def close(self) -> bool:
        """Close the panel, cancel the waiting request and drop the result of the one computing (it is
        discarded when it arrives). Returns True when anything was open or pending."""
        was = self.state != IDLE
        with self._lock:
            self.cancelled += sum(job.generation == self._generation for job in self._in_flight.values())
            self._generation += 1
            while True:  # waiting jobs never reach the worker
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP:
                    self._in_flight.pop(job.number, None)
        self._open = False
        self._shown = None
        self._panel = None
        return was

    def shutdown(self) -> None:
        """Stop the worker (a job in progress finishes first), join it and drop the panel."""
        self._stop.set()
        self.close()
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join(timeout=60)
            # a warm-up still tracing is not waited for (quitting stays quick); it is a daemon thread
            if self._thread.is_alive():
                log.warning("explain worker did not stop within 60 s")
            self._thread = None

    # -- internals --------------------------------------------------------------------------
    def _render(self, item: _Done) -> np.ndarray:
        """The page on screen of ``item``'s panel, fitted to the space :meth:`show_inside` gave."""
        job = item.job
        n = len(job.result.detections)
        title = f"frame {job.result.frame.frame_id} - {job.method}"
        if job.label:
            title = f"{job.label} - {title}"
        max_w, max_h = self._space
        rows = cols = None
        if max_w and max_h:
            rows, cols = self.suite.renderer.fit(len(item.results), max_w, max_h)
        self._per_page = min(n, rows * cols) if rows else n
        start = self._page * self._per_page
        if self._per_page < n:
            title += f" - faces {start + 1}-{min(start + self._per_page, n)}/{n}"
        result = job.result
        numbers = None if result.track_ids is None else [f"#{int(t)}" for t in result.track_ids]  # as the live view
        panel = self.suite.render(item.crops, item.results, title, start=start, count=self._per_page, rows=rows,
                                  landmarks=self.suite.crop_landmarks(result.detections), numbers=numbers)
        if max_w and max_h and (panel.shape[1] > max_w or panel.shape[0] > max_h):  # not even one row fits
            scale = min(max_w / panel.shape[1], max_h / panel.shape[0])
            panel = cv2.resize(panel, (max(1, int(panel.shape[1] * scale)), max(1, int(panel.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
        return panel

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
            if self._stop.is_set() or job.generation != self._generation:  # cancelled while it waited
                self._done.put(_Done(job, None, None, 0.0))
                continue
            try:
                if self.suite is None:
                    raise LivemaskError("explainers are unavailable (their set-up failed)")
                self._done.put(self._compute(job))
            except BaseException as err:  # forwarded to the display thread by update()
                self._done.put(_Done(job, None, None, 0.0, err))

    def _compute(self, job: _Job) -> _Done:
        t0 = time.perf_counter()
        crops = self.classifier.crops(job.result.frame.image, job.result.detections)
        results = self.suite.explain(crops, job.method)
        return _Done(job, crops, results, time.perf_counter() - t0)


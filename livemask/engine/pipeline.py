"""The inference loop: frame -> detections -> crops -> one batched classifier call -> tracked result.

:class:`FrameProcessor` is the per-frame work, with no threads. :class:`Pipeline` runs it
as overlapping stages, each in its own thread with a bounded
:class:`~livemask.engine.channel.Channel` to the next::

    capture thread -> [frames] -> detect thread -> [detections] -> classify thread -> [results] -> consumer

so that decoding frame n+2, detecting faces in frame n+1 and classifying frame n happen
at the same time; throughput is set by the slowest stage, not their sum. OpenCV's DNN
and TensorFlow release the GIL while they compute. Every stage ends by closing its
channel (the end marker), on the normal and on the error path; an error in any stage reaches the
consumer's :meth:`Pipeline.get` as a LivemaskError.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.params import Range, check_fields
from livemask.core.types import Detections, Frame, FrameResult
from livemask.engine.capture import Capture
from livemask.engine.channel import BufferPolicy, Channel
from livemask.engine.tracker import Tracker

log = logging.getLogger(__name__)


@dataclass
class PipelineOptions:
    """The ``pipeline`` section of config.yaml (see there for the meaning of each key)."""

    detector_long_side: Annotated[int, Range(32, 4096, multiple_of=32, or_zero=True)] = 320
    detect_every: Annotated[int, Range(1, 1000)] = 1
    stage_queue: Annotated[int, Range(1, 1000)] = 2
    max_display_age_ms: Annotated[float, Range(0, 60_000, lo_open=True)] = 100.0

    def __post_init__(self) -> None:
        check_fields(self)


class FrameProcessor:
    """Per-frame work: detect (or carry boxes on skipped frames), crop, classify in one call, track.

    With ``detect_every`` k > 1 the detector runs on every k-th frame and the frames in
    between reuse the last boxes (classified again on their own pixels); results say so
    in :attr:`detected`.
    """

    def __init__(self, detector, classifier, tracker: Tracker | None = None, detect_every: int = 1):
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker or Tracker(enabled=False)
        self.detect_every = int(detect_every)
        self._last = Detections.empty()
        self._count = 0

    def detect(self, frame: Frame) -> Detections | None:
        """Detections for the frame, or None when this frame reuses the previous boxes."""
        run = self._count % self.detect_every == 0
        self._count += 1
        return self.detector.detect(frame.image) if run else None

    def finish(self, frame: Frame, detections: Detections | None, detect_ms: float = 0.0) -> FrameResult:
        """Classify all faces of the frame in one batched call, then track and vote.

        ``detections`` None means the detector skipped this frame: the tracker carries the
        last boxes along their motion (or, with tracking off, they are reused as they were).
        ``inference_ms`` of the result is ``detect_ms`` plus the time spent here.
        """
        started = time.perf_counter()
        tracking = self.tracker.enabled
        if detections is None and tracking:
            h, w = frame.image.shape[:2]
            detections, track_ids = self.tracker.carry((w, h))
            predictions = self.tracker.vote(track_ids, self.classifier.classify(frame.image, detections))
        else:
            if detections is None:
                detections = self._last
            self._last = detections
            track_ids, predictions = self.tracker.update(detections, self.classifier.classify(frame.image, detections))
        return FrameResult(frame, detections, predictions, track_ids,
                           detect_ms + (time.perf_counter() - started) * 1000.0)

    def process(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        detections = self.detect(frame)
        return self.finish(frame, detections, (time.perf_counter() - started) * 1000.0)


class Percentiles:
    """Bounded store of recent values (milliseconds) with percentiles and the all-time maximum."""

    def __init__(self, keep: int = 8192):
        self.values: deque[float] = deque(maxlen=keep)
        self.count = 0
        self.maximum = 0.0

    def add(self, value: float) -> None:
        self.values.append(value)
        self.count += 1
        self.maximum = max(self.maximum, value)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(np.fromiter(self.values, float), q)) if self.values else None

    def summary(self) -> dict:
        p50, p95 = self.percentile(50), self.percentile(95)
        return {"p50": None if p50 is None else round(p50, 1), "p95": None if p95 is None else round(p95, 1),
                "max": round(self.maximum, 1)}


class Pipeline:
    """Capture, detection and classification as three overlapping threads.

    ``live``: inter-stage channels hold one item and drop the older one when full (counted
    in :attr:`dropped`), as the capture channel does, so what comes out is recent.
    Otherwise they hold ``stage_queue`` items, every stage blocks for room and no frame is lost.

    ``overlap`` False: one inference thread detects and classifies each frame in turn (the
    capture thread still decodes ahead). A process then keeps about one core busy instead of
    two, which is what a batch worker per core wants (``livemask batch``).
    """

    def __init__(self, capture: Capture, processor: FrameProcessor, stage_queue: int = 2, overlap: bool = True):
        self.overlap = bool(overlap)
        self.capture = capture
        self.processor = processor
        self.live = capture.live
        self.stop_event = capture.stop_event
        self.policy = BufferPolicy.DROP_OLDEST if self.live else BufferPolicy.BLOCK
        size = 1 if self.live else max(int(stage_queue), 1)
        self._detected: Channel = Channel(size, self.policy, self.stop_event, "detected")
        self._results: Channel[FrameResult] = Channel(size, self.policy, self.stop_event, "results")
        self._threads: list[threading.Thread] = []
        self.processed = 0
        self.result_latency = Percentiles()  # capture -> result ready, ms
        self.inference = Percentiles()  # detection + classification time of a frame, ms

    @property
    def dropped(self) -> int:
        """Frames dropped between stages (live only); capture drops are in capture.stats."""
        return self._detected.dropped + self._results.dropped

    def start(self) -> Pipeline:
        self.capture.start()
        stages = (("detect", self._detect_loop), ("classify", self._classify_loop)) if self.overlap else \
            (("infer", self._detect_loop),)
        for name, target in stages:
            t = threading.Thread(target=target, name=f"pipeline-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    # -- stages ---------------------------------------------------------------------------
    def _detect_loop(self) -> None:
        error = None
        try:
            while not self.stop_event.is_set():
                try:
                    frame = self.capture.get(timeout=0.05)
                except queue.Empty:
                    continue
                if frame is None:
                    break
                started = time.perf_counter()
                detections = self.processor.detect(frame)
                if self.overlap:
                    self._detected.put((frame, detections, (time.perf_counter() - started) * 1000.0))
                else:
                    self._finish(frame, detections, (time.perf_counter() - started) * 1000.0)
        except BaseException as err:  # every error must reach the consumer
            error = err
        finally:
            (self._detected if self.overlap else self._results).close(error)

    def _classify_loop(self) -> None:
        error = None
        try:
            while True:
                try:
                    item = self._detected.get(timeout=0.05)
                except queue.Empty:
                    if self.stop_event.is_set():
                        break
                    continue
                if item is None:
                    break
                self._finish(*item)
        except BaseException as err:  # the detect stage's error too: it arrives through get()
            error = err
        finally:
            self._results.close(error)

    def _finish(self, frame: Frame, detections: Detections | None, detect_ms: float) -> None:
        result = self.processor.finish(frame, detections, detect_ms)
        self.inference.add(result.inference_ms)
        self.result_latency.add((time.monotonic() - frame.timestamp) * 1000.0)
        self._results.put(result)

    # -- consumer -------------------------------------------------------------------------
    def get(self, timeout: float = 0.1) -> FrameResult | None:
        """The next result; None at the end; raises queue.Empty on timeout, LivemaskError on failure."""
        try:
            result = self._results.get(timeout=timeout)
        except (queue.Empty, LivemaskError):
            raise
        except Exception as err:
            raise LivemaskError(f"inference failed: {type(err).__name__}: {err}") from err
        if result is not None:
            self.processed += 1
        return result

    def get_nowait(self) -> FrameResult | None:
        return self.get(timeout=0)

    def __iter__(self):
        while True:
            try:
                result = self.get(timeout=0.1)
            except queue.Empty:
                continue
            if result is None:
                return
            yield result

    @property
    def ended(self) -> bool:
        return self._results.ended

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every stage, drain the channels, join; returns within about ``timeout``."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        self.capture.stop(timeout=max(deadline - time.monotonic() - 0.1, 0.1))
        for t in self._threads:
            while t.is_alive() and time.monotonic() < deadline:
                self._drain()
                t.join(timeout=0.02)
        self._drain()
        busy = [t.name for t in self._threads if t.is_alive()]
        if busy:
            log.warning("stage threads still finishing a frame: %s", ", ".join(busy))

    def _drain(self) -> None:
        self._detected.drain()
        self._results.drain()

    def stats(self) -> dict:
        cs = self.capture.stats
        return {
            "frames_read": cs.frames,
            "frames_processed": self.processed,
            "dropped": cs.dropped + self.dropped,
            "dropped_capture": cs.dropped,
            "dropped_stages": self.dropped,
            "reconnects": cs.reconnects,
            "gap_s": round(cs.gap_s, 2),
            "inference_ms": self.inference.summary(),
            "capture_to_result_ms": self.result_latency.summary(),
        }

"""One lane per model: every detector / classifier / explainer call goes through one runner.

TensorFlow and OpenCV's DNN are not meant to be driven by many threads at once on the same
model, and on 2 cores many parallel calls only fight over the cores. The runner gives each model
a *lane*, a thread pool of its own:

* ``worker`` (default): the classifier and the explainers share the *model* lane, one thread, so
  TensorFlow always sees the same thread. Each face detector (the photo one, the live source's, the
  webcam's) has a lane of its own: one thread, or :data:`CONCURRENT_DETECTS` threads for a
  detector whose ``concurrent_calls`` says that ``detect`` may run in several threads at once
  (CenterFace on ONNX Runtime, whose sessions are thread-safe). A request's detection and
  classification run in turn, but requests overlap: one photo is classified while the next ones
  are detected.
* ``lock``: every call runs in the server's thread pool under one lock (one call at a time).

Uploaded images are decoded in a *decode* lane of :data:`DECODE_THREADS` threads, off the event loop; their
headers are checked first in a *check* lane of :data:`CHECK_THREADS` threads started with the runner.
Every lane's threads run ``nice`` steps below the event loop's thread (Linux, :mod:`livemask.core.priority`):
when decodes and model calls hold both cores, ``/healthz`` and the 503 answers still get a core at once.

``benchmarks/bench_serve.py`` measures both at 4 concurrent clients; ``benchmarks/bench_upload_flood.py``
the event loop's answers under a flood of uploads.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from livemask.core.priority import lowered
from livemask.core.types import Detections, Predictions

MODES = ("worker", "lock")
CONCURRENT_DETECTS = 2  # threads of a thread-safe detector's lane: one per core of the 2-core target
DECODE_THREADS = max(1, (os.cpu_count() or 2) - 1)  # uploads decoded at once: a core is left to the rest
DEFAULT_NICE = 10  # how far below the event loop the lanes' threads run (0: same priority)
CHECK_THREADS = 2  # uploads' header checks at once (each well under a millisecond)


class InferenceRunner:
    def __init__(self, detector, classifier, mode: str = "worker", nice: int = DEFAULT_NICE):
        if mode not in MODES:
            raise ValueError(f"serialise mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be 0..19, got {nice}")
        self.nice = int(nice)
        self.detector = detector
        self.classifier = classifier
        self.mode = mode
        self._lock = threading.Lock()  # ``lock`` mode: one call at a time
        self._busy_lock = threading.Lock()  # the lanes add to the totals from their threads
        self._lanes_lock = threading.Lock()
        self._model_lane = self._lane(1, "livemask-model") if mode == "worker" else None
        self._decode_lane = self._lane(DECODE_THREADS, "livemask-decode")
        # the uploads' header checks: threads of their own, started here, at the event loop's priority. The
        # loop never waits for a thread to start in a flood (anyio's pool starts one per waiting request, and
        # each start blocks the loop until the new thread runs), and a check never queues behind a decode.
        self._check_lane = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="livemask-check")
        started = threading.Barrier(CHECK_THREADS + 1)
        for _ in range(CHECK_THREADS):
            self._check_lane.submit(started.wait, 10.0)
        started.wait(10.0)
        self._detect_lanes: dict[int, tuple[object, ThreadPoolExecutor]] = {}  # id(detector) -> (detector, lane)
        self.calls = 0
        self.busy_s = 0.0

    def _lane(self, threads: int, name: str) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=lowered(self.nice))

    def _timed(self, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            with self._busy_lock:
                self.calls += 1
                self.busy_s += time.perf_counter() - started

    def _locked(self, fn, *args):
        with self._lock:
            return self._timed(fn, *args)

    def _detect_lane(self, detector) -> ThreadPoolExecutor | None:
        """The lane of ``detector`` (made on its first call); None in ``lock`` mode."""
        if self._model_lane is None:
            return None
        with self._lanes_lock:
            entry = self._detect_lanes.get(id(detector))
            if entry is None:  # the detector is kept with its lane, so its id is never reused while the lane lives
                threads = CONCURRENT_DETECTS if getattr(detector, "concurrent_calls", False) else 1
                entry = (detector, self._lane(threads, "livemask-detect"))
                self._detect_lanes[id(detector)] = entry
            return entry[1]

    def _call_in(self, lane: ThreadPoolExecutor | None, fn, *args):
        if lane is not None:
            return lane.submit(self._timed, fn, *args).result()
        return self._locked(fn, *args)

    async def _run_in(self, lane: ThreadPoolExecutor | None, fn, *args):
        if lane is not None:
            return await asyncio.wrap_future(lane.submit(self._timed, fn, *args))
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self._locked, fn, *args)

    def call(self, fn, *args):
        """Run ``fn(*args)`` (a classifier or explainer call) in the model lane, from any thread but the
        event loop's."""
        return self._call_in(self._model_lane, fn, *args)

    async def run(self, fn, *args):
        """Run ``fn(*args)`` (a classifier or explainer call) in the model lane, awaited from the event loop."""
        return await self._run_in(self._model_lane, fn, *args)

    async def check(self, fn, *args):
        """Run ``fn(*args)`` (an upload's header check: short) in the check lane, awaited from the event loop."""
        return await asyncio.wrap_future(self._check_lane.submit(fn, *args))

    async def decode(self, fn, *args):
        """Run ``fn(*args)`` (an upload's decoding) in the decode lane, awaited from the event loop."""
        return await asyncio.wrap_future(self._decode_lane.submit(fn, *args))

    def detect(self, detector, image: np.ndarray) -> Detections:
        """``detector.detect(image)`` in the detector's lane, from any thread but the event loop's."""
        return self._call_in(self._detect_lane(detector), detector.detect, image)

    async def analyse(self, image: np.ndarray, detector=None) -> tuple[Detections, Predictions]:
        """Detect (with ``detector``, default the photo detector) in its lane, then classify in the model
        lane; awaited from the event loop."""
        detector = detector or self.detector
        detections = await self._run_in(self._detect_lane(detector), detector.detect, image)
        return detections, await self.run(self.classifier.classify, image, detections)

    def warmup(self, size: tuple[int, int] = (640, 480)) -> None:
        """One call of each model on a grey image, in its lane, so the first request is not slow."""
        grey = np.full((size[1], size[0], 3), 127, np.uint8)
        self.call(self.classifier.classify, grey, self.detect(self.detector, grey))

    def close(self) -> None:
        with self._lanes_lock:
            lanes = [lane for _, lane in self._detect_lanes.values()]
            self._detect_lanes.clear()
        model = [self._model_lane] if self._model_lane is not None else []
        for lane in [*lanes, self._check_lane, self._decode_lane, *model]:
            lane.shutdown(wait=True, cancel_futures=True)

    def routed_detector(self, detector) -> RoutedDetector:
        """``detector`` with every ``detect`` call run in its lane."""
        return RoutedDetector(detector, self)

    def routed_classifier(self, classifier) -> RoutedClassifier:
        """``classifier`` with every ``classify`` call run in the model lane."""
        return RoutedClassifier(classifier, self)


class RoutedDetector:
    """A detector for the engine's detect stage that takes turns on the models with the API requests."""

    def __init__(self, detector, runner: InferenceRunner):
        self.inner, self.runner = detector, runner

    def detect(self, image: np.ndarray) -> Detections:
        return self.runner.detect(self.inner, image)

    def describe(self) -> dict:
        return self.inner.describe()


class RoutedClassifier:
    """A classifier for the engine's classify stage that takes turns on the models with the API requests."""

    def __init__(self, classifier, runner: InferenceRunner):
        self.inner, self.runner = classifier, runner
        self.class_names = classifier.class_names

    def classify(self, image: np.ndarray, detections: Detections) -> Predictions:
        return self.runner.call(self.inner.classify, image, detections)

    def crops(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        """The faces' crops, cut on the caller's thread (no model call): lets the cameras' shared classifier
        batch them (:class:`~livemask.engine.cameras.SharedClassifier`)."""
        return self.inner.crops(image, detections)

    def predict_crops(self, crops: np.ndarray) -> Predictions:
        """Crops (from :meth:`crops`, several frames' at once) classified in one call in the model lane."""
        return self.runner.call(self.inner.predict_crops, crops)

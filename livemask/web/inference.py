"""One thread per model: every detector / classifier / explainer call goes through one runner.

TensorFlow and ONNX Runtime / OpenCV's DNN are not meant to be driven by many threads at once on
the same model, and on 2 cores parallel calls only fight over the cores. The runner serialises
calls per model:

* ``worker`` (default): two dedicated threads, one *lane* per model. The ``detect`` lane runs
  every face-detector call; the ``model`` lane runs every classifier and explainer call (so
  TensorFlow always sees the same thread). A request's detection and classification run in turn,
  but one request's classification can overlap the next request's detection.
* ``lock``: every call runs in the server's thread pool under one lock (one call at a time).

``benchmarks/bench_serve.py`` measures both at 4 concurrent clients.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from livemask.core.types import Detections, Predictions

MODES = ("worker", "lock")
LANES = ("detect", "model")


class InferenceRunner:
    def __init__(self, detector, classifier, mode: str = "worker"):
        if mode not in MODES:
            raise ValueError(f"serialise mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.detector = detector
        self.classifier = classifier
        self.mode = mode
        self._lock = threading.Lock()
        self._busy_lock = threading.Lock()
        self._lanes = ({lane: ThreadPoolExecutor(1, thread_name_prefix=f"livemask-{lane}") for lane in LANES}
                       if mode == "worker" else {})
        self.calls = 0
        self.busy_s = 0.0

    def _timed(self, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            with self._busy_lock:  # two lanes add to the totals
                self.calls += 1
                self.busy_s += time.perf_counter() - started

    def _locked(self, fn, *args):
        with self._lock:
            return self._timed(fn, *args)

    def call(self, fn, *args, lane: str = "model"):
        """Run ``fn(*args)`` in ``lane`` (``detect`` for face-detector calls, ``model`` for classifier
        and explainer calls), from any thread but the event loop's."""
        if self._lanes:
            return self._lanes[lane].submit(self._timed, fn, *args).result()
        return self._locked(fn, *args)

    async def run(self, fn, *args, lane: str = "model"):
        """Run ``fn(*args)`` in ``lane``, awaiting it from the event loop."""
        if self._lanes:
            return await asyncio.wrap_future(self._lanes[lane].submit(self._timed, fn, *args))
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self._locked, fn, *args)

    async def analyse(self, image: np.ndarray, detector=None) -> tuple[Detections, Predictions]:
        """Detect (with ``detector``, default the photo detector) in the ``detect`` lane, then classify
        in the ``model`` lane; awaited from the event loop."""
        detections = await self.run((detector or self.detector).detect, image, lane="detect")
        return detections, await self.run(self.classifier.classify, image, detections)

    def warmup(self, size: tuple[int, int] = (640, 480)) -> None:
        """One call of each model on a grey image, in its own lane, so the first request is not slow."""
        grey = np.full((size[1], size[0], 3), 127, np.uint8)
        self.call(self.classifier.classify, grey, self.call(self.detector.detect, grey, lane="detect"))

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=True, cancel_futures=True)

    def routed_detector(self, detector) -> RoutedDetector:
        """``detector`` with every ``detect`` call run in the ``detect`` lane."""
        return RoutedDetector(detector, self)

    def routed_classifier(self, classifier) -> RoutedClassifier:
        """``classifier`` with every ``classify`` call run in the ``model`` lane."""
        return RoutedClassifier(classifier, self)


class RoutedDetector:
    """A detector for the engine's detect stage that takes turns on the models with the API requests."""

    def __init__(self, detector, runner: InferenceRunner):
        self.inner, self.runner = detector, runner

    def detect(self, image: np.ndarray) -> Detections:
        return self.runner.call(self.inner.detect, image, lane="detect")

    def describe(self) -> dict:
        return self.inner.describe()


class RoutedClassifier:
    """A classifier for the engine's classify stage that takes turns on the models with the API requests."""

    def __init__(self, classifier, runner: InferenceRunner):
        self.inner, self.runner = classifier, runner
        self.class_names = classifier.class_names

    def classify(self, image: np.ndarray, detections: Detections) -> Predictions:
        return self.runner.call(self.inner.classify, image, detections)

"""One model, many requests: every detector / classifier / explainer call goes through one runner.

TensorFlow and OpenCV's DNN are not meant to be driven by many threads at once on the same
model, and on 2 cores parallel calls only fight over the cores. The runner serialises them:

* ``worker`` (default): one dedicated thread runs every call, requests wait on a future;
  TensorFlow always sees the same thread.
* ``lock``: the calls run in the server's thread pool under one lock.

``benchmarks/bench_serve.py --serialise lock|worker`` measures both at 4 concurrent clients.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from livemask.core.types import Detections, Predictions

MODES = ("worker", "lock")


class InferenceRunner:
    def __init__(self, detector, classifier, mode: str = "worker"):
        if mode not in MODES:
            raise ValueError(f"serialise mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.detector = detector
        self.classifier = classifier
        self.mode = mode
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="livemask-infer") if mode == "worker" else None
        self.calls = 0
        self.busy_s = 0.0

    def _timed(self, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.calls += 1
            self.busy_s += time.perf_counter() - started

    def _locked(self, fn, *args):
        with self._lock:
            return self._timed(fn, *args)

    def call(self, fn, *args):
        """Run ``fn(*args)`` serialised, from any (non-event-loop) thread."""
        if self._executor is not None:
            return self._executor.submit(self._timed, fn, *args).result()
        return self._locked(fn, *args)

    async def run(self, fn, *args):
        """Run ``fn(*args)`` serialised, awaiting it from the event loop."""
        if self._executor is not None:
            return await asyncio.wrap_future(self._executor.submit(self._timed, fn, *args))
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self._locked, fn, *args)

    def analyse(self, image: np.ndarray, detector=None) -> tuple[Detections, Predictions]:
        """Detect (with ``detector``, default the photo detector) and classify; call through
        :meth:`run` or :meth:`call`."""
        detections = (detector or self.detector).detect(image)
        return detections, self.classifier.classify(image, detections)

    def warmup(self, size: tuple[int, int] = (640, 480)) -> None:
        """One call on a grey image, in the serialising thread, so the first request is not slow."""
        self.call(self.analyse, np.full((size[1], size[0], 3), 127, np.uint8))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def routed_detector(self, detector) -> RoutedDetector:
        """``detector`` with every ``detect`` call serialised through this runner."""
        return RoutedDetector(detector, self)

    def routed_classifier(self, classifier) -> RoutedClassifier:
        """``classifier`` with every ``classify`` call serialised through this runner."""
        return RoutedClassifier(classifier, self)


class RoutedDetector:
    """A detector for the engine's detect stage that takes turns on the models with the API requests."""

    def __init__(self, detector, runner: InferenceRunner):
        self.inner, self.runner = detector, runner

    def detect(self, image: np.ndarray) -> Detections:
        return self.runner.call(self.inner.detect, image)


class RoutedClassifier:
    """A classifier for the engine's classify stage that takes turns on the models with the API requests."""

    def __init__(self, classifier, runner: InferenceRunner):
        self.inner, self.runner = classifier, runner
        self.class_names = classifier.class_names

    def classify(self, image: np.ndarray, detections: Detections) -> Predictions:
        return self.runner.call(self.inner.classify, image, detections)

"""The serve inference runner: one lane per model, two threads for a detector that may run concurrently."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from face_detector import CenterFaceDetector
from livemask.web.inference import CONCURRENT_DETECTS, InferenceRunner


class Overlap:
    """How many watched calls run at once, at most."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.most = 0

    def __enter__(self):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def __exit__(self, *exc):
        with self.lock:
            self.running -= 1


class Watched:
    """A real detector whose ``detect`` calls are counted while they run (its own count, and a shared one)."""

    def __init__(self, inner, concurrent_calls: bool, shared: Overlap | None = None):
        self.inner, self.concurrent_calls = inner, concurrent_calls
        self.own, self.shared = Overlap(), shared or Overlap()

    @property
    def most(self) -> int:
        return self.own.most

    def detect(self, image):
        with self.own, self.shared:
            time.sleep(0.05)  # long enough for the other callers to arrive
            return self.inner.detect(image)


def _detect_from_threads(runner, detector, image, n: int = 6) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: runner.detect(detector, image), range(n)))


@pytest.mark.parametrize("concurrent, expected", [(True, CONCURRENT_DETECTS), (False, 1)])
def test_a_detector_runs_as_many_calls_at_once_as_it_allows(detector, classifier, astronaut_bgr, concurrent, expected):
    watched = Watched(detector, concurrent)
    runner = InferenceRunner(watched, classifier)
    try:
        found = _detect_from_threads(runner, watched, astronaut_bgr)
    finally:
        runner.close()
    assert watched.most == expected
    assert all(len(d) == 1 for d in found)  # the same face every time, whichever thread ran it


def test_each_detector_has_its_own_lane_and_the_classifier_one_thread(detector, classifier, astronaut_bgr):
    """Two detectors that each allow one call at a time still run side by side (a lane each); every
    classifier call runs in one thread (TensorFlow always sees the same thread), also when requests overlap."""
    shared = Overlap()
    a, b = Watched(detector, False, shared), Watched(detector, False, shared)
    seen: set[int] = set()

    class Recording:
        class_names = classifier.class_names

        @staticmethod
        def classify(image, detections):
            seen.add(threading.get_ident())
            return classifier.classify(image, detections)

    runner = InferenceRunner(a, Recording())
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: runner.detect(a if i % 2 else b, astronaut_bgr), range(4)))

        async def requests():
            return await asyncio.gather(*(runner.analyse(astronaut_bgr, detector) for _ in range(4)))

        results = asyncio.run(requests())
    finally:
        runner.close()
    assert (a.most, b.most, shared.most) == (1, 1, 2)
    assert len(seen) == 1
    assert all(len(d) == 1 and len(p.labels) == 1 for d, p in results)


def test_lock_mode_runs_one_call_at_a_time(detector, classifier, astronaut_bgr):
    watched = Watched(detector, True)
    runner = InferenceRunner(watched, classifier, mode="lock")
    try:
        _detect_from_threads(runner, watched, astronaut_bgr, 4)
    finally:
        runner.close()
    assert watched.most == 1


def test_opencv_centerface_is_not_called_concurrently():
    assert CenterFaceDetector(runtime="opencv").concurrent_calls is False
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    assert CenterFaceDetector(runtime="onnxruntime").concurrent_calls is True
    assert "concurrent_calls" not in CenterFaceDetector(runtime="onnxruntime").describe()


def test_warmup_and_close(detector, classifier):
    runner = InferenceRunner(detector, classifier)
    runner.warmup((64, 48))
    assert runner.calls == 2 and runner.busy_s > 0
    runner.close()
    assert np.isfinite(runner.busy_s)

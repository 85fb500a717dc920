"""The serve inference runner: one lane per model, two threads for a detector that may run concurrently."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from servehelpers import encode

from face_detector import CenterFaceDetector
from livemask.core import priority
from livemask.web.imagecheck import decode_upload
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


needs_thread_nice = pytest.mark.skipif(not priority.supported(), reason="a thread's own nice value is Linux only")


async def _decode_and_analyse(runner, decode, data):
    return await runner.analyse(await runner.decode(decode, data))


@needs_thread_nice
def test_decodes_and_model_calls_run_below_the_callers_priority(detector, classifier, astronaut_bgr):
    """Every lane's threads (model, detector, decode) run ``nice`` steps below the thread that made the runner
    (the event loop's), which keeps its own priority; nice 0 leaves them all at the caller's."""
    base = priority.thread_nice()
    seen: dict[str, int] = {}

    class Niceness:
        def __init__(self, inner):
            self.inner, self.concurrent_calls = inner, True

        def detect(self, image):
            seen["detect"] = priority.thread_nice()
            return self.inner.detect(image)

    def decode(data):
        seen["decode"] = priority.thread_nice()
        return decode_upload(data)

    for nice in (10, 0):
        runner = InferenceRunner(Niceness(detector), classifier, nice=nice)
        try:
            detections, predictions = asyncio.run(_decode_and_analyse(runner, decode, encode(astronaut_bgr)))
            seen["model"] = runner.call(priority.thread_nice)
        finally:
            runner.close()
        assert len(detections) == 1 and len(predictions.labels) == 1
        assert seen == {"decode": min(19, base + nice), "detect": min(19, base + nice), "model": min(19, base + nice)}
        assert priority.thread_nice() == base


@needs_thread_nice
def test_other_threads_are_lowered_and_the_caller_is_not():
    """``lower_other_threads`` in a process of its own: a thread started before it is put 7 steps below the
    caller, one already lowered (a lane's) is not lowered twice, the caller keeps its priority, and a thread the
    caller starts afterwards starts at the caller's priority."""
    code = textwrap.dedent("""
        import threading
        from livemask.core import priority
        done = threading.Event()
        tids = {}
        def waiting(name, by):
            priority.lower_thread(by); tids[name] = threading.get_native_id(); done.wait()
        threads = [threading.Thread(target=waiting, args=(name, by)) for name, by in (("plain", 0), ("lane", 7))]
        for t in threads: t.start()
        while len(tids) < 2: pass
        lowered = priority.lower_other_threads(7)
        late = {}
        t2 = threading.Thread(target=lambda: late.setdefault("nice", priority.thread_nice())); t2.start(); t2.join()
        print(lowered, priority.thread_nice(tids["plain"]), priority.thread_nice(tids["lane"]), priority.thread_nice(),
              late["nice"])
        done.set()
        for t in threads: t.join()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    base = priority.thread_nice()
    low = str(min(19, base + 7))
    assert out.stdout.split() == ["1", low, low, str(base), str(base)], out.stdout


def test_a_nice_out_of_range_is_refused(detector, classifier):
    with pytest.raises(ValueError, match="nice must be 0..19"):
        InferenceRunner(detector, classifier, nice=20)


def test_the_cameras_shared_classifier_batches_through_the_model_lane(detector, classifier, astronaut_bgr):
    """``serve`` with cameras: the shared classifier over the routed one cuts crops on the callers' threads and
    classifies several frames' crops in one call, in the model lane (as ``run`` does without a runner)."""
    from livemask.engine.cameras import SharedClassifier

    lane_threads: set[int] = set()
    calls: list[int] = []

    class Recording:
        class_names = classifier.class_names
        crops = staticmethod(classifier.crops)

        @staticmethod
        def predict_crops(crops):
            lane_threads.add(threading.get_ident())
            calls.append(len(crops))
            time.sleep(0.05)  # the other cameras' frames arrive meanwhile
            return classifier.predict_crops(crops)

    runner = InferenceRunner(detector, Recording())
    shared = SharedClassifier(runner.routed_classifier(Recording()))
    faces = detector.detect(astronaut_bgr)
    alone = classifier.classify(astronaut_bgr, faces)
    try:
        assert shared.batch
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: shared.classify(astronaut_bgr, faces), range(6)))
    finally:
        shared.close()
        runner.close()
    assert sum(calls) == 6 and len(calls) < 6 and max(calls) > 1  # several frames in one call
    assert len(lane_threads) == 1 and threading.get_ident() not in lane_threads
    for p in results:
        assert p.labels == alone.labels
        np.testing.assert_allclose(p.probabilities, alone.probabilities, atol=1e-4)


def test_worker_nice_defaults_to_one_priority_for_a_site_of_cameras():
    from livemask.apps.serve_cmd import worker_nice

    assert worker_nice(None, cameras=False) == 10  # one source or none: the event loop first (issue 23)
    assert worker_nice(None, cameras=True) == 0  # a site: the cameras are not below a browser on the same machine
    assert worker_nice(7, cameras=True) == 7 and worker_nice(0, cameras=False) == 0  # as given

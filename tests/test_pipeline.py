"""The threaded inference loop with the real detector and classifier."""

from __future__ import annotations

import time

import numpy as np
import pytest
from livehelpers import MODEL, read_code, write_clip

from livemask.core.errors import ConfigError, LivemaskError
from livemask.core.types import FrameResult
from livemask.engine.capture import Capture
from livemask.engine.pipeline import FrameProcessor, Pipeline, PipelineOptions
from livemask.engine.sources import FileSource, Source
from livemask.engine.tracker import Tracker


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 45)


@pytest.fixture(scope="module")
def detector():
    from face_detector import CenterFaceDetector

    return CenterFaceDetector(input_long_side=320)


@pytest.fixture(scope="module")
def classifier():
    from livemask.models.backends.keras_model import MaskClassifier

    c = MaskClassifier(str(MODEL))
    c.warmup()
    return c


class CountingDetector:
    def __init__(self, inner, fail_at: int | None = None, delay: float = 0.0):
        self.inner, self.fail_at, self.delay, self.calls = inner, fail_at, delay, 0

    def detect(self, image):
        self.calls += 1
        if self.fail_at is not None and self.calls > self.fail_at:
            raise RuntimeError("detector exploded")
        if self.delay:
            time.sleep(self.delay)
        return self.inner.detect(image)


def run_all(pipeline: Pipeline) -> list[FrameResult]:
    pipeline.start()
    try:
        return list(pipeline)
    finally:
        pipeline.stop()


def test_every_frame_in_order_with_labels_and_steady_track(clip, detector, classifier):
    processor = FrameProcessor(detector, classifier, Tracker())
    pipeline = Pipeline(Capture(FileSource(clip), queue_size=2), processor, stage_queue=1)
    results = run_all(pipeline)
    assert [r.frame.frame_id for r in results] == list(range(45))
    assert [read_code(r.frame.image) for r in results] == list(range(45))
    assert all(len(r.detections) == 1 for r in results)  # the astronaut's face, every frame
    assert all(r.predictions.class_names == classifier.class_names for r in results)
    assert all(r.predictions.labels[0] in classifier.class_names for r in results)
    assert {int(r.track_ids[0]) for r in results} == {1}  # one face, one id all along
    assert all(r.inference_ms > 0 for r in results)
    stats = pipeline.stats()
    assert stats["frames_read"] == stats["frames_processed"] == 45 and stats["dropped"] == 0
    # one compiled classifier function whatever the number of faces (batches are padded)
    assert classifier._call.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapped", "in-turn"])
def test_results_match_single_threaded_processing(clip, detector, classifier, overlap):
    pipeline = Pipeline(Capture(FileSource(clip)), FrameProcessor(detector, classifier, Tracker()), overlap=overlap)
    threaded = run_all(pipeline)
    assert [t.name for t in pipeline._threads] == (["pipeline-detect", "pipeline-classify"] if overlap
                                                     else ["pipeline-infer"])
    processor = FrameProcessor(detector, classifier, Tracker())
    with Capture(FileSource(clip)) as capture:
        serial = [processor.process(f) for f in capture]
    assert len(threaded) == len(serial) == 45
    for a, b in zip(threaded, serial, strict=True):
        np.testing.assert_allclose(a.detections.boxes, b.detections.boxes, atol=1e-3)
        np.testing.assert_allclose(a.predictions.probabilities, b.predictions.probabilities, atol=1e-4)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapped", "in-turn"])
def test_error_in_the_inference_thread_reaches_the_consumer(clip, detector, classifier, overlap):
    processor = FrameProcessor(CountingDetector(detector, fail_at=5), classifier)
    pipeline = Pipeline(Capture(FileSource(clip)), processor, overlap=overlap).start()
    with pytest.raises(LivemaskError, match="RuntimeError: detector exploded"):
        list(pipeline)
    pipeline.stop()
    assert not any(t.is_alive() for t in pipeline._threads) and not pipeline.capture.alive


def test_detect_every_k_frames_carries_boxes(clip, detector, classifier):
    counting = CountingDetector(detector)
    processor = FrameProcessor(counting, classifier, Tracker(), detect_every=3)
    results = run_all(Pipeline(Capture(FileSource(clip)), processor))
    assert len(results) == 45 and counting.calls == 15
    assert all(len(r.detections) == 1 for r in results)
    # skipped frames reuse the last detected boxes
    np.testing.assert_array_equal(results[1].detections.boxes, results[0].detections.boxes)
    assert not np.array_equal(results[3].detections.boxes, results[0].detections.boxes)


def test_error_in_a_stage_reaches_the_consumer(clip, detector, classifier):
    processor = FrameProcessor(CountingDetector(detector, fail_at=5), classifier)
    pipeline = Pipeline(Capture(FileSource(clip)), processor).start()
    got = []
    with pytest.raises(LivemaskError, match="RuntimeError: detector exploded"):
        for r in pipeline:
            got.append(r)
    started = time.monotonic()
    pipeline.stop()
    assert time.monotonic() - started < 1.0
    assert len(got) == 5
    assert not any(t.is_alive() for t in pipeline._threads) and not pipeline.capture.alive


def test_stop_within_a_second_when_nobody_reads(clip, detector, classifier):
    pipeline = Pipeline(Capture(FileSource(clip), queue_size=1), FrameProcessor(detector, classifier),
                        stage_queue=1).start()
    time.sleep(1.0)  # every queue is full and every stage waits for room
    started = time.monotonic()
    pipeline.stop()
    assert time.monotonic() - started < 1.0
    assert not any(t.is_alive() for t in pipeline._threads) and not pipeline.capture.alive


class FastLive(Source):
    live = True

    def __init__(self):
        super().__init__("fast-live")
        self.n = 0

    def _open(self):
        from livehelpers import astronaut_bgr, clip_frame

        self.base, self.make = astronaut_bgr(), clip_frame
        self.fps = 200.0

    def _read(self):
        time.sleep(0.005)
        self.n += 1
        return self.make(self.base, self.n)


def test_live_pipeline_behind_its_source_drops_and_counts(detector, classifier):
    slow = CountingDetector(detector, delay=0.03)
    pipeline = Pipeline(Capture(FastLive(), queue_size=1), FrameProcessor(slow, classifier), stage_queue=1).start()
    results = []
    for r in pipeline:
        results.append(r)
        time.sleep(0.15)  # a display slower still
        if len(results) == 12:
            break
    pipeline.stop()
    stats = pipeline.stats()
    assert stats["dropped_capture"] > 0 and stats["dropped_stages"] > 0
    ids = [r.frame.frame_id for r in results]
    assert ids == sorted(ids) and ids[-1] - ids[0] > len(ids)
    # nothing is lost silently: read = processed by the detector + dropped at capture + in flight
    assert stats["frames_read"] - stats["dropped_capture"] - slow.calls in range(0, 4)


def test_pipeline_options_validate():
    with pytest.raises(ConfigError, match="detect_every"):
        PipelineOptions(detect_every=0)
    with pytest.raises(ConfigError, match="multiple of 32"):
        PipelineOptions(detector_long_side=300)

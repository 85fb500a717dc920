"""The engine and its sinks: a slow sink does not slow a live run, a failing sink ends the run cleanly."""

from __future__ import annotations

import threading
import time

import pytest
from livehelpers import read_code, read_events, read_video, write_clip
from sinkhelpers import BaseSink

from livemask.core.errors import OutputError
from livemask.engine.capture import Capture
from livemask.engine.engine import Engine
from livemask.engine.pipeline import FrameProcessor
from livemask.engine.sink import Sink
from livemask.engine.sources import FileSource
from livemask.engine.tracker import Tracker
from livemask.sinks.recording import EventLog, VideoSink


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 90, fps=30.0)


class Counting(BaseSink):
    name = "count"

    def __init__(self):
        self.frame_ids: list[int] = []
        self.opened = self.closed_with = None

    def open(self, info):
        self.opened = info

    def write(self, result):
        self.frame_ids.append(result.frame.frame_id)

    def close(self, summary):
        self.closed_with = summary


class Slow(Counting):
    """Takes 200 ms per result, like a sink posting to a slow web service."""

    name = "slow"

    def __init__(self, threaded: bool, seconds: float = 0.2):
        super().__init__()
        self.threaded, self.seconds = threaded, seconds
        self.queue_size = 2

    def write(self, result):
        time.sleep(self.seconds)
        super().write(result)


class Failing(Counting):
    name = "failing"

    def __init__(self, at: int, threaded: bool = False):
        super().__init__()
        self.at, self.threaded = at, threaded

    def write(self, result):
        if result.frame.frame_id == self.at:
            raise RuntimeError("disk on fire\nsecond line of the message")
        super().write(result)


@pytest.fixture(scope="module")
def video_detector():
    from face_detector import CenterFaceDetector

    # the video input size of `livemask run` on this small clip: the pipeline outruns a 200 ms sink even under load
    return CenterFaceDetector(input_long_side=160)


@pytest.fixture(scope="module")
def warm(classifier):
    classifier.warmup()
    return classifier


def engine(clip, detector, classifier, sinks, realtime: bool) -> Engine:
    capture = Capture(FileSource(clip), queue_size=1 if realtime else 4, realtime=realtime,
                      stop_event=threading.Event())
    capture.open()
    return Engine(capture, FrameProcessor(detector, classifier, Tracker(), 2), sinks)


def test_sink_protocol_is_what_the_engine_calls():
    for sink in (Counting(), EventLog("x.jsonl"), VideoSink("x.mp4")):
        assert isinstance(sink, Sink)


def test_slow_sink_does_not_lower_live_throughput_and_its_drops_are_counted(clip, video_detector, warm):
    detector, classifier = video_detector, warm
    alone = Counting()
    engine(clip, detector, classifier, [alone], realtime=True).run()

    fast, slow = Counting(), Slow(threaded=True)
    summary = engine(clip, detector, classifier, [fast, slow], realtime=True).run()
    # the other outputs get as many results as without the slow sink (same paced clip)
    assert len(fast.frame_ids) >= 0.8 * len(alone.frame_ids)
    assert summary["frames_written"] == len(fast.frame_ids)
    stats = summary["sinks"]["slow"]
    assert stats["dropped"] > 0 and stats["written"] == len(slow.frame_ids)
    assert stats["written"] + stats["dropped"] == summary["frames_written"]  # every result accounted for
    assert slow.frame_ids == sorted(slow.frame_ids) and slow.closed_with is summary

    # the same sink on the engine's loop (not threaded) does hold the live run back
    fast, inline = Counting(), Slow(threaded=False)
    engine(clip, detector, classifier, [fast, inline], realtime=True).run()
    assert len(fast.frame_ids) < 0.6 * len(alone.frame_ids)


def test_slow_sink_in_a_file_run_gets_every_frame(clip, video_detector, warm):
    detector, classifier = video_detector, warm
    slow = Slow(threaded=True, seconds=0.01)
    summary = engine(clip, detector, classifier, [slow], realtime=False).run()
    assert slow.frame_ids == list(range(90)) and summary["sinks"]["slow"]["dropped"] == 0


@pytest.mark.parametrize("threaded", [False, True])
def test_failing_sink_ends_the_run_with_one_line_and_finished_outputs(clip, video_detector, warm, tmp_path,
                                                                      threaded):
    detector, classifier = video_detector, warm
    video, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    failing = Failing(at=20, threaded=threaded)
    with pytest.raises(OutputError) as caught:
        engine(clip, detector, classifier, [VideoSink(video), EventLog(events), failing], realtime=False).run()
    message = str(caught.value)
    assert message == "output 'failing' failed: RuntimeError: second line of the message"
    assert "\n" not in message
    frames = read_video(video)  # playable: closed on the way out
    lines, summary = read_events(events)  # complete: every result written, then the summary
    assert summary is not None and summary["ended"] == "error" and summary["error"] == message
    assert 20 < len(frames) == len(lines) == summary["frames_written"] < 90
    assert [read_code(f) for f in frames] == [x["frame_id"] for x in lines] == list(range(len(lines)))
    assert failing.frame_ids == list(range(20)) and failing.closed_with["error"] == message
    assert summary["sinks"]["failing"]["error"] == message

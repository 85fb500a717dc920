"""Engine.display_lost(): what the C exit handler calls when the window's X connection breaks
(it runs from inside a display call of the loop). No display: a stand-in display calls it as Qt would."""

from __future__ import annotations

import json
import threading

import pytest
from livehelpers import read_events, read_video, write_clip

from livemask.engine.capture import Capture
from livemask.engine.engine import Engine
from livemask.engine.pipeline import FrameProcessor
from livemask.engine.sources import FileSource
from livemask.engine.tracker import Tracker
from livemask.sinks.recording import EventLog, VideoSink


class LosingDisplay:
    """A display whose X connection 'breaks' in the first poll after ``at`` frames were shown: it calls the
    handler from inside poll."""

    name = "window"
    threaded = False
    paused = False

    def __init__(self, at: int):
        self.at, self.polls, self.written, self.closed = at, 0, 0, 0
        self.engine: Engine | None = None
        self.lost_summary = None

    def open(self, info):
        pass

    def write(self, result):
        self.written += 1

    def poll(self, wait_ms):
        self.polls += 1
        if self.written >= self.at and self.lost_summary is None:
            self.lost_summary = self.engine.display_lost()
            # in a real run the handler leaves with os._exit here; returning checks that a later normal
            # finish neither closes the outputs twice nor touches the display
            assert self.engine.display_lost() is None
            return False
        return True

    def close(self, summary=None):
        self.closed += 1


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 300, fps=30.0)


def test_display_lost_finishes_every_output_once(clip, classifier, tmp_path):
    from face_detector import CenterFaceDetector

    capture = Capture(FileSource(clip), queue_size=4, realtime=False, stop_event=threading.Event())
    capture.open()
    display = LosingDisplay(at=40)
    video, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    engine = Engine(capture, FrameProcessor(CenterFaceDetector(input_long_side=160), classifier, Tracker(), 2),
                    [VideoSink(video), EventLog(events)], display)
    display.engine = engine
    summary = engine.run()
    lost = display.lost_summary
    assert lost is not None and lost["ended"] == "display lost"
    assert summary["ended"] == "display lost"
    records, logged = read_events(events)
    assert logged is not None and logged["ended"] == "display lost"
    lines = events.read_text().splitlines()
    assert sum("summary" in json.loads(line) for line in lines) == 1  # closed once
    frames = read_video(video)
    assert 0 < len(frames) == logged["sinks"]["video"]["written"] == len(records) < 300


HOOK_SCRIPT = r"""
import ctypes, sys
from livemask.sinks.x11 import on_lost_connection

disarm = on_lost_connection(lambda: print("finished outputs", flush=True) or 5)
if sys.argv[1] == "c-exit":  # what Qt's X11 plugin does when the connection breaks
    ctypes.CDLL(None).exit(1)
disarm()
sys.exit(4)  # a normal interpreter exit after the run: the disarmed hook must not run (nor crash, 139)
"""


@pytest.mark.parametrize("how, code, out", [("c-exit", 5, "finished outputs\n"), ("normal", 4, "")])
def test_exit_hook_runs_on_a_c_exit_and_stays_out_of_a_normal_exit(how, code, out):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", HOOK_SCRIPT, how], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (code, out), proc.stderr[-2000:]

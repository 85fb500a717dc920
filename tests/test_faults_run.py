"""Issue 10 causes 1, 2, 8, 11 and 13 for ``livemask run``: outputs checked before any work, every write of the
video and the event log checked, SIGHUP and a double Ctrl-C still finish the outputs, ``--max-frames`` range,
skipped folder images in the summary, and no secret in the summary's error text."""

from __future__ import annotations

import hashlib
import resource
import signal
import subprocess
import threading
import time

import cv2
import pytest
from livehelpers import cli, read_code, read_events, read_video, run_cli, write_clip
from sinkhelpers import BaseSink

from livemask.core.errors import LivemaskError, OutputError
from livemask.engine.capture import Capture
from livemask.engine.engine import Engine
from livemask.engine.pipeline import FrameProcessor
from livemask.engine.sources import FileSource
from livemask.engine.tracker import Tracker
from livemask.sinks.recording import EventLog


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 60, fps=25.0)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only_error(proc, prefix: str = "livemask: error: ") -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    return lines[0]


# -- causes 1 and 11: refused before any work --------------------------------------------------------
@pytest.mark.parametrize("case", ["output is the source", "output and events the same", "events is the source",
                                  "output is a hard link to the source", "output is a folder",
                                  "events under /proc", "output under a file", "unknown video type"])
def test_bad_run_outputs_are_refused_before_any_work(clip, tmp_path, case):
    source = tmp_path / "v.mp4"
    source.write_bytes(clip.read_bytes())
    before = digest(source)
    args = {
        "output is the source": ["--output", source],
        "output and events the same": ["--output", tmp_path / "o.mp4", "--events", tmp_path / "o.mp4"],
        "events is the source": ["--events", tmp_path / "." / "v.mp4"],
        "output is a hard link to the source": ["--output", tmp_path / "link.mp4"],
        "output is a folder": ["--output", tmp_path],
        "events under /proc": ["--events", "/proc/livemask-test.jsonl"],
        "output under a file": ["--output", source / "o.mp4"],
        "unknown video type": ["--output", tmp_path / "o.txt"],
    }[case]
    if case == "output is a hard link to the source":
        (tmp_path / "link.mp4").hardlink_to(source)
    expected = {
        "output is the source": "is the input", "output and events the same": "they must differ",
        "events is the source": "is the input", "output is a hard link to the source": "is the input",
        "output is a folder": "is a folder", "events under /proc": "not a place for output files",
        "output under a file": "exists and is not a folder", "unknown video type": "unsupported video file type",
    }[case]
    proc = run_cli("--source", str(source), "--headless", *map(str, args), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert expected in only_error(proc)
    assert "livemask.apps.compose: source" not in proc.stderr  # before the source was opened and the models loaded
    assert digest(source) == before
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.txt").exists()


# -- cause 13 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_max_frames_below_one_is_a_command_line_error(clip, value):
    proc = run_cli("--source", str(clip), "--headless", "--max-frames", value, timeout=60)
    assert proc.returncode == 2
    assert "--max-frames" in only_error(proc, "livemask run: error: argument --max-frames")


def test_skipped_folder_images_are_in_the_summary(clip, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, frame in enumerate(read_video(clip)[:4]):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), frame)
    (folder / "01b.jpg").write_bytes(b"not an image at all")
    events = tmp_path / "e.jsonl"
    proc = run_cli("--source", str(folder), "--headless", "--events", str(events))
    assert proc.returncode == 0, proc.stderr
    lines, summary = read_events(events)
    assert len(lines) == 4 and summary["skipped"] == 1
    assert "'skipped': 1" in proc.stderr  # the summary log line too


# -- cause 2: write failures ----------------------------------------------------------------------------
def _file_size_limit():
    """In the child: no file may grow past 64 kB (EFBIG), like a full disk; SIGXFSZ ignored so writes fail."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_video_on_a_full_file_system_is_one_line_exit_2_and_never_claimed(clip, tmp_path):
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"  # the 60-frame video needs ~280 kB, the log ~14 kB
    proc = subprocess.run(cli("--source", str(clip), "--headless", "--output", str(out), "--events", str(events)),
                          capture_output=True, text=True, timeout=240, preexec_fn=_file_size_limit)
    assert proc.returncode == 2, proc.stderr
    line = only_error(proc)
    assert f"cannot write {out} (File too large: 0 of 60 frames readable; removed)" in line
    assert "wrote 60 frames" not in proc.stderr and "frames to" not in proc.stderr
    assert not out.exists()  # no unplayable file that looks like a recording
    lines, summary = read_events(events)
    assert len(lines) == 60 and summary["ended"] == "error" and "cannot write" in summary["error"]
    assert summary["sinks"]["video"]["written"] == 0 and "File too large" in summary["sinks"]["video"]["error"]
    assert "'video': {'written': 0" in proc.stderr  # the summary log line says the same


def test_event_log_write_errors_are_output_errors(tmp_path):
    log = EventLog("/dev/full", flush_s=0.0)
    log.open()
    with pytest.raises(OutputError, match=r"^cannot write /dev/full \(No space left on device\)$"):
        log.close({"frames_written": 1})


# -- cause 8: signals -----------------------------------------------------------------------------------
def wait_for_lines(path, n: int, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} event lines within {timeout} s")


@pytest.mark.parametrize("signals", [[signal.SIGHUP], [signal.SIGINT, signal.SIGINT], [signal.SIGHUP, signal.SIGTERM]],
                         ids=["SIGHUP", "two-SIGINT-20ms", "SIGHUP-then-SIGTERM"])
def test_signals_during_a_realtime_run_finish_video_and_event_log(tmp_path, signals):
    # large frames: finishing the video (encoding what is queued, reading it back) takes long enough for the
    # second signal to arrive while the outputs are being finished
    long_clip = write_clip(tmp_path / "long.mp4", 500, fps=25.0, size=(1280, 720))
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    proc = subprocess.Popen(cli("--source", str(long_clip), "--headless", "--realtime", "--output", str(out),
                                "--events", str(events)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(events, 40, proc)
        for i, sig in enumerate(signals):
            if i:
                time.sleep(0.02)
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signals[0], stderr  # SIGHUP: 129, SIGINT: 130
    assert "Traceback" not in stderr and "error:" not in stderr
    lines, summary = read_events(events)
    assert summary is not None and summary["ended"] == signals[0].name
    frames = read_video(out)  # playable: the index was written
    assert len(frames) == len(lines) == summary["frames_written"] >= 40
    assert [read_code(f) for f in frames] == [x["frame_id"] for x in lines]
    assert f"stopped by {signals[0].name}; outputs are complete" in stderr


# -- the summary's error text is redacted ---------------------------------------------------------------
class LeakySink(BaseSink):
    name = "webhook"

    def write(self, result):
        if result.frame.frame_id == 3:
            raise LivemaskError("cannot post to https://bob:hunter2@hooks.example/x?token=abc123&x=1\nretry later")


def test_the_summary_error_never_holds_a_secret(clip, tmp_path, detector, classifier):
    events = tmp_path / "e.jsonl"
    capture = Capture(FileSource(clip), queue_size=4, stop_event=threading.Event())
    capture.open()
    engine = Engine(capture, FrameProcessor(detector, classifier, Tracker(), 2), [EventLog(events), LeakySink()])
    with pytest.raises(OutputError):
        engine.run()
    text = events.read_text()
    assert "hunter2" not in text and "abc123" not in text and "bob" not in text
    _lines, summary = read_events(events)
    assert summary["error"] == ("output 'webhook' failed: cannot post to https://***@hooks.example/x?token=***&x=1"
                                " | retry later")
    assert summary["sinks"]["webhook"]["error"] == summary["error"]


@pytest.mark.parametrize("delay", [0.3, 1.0, 3.0])
def test_ctrl_c_while_run_is_starting_is_130_without_a_traceback(clip, tmp_path, delay):
    """Before the engine loop (imports, source, models): one line or the stop summary, exit 130, no traceback."""
    events = tmp_path / "e.jsonl"
    proc = subprocess.Popen(cli("--source", str(clip), "--headless", "--realtime", "--events", str(events)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "error:" not in stderr
    if events.exists():  # stopped once the outputs were open: they are complete
        _lines, summary = read_events(events)
        assert summary is not None and summary["ended"] == "SIGINT"
    else:
        assert stderr.strip().splitlines()[-1] == "livemask: interrupted"

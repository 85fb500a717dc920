"""``livemask run`` end to end in a subprocess: headless files, bad inputs, signals, a real MJPEG stream."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
from livehelpers import MjpegServer, cli, read_code, read_events, read_video, run_cli, video_info, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 60, fps=25.0)


def one_line_error(proc, pattern: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("livemask: error:")]
    assert len(errors) == 1, proc.stderr
    assert pattern in errors[0], errors[0]
    return errors[0]


def test_headless_file_writes_every_frame_in_order(clip, tmp_path):
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    proc = run_cli("--source", str(clip), "--headless", "--output", str(out), "--events", str(events))
    assert proc.returncode == 0, proc.stderr
    assert video_info(out) == (320, 240, pytest.approx(25.0))  # the source's size and fps
    frames = read_video(out)
    assert [read_code(f) for f in frames] == list(range(60))  # one output frame per input frame, in order
    lines, summary = read_events(events)
    assert [x["frame_id"] for x in lines] == list(range(60))
    assert all(len(x["faces"]) == 1 for x in lines)
    face = lines[10]["faces"][0]
    # the one face record (livemask.core.records), with the track id
    assert set(face) == {"box", "score", "label", "probability", "probabilities", "track_id"} and len(face["box"]) == 4
    assert face["label"] in face["probabilities"] and face["probability"] == max(face["probabilities"].values())
    assert 0.4 <= face["score"] <= 1.0 and 0.5 <= face["probability"] <= 1.0
    assert face["track_id"] == 1
    assert lines[25]["position_s"] == pytest.approx(1.0, abs=1e-3)
    assert summary["frames_read"] == summary["frames_written"] == 60 and summary["dropped"] == 0
    assert summary["ended"] == "end of source" and summary["error"] is None
    assert sum(summary["faces"].values()) == 60 and summary["tracks"] == 1
    assert summary["sinks"]["video"] == summary["sinks"]["events"] == {"written": 60, "dropped": 0, "error": None}
    assert summary["detector"]["name"] == "centerface" and summary["detector"]["precision"] == "int8"  # the default


def test_int8_detector_runs_the_whole_clip_and_the_summary_says_so(clip, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    events = tmp_path / "e.jsonl"
    proc = run_cli("--source", str(clip), "--headless", "--events", str(events), "--set", "detector.precision=int8")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr  # the quantiser's advice is not printed
    lines, summary = read_events(events)
    assert [x["frame_id"] for x in lines] == list(range(60)) and all(len(x["faces"]) == 1 for x in lines)
    assert summary["detector"]["precision"] == "int8" and summary["detector"]["runtime"] == "onnxruntime"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_an_output_that_fails_ends_the_run_with_one_line_and_the_others_finished(clip, tmp_path):
    out = tmp_path / "o.mp4"
    proc = run_cli("--source", str(clip), "--headless", "--output", str(out), "--events", "/dev/full")
    assert proc.returncode == 2  # an output that fails is exit 2 (docs/RELIABILITY.md)
    line = one_line_error(proc, "output 'events' failed: ")
    assert line == "livemask: error: output 'events' failed: cannot write /dev/full (No space left on device)"
    frames = read_video(out)  # the video was finished and closed: playable, in order
    assert len(frames) >= 1 and [read_code(f) for f in frames] == list(range(len(frames)))


def test_max_frames_and_an_image_folder(clip, tmp_path):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, frame in enumerate(read_video(clip)[:6]):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), frame)
    events = tmp_path / "e.jsonl"
    proc = run_cli("--source", str(folder), "--headless", "--events", str(events), "--max-frames", "4")
    assert proc.returncode == 0, proc.stderr
    lines, summary = read_events(events)
    assert [x["frame_id"] for x in lines] == [0, 1, 2, 3] and summary["frames_written"] == 4


def test_truncated_video_is_one_line_error_and_a_playable_partial_output(tmp_path):
    whole = write_clip(tmp_path / "whole.avi", 60)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    proc = run_cli("--source", str(cut), "--headless", "--output", str(out), "--events", str(events))
    assert proc.returncode == 2
    one_line_error(proc, "truncated or corrupt")
    frames = read_video(out)
    lines, summary = read_events(events)
    assert 10 < len(frames) < 60 and len(frames) == len(lines)
    # in order; the last frame may be the half-decoded one where the file was cut
    assert [read_code(f) for f in frames[:-1]] == list(range(len(frames) - 1))
    assert summary["ended"] == "error" and "truncated" in summary["error"]


def test_missing_camera_exits_2_naming_the_index(tmp_path):
    proc = run_cli("--source", "9", "--headless", "--events", str(tmp_path / "e.jsonl"), timeout=60)
    assert proc.returncode == 2
    one_line_error(proc, "cannot open camera 9")


def test_unreachable_url_exits_2_after_the_configured_tries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("--source", f"http://127.0.0.1:{port}/live.mjpg", "--headless", "--set",
                   "source.reconnect_tries=2", "--set", "source.reconnect_delay_s=0.1", timeout=60)
    assert proc.returncode == 2
    one_line_error(proc, "cannot open stream after 3 tries")
    assert proc.stderr.count("reconnecting in") == 2  # every try is logged


def test_missing_file_and_bad_flags(tmp_path):
    proc = run_cli("--source", str(tmp_path / "nope.mp4"), "--headless", timeout=60)
    assert proc.returncode == 2
    one_line_error(proc, "no such video file")
    proc = run_cli("--source", str(tmp_path), "--headless", timeout=60)
    assert proc.returncode == 2
    one_line_error(proc, "no images")


def test_window_mode_without_a_display_is_a_one_line_error(clip):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = run_cli("--source", str(clip), env=env, timeout=60)
    assert proc.returncode == 2
    one_line_error(proc, "use --headless")


def wait_for_lines(path, n: int, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {n} event lines within {timeout} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_headless_run_leaves_complete_outputs(sig, tmp_path):
    long_clip = write_clip(tmp_path / "long.mp4", 1500)
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    proc = subprocess.Popen(cli("--source", str(long_clip), "--headless", "--output", str(out), "--events",
                                str(events)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(events, 5, proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    lines, summary = read_events(events)
    frames = read_video(out)  # playable: the index was written on the way out
    assert summary is not None and summary["ended"] == sig.name
    assert 5 <= len(lines) < 1500
    assert len(frames) == len(lines) == summary["frames_written"]
    assert [read_code(f) for f in frames] == list(range(len(frames)))


def test_mjpeg_stream_reconnects_and_counts_the_gap(tmp_path):
    server = MjpegServer(fps=30).start()
    events = tmp_path / "e.jsonl"
    proc = subprocess.Popen(cli("--source", server.url, "--headless", "--events", str(events), "--max-frames", "150",
                                "--set", "source.reconnect_delay_s=0.2", "--set", "source.reconnect_tries=10",
                                "--set", "source.timeout_s=2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(events, 20, proc)
        server.stop()
        time.sleep(1.5)
        server.start()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        server.stop()
    assert proc.returncode == 0, stderr
    assert "reconnecting in" in stderr and "reconnected after" in stderr
    lines, summary = read_events(events)
    assert summary["reconnects"] >= 1 and summary["gap_s"] >= 1.0
    assert summary["frames_read"] == 150
    assert summary["frames_written"] + summary["dropped"] == 150
    ids = [x["frame_id"] for x in lines]
    assert ids == sorted(ids) and ids[-1] >= 140
    assert sum(len(x["faces"]) for x in lines) >= 0.9 * len(lines)  # frames from after the gap have faces too


@pytest.mark.data
def test_done_when_sample_video(data_dir, tmp_path):
    video = data_dir / "videos" / "several_unmasked_faces.mp4"
    out, events = tmp_path / "o.mp4", tmp_path / "e.jsonl"
    proc = run_cli("--source", str(video), "--headless", "--output", str(out), "--events", str(events))
    assert proc.returncode == 0, proc.stderr
    lines, summary = read_events(events)
    assert video_info(out)[:2] == (640, 360)
    assert len(read_video(out)) == len(lines) == 275 == summary["frames_written"]
    assert sum(len(x["faces"]) for x in lines) > 275  # several faces per frame, each with a label
    assert all(f["label"] in ("mask", "no_mask") for x in lines for f in x["faces"])

"""Issue 26: ``livemask run`` with several cameras in one process: real files, a real RTSP server, real models."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from livehelpers import cli, read_events, read_video, run_cli, write_clip
from rtsphelpers import make_clip, require_rtsp_server, rtsp_server, stop, url_port


def site_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def states(path: Path, camera: str) -> list[str]:
    return [x["state"] for x in site_lines(path) if x.get("camera") == camera and "state" in x]


def wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def check_camera_log(path: Path, camera: str) -> tuple[list[dict], dict]:
    """Every line of a camera's event log names that camera; the log ends with its summary."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert lines and all(x.get("camera") == camera for x in lines), path
    frames, summary = read_events(path)
    assert summary is not None, f"{path}: no summary line"
    return frames, summary


def test_two_files_and_a_missing_camera_exit_4_with_complete_outputs(tmp_path):
    a = write_clip(tmp_path / "a.mp4", 12, fps=10)
    b = write_clip(tmp_path / "b.mp4", 9, fps=10)
    out = tmp_path / "out"
    proc = run_cli("--headless", "--camera", f"front={a}", "--camera", f"back={b}", "--camera",
                   f"gone={tmp_path / 'none.mp4'}", "--output-dir", str(out), "--record",
                   "--set", "pipeline.detect_every=1")
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == \
        "livemask: error: 1 of 3 cameras failed: gone (the others' outputs are complete)"
    assert "Traceback" not in proc.stderr
    for name, count in (("front", 12), ("back", 9)):
        frames, summary = check_camera_log(out / f"{name}.jsonl", name)
        assert [f["frame_id"] for f in frames] == list(range(count))
        assert summary["ended"] == "end of source" and summary["frames_processed"] == count
        assert any(f["faces"] for f in frames)  # the astronaut's face, found by the real detector
        assert len(read_video(out / f"{name}.mp4")) == count
    assert not (out / "gone.jsonl").exists() and not (out / "gone.mp4").exists()
    site = site_lines(out / "site.jsonl")
    assert states(out / "site.jsonl", "gone") == ["connecting", f"failed: {tmp_path / 'none.mp4'}: no such video file"]
    assert states(out / "site.jsonl", "front")[-1] == "ended"
    summary = site[-1]["summary"]
    assert summary["failed"] == ["gone"] and summary["cameras"]["front"]["summary"]["frames_processed"] == 12


@pytest.mark.slow
def test_three_cameras_one_rtsp_server_down_20s_reconnects_and_the_others_lose_nothing(tmp_path):
    require_rtsp_server()
    fps, seconds = 8, 60
    source = write_clip(tmp_path / "src.mp4", 40, fps=fps)
    clip = make_clip(source, tmp_path / "clip.mp4", seconds, fps=fps, size=(320, 240))
    out = tmp_path / "out"
    with rtsp_server(clip) as (north_server, north_url), rtsp_server(clip) as (_south, south_url):
        port = url_port(north_url)
        proc = subprocess.Popen(cli("--headless", "--camera", f"north={north_url}", "--camera", f"south={south_url}",
                                    "--camera", f"lobby={clip}", "--realtime", "--output-dir", str(out),
                                    "--set", "source.reconnect_tries=60", "--set", "source.reconnect_max_delay_s=1",
                                    "--set", "source.timeout_s=3"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            site = out / "site.jsonl"
            wait_for(lambda: all("live" in states(site, c) for c in ("north", "south", "lobby")), 180, proc,
                     "every camera live")
            time.sleep(3)
            stop(north_server)
            killed, killed_wall = time.monotonic(), time.time()
            wait_for(lambda: any(s.startswith("reconnecting") for s in states(site, "north")), 30, proc,
                     "north reconnecting")
            time.sleep(max(20 - (time.monotonic() - killed), 0))
            with rtsp_server(clip, port):
                outage = (killed_wall, time.time())
                wait_for(lambda: states(site, "north")[-1] == "live", 40, proc, "north live again")
                time.sleep(3)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 128 + signal.SIGTERM, proc.stderr.read()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    north_states = states(out / "site.jsonl", "north")
    assert north_states[:2] == ["connecting", "live"]
    assert any(s.startswith("reconnecting ") and s.endswith("/60") for s in north_states)
    assert north_states[-2:] == ["live", "ended"]
    _frames, north = check_camera_log(out / "north.jsonl", "north")
    assert north["reconnects"] >= 1 and north["gap_s"] >= 15
    for name in ("south", "lobby"):
        frames, summary = check_camera_log(out / f"{name}.jsonl", name)
        assert summary["reconnects"] == 0 and summary["ended"] == "SIGTERM"
        ids = [f["frame_id"] for f in frames]
        assert summary["frames_processed"] == len(ids) and len(ids) >= fps * 25  # it ran through the whole outage
        # nothing held it back while north was down and reconnecting: no frame lost in that window (drops in
        # the first seconds, while the models warm up and FFmpeg hands over what it buffered, are not the
        # outage's: they are counted in the summary, docs/cameras.md). One frame of the ~160 may be lost to
        # a scheduling hiccup on a machine shared with other jobs (seen once in four runs at load 14 on 2 cores)
        during = [f["frame_id"] for f in frames if outage[0] <= f["timestamp"] <= outage[1]]
        lost = during[-1] - during[0] + 1 - len(during)
        assert lost <= 1, (name, lost)
        assert len(during) >= fps * (outage[1] - outage[0]) - 3, (name, len(during), outage)

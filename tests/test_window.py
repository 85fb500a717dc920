"""Window mode under a real (private) Xvfb server, driven with xdotool."""

from __future__ import annotations

import shutil
import subprocess
import time

import cv2
import pytest
from livehelpers import cli, find_window, send_keys, write_clip

pytestmark = pytest.mark.display


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "long.mp4", 1800)  # a minute at --realtime


@pytest.fixture(scope="module")
def xdotool(xvfb):
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed (apt-get install xdotool); .ci/run installs it")
    return xvfb


def start(env, tmp_path, clip, *extra):
    return subprocess.Popen(cli("--source", str(clip), "--realtime", "--set", f"run.snapshot_dir={tmp_path / 'snaps'}",
                                *extra), env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_window_opens_snapshot_and_q_quits_within_2s(xdotool, tmp_path, long_clip):
    proc = start(xdotool, tmp_path, long_clip)
    try:
        find_window(xdotool, proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the window takes the frame's size once frames are shown
            geometry = subprocess.run(["xdotool", "getwindowgeometry", find_window(xdotool, proc)], env=xdotool,
                                      capture_output=True, text=True).stdout
            if "320x240" in geometry:
                break
            time.sleep(0.2)
        assert "320x240" in geometry, geometry
        send_keys(xdotool, proc, "livemask", "s")
        deadline = time.monotonic() + 10
        # the snapshot's own name: "*.png" also matches the hidden ".livemask-...partial.png" it is written
        # to first (a CI run read that one half-written)
        while not list((tmp_path / "snaps").glob("livemask-*.png")) and time.monotonic() < deadline:
            time.sleep(0.1)
        snaps = list((tmp_path / "snaps").glob("livemask-*.png"))
        assert len(snaps) == 1
        snap = cv2.imread(str(snaps[0]))
        assert snap.shape == (240, 320, 3)
        send_keys(xdotool, proc, "livemask", "q")
        started = time.monotonic()
        proc.wait(timeout=2)
        assert time.monotonic() - started < 2.0
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def geometry_of(env, proc) -> str:
    return subprocess.run(["xdotool", "getwindowgeometry", find_window(env, proc)], env=env, capture_output=True,
                          text=True).stdout


def test_space_pauses_and_explain_key_shows_the_panel_in_the_window(xdotool, tmp_path, long_clip):
    events = tmp_path / "e.jsonl"
    proc = start(xdotool, tmp_path, long_clip, "--events", str(events))
    try:
        find_window(xdotool, proc)
        time.sleep(1.5)
        send_keys(xdotool, proc, "livemask", "space")
        time.sleep(1.5)  # anything in flight is written and flushed by now... or held while paused
        paused_at = lines(events)
        time.sleep(1.5)
        assert lines(events) == paused_at  # nothing new while paused
        send_keys(xdotool, proc, "livemask", "space")
        deadline = time.monotonic() + 5
        while lines(events) <= paused_at and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lines(events) > paused_at  # resumed
        send_keys(xdotool, proc, "livemask", "g")  # Grad-CAM of the frame on screen, off the display thread
        # the panel takes the live view's place in the one window; a 320x240 frame gets MIN_PANEL and the footer
        from livemask.sinks.window import FOOTER_LINES, LINE_H, MIN_PANEL

        panel_size = f"{MIN_PANEL[0]}x{MIN_PANEL[1] + FOOTER_LINES * LINE_H}"
        deadline = time.monotonic() + 60
        while panel_size not in geometry_of(xdotool, proc) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert panel_size in geometry_of(xdotool, proc)
        send_keys(xdotool, proc, "livemask", "Escape")  # the live view again, at the frame's size
        deadline = time.monotonic() + 20
        while "320x240" not in geometry_of(xdotool, proc) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "320x240" in geometry_of(xdotool, proc)
        assert proc.poll() is None
        # Esc at every moment of an explanation's life: tests/test_window_lifecycle.py
        send_keys(xdotool, proc, "livemask", "q")
        proc.wait(timeout=10)
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr

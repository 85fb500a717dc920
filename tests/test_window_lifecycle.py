"""The live window's life under a private Xvfb server: Esc at every moment of an explanation's life,
the panel in place of the live view (the window takes its size, paged), and the ways a run ends: q, the window closed by
the window manager (``xdotool windowclose``), the X connection killed (``xdotool windowkill``), and an
X server that refuses the connection.

The Esc cases drive a real :class:`LiveWindow` with a real explanation session in a child process;
keys are real X key events (xdotool) read by the window's own ``poll``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from livehelpers import MODEL, ROOT, cli, read_events, read_video, send_keys, window_ids, write_clip

pytestmark = pytest.mark.display

LIVE = "livemask-esc-test"

ESC_SCRIPT = r"""
import json, os, subprocess, sys, time
from pathlib import Path
import cv2, numpy as np, skimage.data
from face_detector import CenterFaceDetector
from livemask.apps.compose import apply_overrides, explain_session_factory, load_config
from livemask.core.types import Frame, FrameResult
from livemask.models.backends.keras_model import MaskClassifier
from livemask.sinks.window import ESC, LiveWindow

model, out_dir, rounds, live_name = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
config = apply_overrides(load_config(), {"classifier.model_path": model})
classifier = MaskClassifier(model)
detector = CenterFaceDetector()
astronaut = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)

def frame_result(image, frame_id):
    detections = detector.detect(image)
    return FrameResult(Frame(frame_id, time.monotonic(), image, "test"), detections,
                       classifier.classify(image, detections))

one = frame_result(astronaut, 7)
window = LiveWindow(live_name, out_dir, explain=explain_session_factory(config, classifier))
window.open()
session = window.session
report = {"faces": len(one.detections), "quits": [], "cases": [], "reopened": 0, "esc_states": []}
handle = window.handle_key

def recording_handle(key):
    report.setdefault("keys", []).append(key)
    if key == ESC:
        report["esc_states"].append(session.state)
    action = handle(key)
    if action == "quit":
        report["quits"].append(len(report["esc_states"]))
    return action

window.handle_key = recording_handle
current = [one]

def pump(until, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        window.write(current[0])
        window.poll(10)
        if until():
            return True
    return False

def xdo(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=20)

def window_ids(name):
    return xdo("search", "--all", "--pid", str(os.getpid()), "--name", f"^{name}$").stdout.split()

def send(name):
    # Qt may replace a window's X id: look it up at every try, send to the newest window of that name
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if any(xdo("key", "--window", wid, name).returncode == 0 for wid in reversed(window_ids(live_name))):
            return
        pump(lambda: False, 0.2)
    raise SystemExit(f"cannot send {name}")

def keys(*names):
    # one key at a time, each read before the next is sent (OpenCV keeps only the last key pressed
    # during one waitKey)
    for name in names:
        n = len(report.setdefault("keys", []))
        send(name)
        if not pump(lambda: len(report["keys"]) > n, 10):
            raise SystemExit(f"{name} was not read")

def case(name, keys_first, show_first=False):
    # keys_first (ending with Escape), or: g, the panel shown, then Escape; then the cancelled work
    # finishes and must stay dropped
    n = len(report["esc_states"])
    if show_first:
        keys("g")
        assert pump(lambda: session.is_open, 60), f"{name}: the panel never opened"
        keys("Escape")
    else:
        keys(*keys_first)
    assert pump(lambda: len(report["esc_states"]) > n, 20), f"{name}: Esc never arrived"
    state = report["esc_states"][-1]
    idle_at_once = session.state == "idle"
    pump(lambda: not session._in_flight, 60)  # the cancelled work finishes...
    pump(lambda: False, 0.15)
    reopened = session.is_open or window.panel is not None  # ...and its result is dropped
    report["reopened"] += reopened
    report["cases"].append({"case": name, "state_at_esc": state, "idle_at_once": idle_at_once,
                            "reopened": reopened})

pump(lambda: bool(xdo("search", "--onlyvisible", "--name", f"^{live_name}$").stdout.split()), 30)
pump(lambda: False, 0.3)
# before compute: the explainers are still warming up when the request and Esc come
report["ready_before"] = session.ready.is_set()
case("before compute", ("g", "Escape"))
session.ready.wait(120)
for _ in range(rounds):
    case("computing", ("e", "Escape"))  # Esc is read while the request (both methods) computes
    case("queued", ("e", "g", "Escape"))
    case("shown", None, show_first=True)

# the panel: in place of the live view (the window takes its size: no toolbar or status bar), pages of
# faces that fit its space
tile = cv2.resize(astronaut, (256, 256))
mosaic = np.vstack([np.hstack([tile] * 3)] * 3)
current[0] = many = frame_result(mosaic, 21)
report["many_faces"] = len(many.detections)
pump(lambda: False, 0.5)
keys("g")
assert pump(lambda: session.is_open, 120), "the panel of many faces never opened"
pump(lambda: False, 0.3)
report["window_rect"] = list(cv2.getWindowImageRect(live_name))
report["panel_geometry"] = xdo("getwindowgeometry", window_ids(live_name)[-1]).stdout
report["screen_shape"] = list(window.panel_screen(window.panel).shape[:2])
report["others"] = window_ids(live_name + ".+")
report["pages"] = session.pages
report["status_shown"] = session.status
saved = window.snapshot()
report["snapshots"] = sorted(p.name for p in out_dir.glob("*.png"))
first_page = cv2.imread(str(next(out_dir.glob("*-explain.png"))))
report["page_size"] = list(first_page.shape[:2])
keys("bracketright")
report["paged"] = pump(lambda: session._page == 1, 10)
keys("bracketleft")
report["paged_back"] = pump(lambda: session._page == 0, 10)
# Esc closes the panel, and only a second Esc (nothing asked for since) quits
keys("Escape")
pump(lambda: not session.is_open, 10)
report["quit_before_last"] = list(report["quits"])
keys("Escape")
pump(lambda: bool(report["quits"]), 10)
report["quits_end"] = list(report["quits"])
report["status_after"] = session.status
session.shutdown()
print(json.dumps(report))
"""


def _esc_report(xvfb, tmp_path, rounds: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", ESC_SCRIPT, str(MODEL), str(tmp_path), str(rounds), LIVE],
                          env=xvfb, capture_output=True, text=True, timeout=300 + 20 * rounds, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_esc_cases(report: dict, rounds: int) -> None:
    assert report["faces"] == 1
    cases = report["cases"]
    assert len(cases) == 1 + 3 * rounds
    # Esc at every moment of an explanation's life closes or cancels it and never quits...
    states = {c["case"]: [] for c in cases}
    for c in cases:
        states[c["case"]].append(c["state_at_esc"])
    # the first Esc comes right after the first g, usually while the explainers still warm up (on a fast
    # machine the warm-up may already be over: then it is one more "computing" case)
    assert states["before compute"] == ["computing"]
    assert set(states["shown"]) == {"shown"}
    # the keys are real X events: a request can finish before the next key is read, so "computing" may
    # be caught as "shown" and "queued" as "computing"; each must be caught in most rounds
    assert set(states["computing"]) <= {"computing", "shown"}
    assert states["computing"].count("computing") >= rounds / 2, states["computing"]
    assert set(states["queued"]) <= {"queued", "computing", "shown"}
    assert states["queued"].count("queued") >= rounds / 2, states["queued"]
    assert all(c["idle_at_once"] for c in cases), [c for c in cases if not c["idle_at_once"]]
    # ...and what was cancelled never opens the panel again
    assert report["reopened"] == 0, [c for c in cases if c["reopened"]]
    assert report["quit_before_last"] == []
    # the last Esc, with nothing asked for since the one before, quits
    assert report["quits_end"] == [len(report["esc_states"])]
    assert report["status_after"] is None  # no stale "computing..." or "(Esc closes)" line


def test_esc_at_every_moment_of_an_explanation_and_the_panel(xvfb, tmp_path):
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed (apt-get install xdotool); .ci/run installs it")
    report = _esc_report(xvfb, tmp_path, 2)
    _check_esc_cases(report, 2)
    # the panel: in the live window, which is exactly the panel's screen (no toolbar above it, no status bar
    # below it), inside the 1280x800 screen; no second window
    assert report["many_faces"] >= 7, report["many_faces"]
    _x, _y, ww, wh = report["window_rect"]
    assert [wh, ww] == report["screen_shape"] and ww <= 1280 and wh <= 800, report
    size = re.search(r"Geometry: (\d+)x(\d+)", report["panel_geometry"])
    assert size and [int(size.group(2)), int(size.group(1))] == report["screen_shape"], report["panel_geometry"]
    assert report["page_size"][0] <= wh and report["page_size"][1] <= ww
    assert report["others"] == []
    assert report["pages"] >= 2 and report["paged"] and report["paged_back"]
    assert f"page 1/{report['pages']}" in report["status_shown"]
    # one name scheme and one frame id for the frame and its panel
    frame_snap = [n for n in report["snapshots"] if not n.endswith("-explain.png")]
    panel_snap = [n for n in report["snapshots"] if n.endswith("-explain.png")]
    assert len(frame_snap) == len(panel_snap) == 1
    assert panel_snap[0] == frame_snap[0].replace(".png", "-explain.png")
    assert frame_snap[0].startswith("livemask-") and "-f000021" in frame_snap[0]


@pytest.mark.slow
def test_esc_cases_twenty_times_never_quit(xvfb, tmp_path):
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed (apt-get install xdotool); .ci/run installs it")
    _check_esc_cases(_esc_report(xvfb, tmp_path, 20), 20)


# -- how a run ends -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "long.mp4", 1800)  # a minute at --realtime


def _start(env, tmp_path, clip):
    return subprocess.Popen(cli("--source", str(clip), "--realtime", "--output", str(tmp_path / "out.mp4"),
                                "--events", str(tmp_path / "events.jsonl"),
                                "--set", f"run.snapshot_dir={tmp_path / 'snaps'}"),
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _live_window(env, proc, timeout: float = 120) -> str:
    """The live window's X id, once it shows frames (the clip is 320x240)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"livemask exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        for wid in window_ids(env, "livemask", proc.pid):
            geometry = subprocess.run(["xdotool", "getwindowgeometry", wid], env=env, capture_output=True,
                                      text=True).stdout
            if "320x240" in geometry:
                return wid
        time.sleep(0.2)
    raise AssertionError("the live window never showed a frame")


def _finished(proc, tmp_path, timeout: float = 60) -> tuple[int, str, dict]:
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.communicate()[1]
    assert "Traceback" not in stderr, stderr[-3000:]
    frames = read_video(tmp_path / "out.mp4")  # playable: OpenCV reads it back
    assert len(frames) > 10, len(frames)
    records, summary = read_events(tmp_path / "events.jsonl")
    assert summary is not None, "no summary line in the event log"
    assert summary["sinks"]["video"]["written"] == len(frames)
    assert len(records) == summary["frames_written"] > 0
    return code, stderr, summary


@pytest.mark.slow
def test_window_manager_close_ends_the_run_cleanly(xvfb, tmp_path, long_clip):
    proc = _start(xvfb, tmp_path, long_clip)
    wid = _live_window(xvfb, proc)
    time.sleep(1.0)
    subprocess.run(["xdotool", "windowclose", wid], env=xvfb, check=True, timeout=10)
    code, stderr, summary = _finished(proc, tmp_path)
    assert code == 0, stderr[-3000:]
    assert summary["ended"] == "window closed", summary
    assert "window closed" in stderr


@pytest.mark.slow
def test_killed_x_connection_finishes_outputs_like_sigterm(xvfb, tmp_path, long_clip):
    proc = _start(xvfb, tmp_path, long_clip)
    wid = _live_window(xvfb, proc)
    time.sleep(1.0)
    subprocess.run(["xdotool", "windowkill", wid], env=xvfb, check=True, timeout=10)
    code, stderr, summary = _finished(proc, tmp_path)
    assert code == 3, stderr[-3000:]
    assert summary["ended"] == "display lost", summary
    errors = [line for line in stderr.splitlines() if line.startswith("livemask: error:")]
    assert errors == ["livemask: error: the window's X connection was lost; the outputs are complete"], stderr


def test_q_ends_the_run_with_status_0(xvfb, tmp_path, long_clip):
    proc = _start(xvfb, tmp_path, long_clip)
    _live_window(xvfb, proc)
    time.sleep(0.5)
    end = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < end:
        send_keys(xvfb, proc, "livemask", "q")  # the window as it is now (Qt may replace its X id)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    code, stderr, summary = _finished(proc, tmp_path)
    assert code == 0, stderr[-3000:]
    assert summary["ended"] == "user", summary


def test_an_x_server_that_refuses_is_one_line_and_exit_2(tmp_path, long_clip):
    """A display whose server is not there (nothing listens on its TCP port, or its socket file is stale)
    is one line and exit 2 before the models load, never Qt's abort (134)."""
    with socket.socket() as probe:  # a free local port: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DISPLAY": f"127.0.0.1:{port - 6000}"} if port > 6000 else None
    if env is None:
        pytest.skip("no free TCP port above 6000")
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run(cli("--source", str(long_clip), "--max-frames", "5"), env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("livemask: error: cannot connect to the X server"), lines
    assert "use --headless" in lines[0]
    assert not Path(tmp_path / "snapshots").exists()

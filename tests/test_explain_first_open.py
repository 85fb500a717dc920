"""The explanation panel shows in the live window at every open, with one camera: g (a real X key event)
replaces the live view with the panel, and the window's own pixels under Xvfb, read half a second after
the panel is ready, are the panel the session rendered (a blank, grey or stale window fails); Esc brings
the live view back, read the same way. Eight opens per run, as docs/known-issues.md counts them; no
second window is ever created.

The script is also the measurement of docs/known-issues.md (run it many times on a loaded machine):
``python tests/test_explain_first_open.py MODEL OUT_DIR ROUNDS`` under ``DISPLAY`` prints one JSON list."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mask_classifier.keras"
ROUNDS = 8

pytestmark = pytest.mark.display

SCRIPT = r"""
import json, os, subprocess, sys, time
import cv2, numpy as np, skimage.data
from face_detector import CenterFaceDetector
from livemask.models.backends.keras_model import MaskClassifier
from livemask.apps.compose import apply_overrides, explain_session_factory, load_config
from livemask.core.types import Frame, FrameResult
from livemask.sinks.window import LiveWindow, panel_origin

model, out_dir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = apply_overrides(load_config(), {"classifier.model_path": model})
classifier = MaskClassifier(model)
image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
detections = CenterFaceDetector().detect(image)
predictions = classifier.classify(image, detections)
frame_id = [7]

def fresh():  # a new result for every loop, as a live run writes them
    frame_id[0] += 1
    return FrameResult(Frame(frame_id[0], time.monotonic(), image, "test"), detections, predictions)

window = LiveWindow("livemask", out_dir, explain=explain_session_factory(config, classifier))
window.open()
session = window.session

def pump(until, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        window.write(fresh())
        if not window.poll(20):
            raise SystemExit("the live window ended")
        if until():
            return True
    return False

def xdo(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=30)

def ids(pattern):
    return xdo("search", "--all", "--pid", str(os.getpid()), "--name", pattern).stdout.split()

def key(name):  # a real key event to the live window (Qt may replace its X id: the newest, looked up each time)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if any(xdo("key", "--window", wid, name).returncode == 0 for wid in reversed(ids("^livemask$"))):
            return
        pump(lambda: False, 0.2)
    raise SystemExit(f"cannot send {name}")

def grab():
    found = ids("^livemask$")
    if not found:
        return None
    png = subprocess.run(["import", "-window", found[-1], "png:-"], capture_output=True, timeout=60).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if png else None

def far(shot, expected):  # the share of pixels clearly unlike the expected picture (None: another size)
    if shot is None or shot.shape != expected.shape:
        return None
    return float((np.abs(shot.astype(int) - expected.astype(int)).max(axis=2) > 40).mean())

assert pump(lambda: bool(ids("^livemask$")), 60), "the live window never appeared"
assert session.ready.wait(120)
start = time.monotonic()
pump(lambda: time.monotonic() - start > 1.0)
shot = grab()  # the live view before the first g: a live window never painted is another fault (known-issues)
first = far(shot, window.shown)
live = {"far": first, "std": None if shot is None else float(shot.std()), "ok": first is not None and first < 0.02}
out = []
for k in range(rounds):
    key("g")
    assert pump(lambda: session.state != "idle", 20), "g was not read"
    assert pump(lambda: window.panel is not None, 60), "the panel never came"
    ready = time.monotonic()
    pump(lambda: time.monotonic() - ready > 0.5)  # the live loop goes on behind the panel, as in a run
    shot, panel = grab(), window.panel
    expected = window.panel_screen(panel)
    x, y = panel_origin(panel.shape, (expected.shape[1], expected.shape[0]))
    h, w = panel.shape[:2]
    row = {"shape": None if shot is None else list(shot.shape), "expected": list(expected.shape),
           "panel_far": None, "std": None, "others": ids("^livemask.+")}
    if shot is not None and shot.shape == expected.shape:
        row["panel_far"] = far(shot[y:y + h, x:x + w], panel)
        row["std"] = float(shot.std())
    key("Escape")
    assert pump(lambda: session.state == "idle", 20), "Escape was not read"
    closed = time.monotonic()
    pump(lambda: time.monotonic() - closed > 0.5)
    shot = grab()
    row["live_far"] = far(shot, window.shown)  # the live view: the newest frame, as the window last showed it
    row["live_shape"] = None if shot is None else list(shot.shape)
    row["panel_ok"] = row["panel_far"] is not None and row["panel_far"] < 0.02 and row["std"] > 10
    row["live_ok"] = row["live_far"] is not None and row["live_far"] < 0.02
    out.append(row)
window.close()
print(json.dumps({"live_before": live, "rounds": out}))
"""


def run_script(env: dict, out_dir: Path, rounds: int = ROUNDS, model: Path = MODEL) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(model), str(out_dir), str(rounds)], env=env,
                          capture_output=True, text=True, timeout=120 + 30 * rounds, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_live_window_shows_the_panel_at_every_open_and_the_live_view_after_esc(xvfb, tmp_path):
    if shutil.which("xdotool") is None or shutil.which("import") is None:
        pytest.fail("xdotool and ImageMagick's import are needed (.ci/run installs them)")
    report = run_script(xvfb, tmp_path)
    assert report["live_before"]["ok"], report["live_before"]  # the live view, before the first g
    rounds = report["rounds"]
    assert len(rounds) == ROUNDS
    for k, r in enumerate(rounds):
        assert r["others"] == [], (k, r)  # no second window of the run
        assert r["shape"] == r["expected"], (k, r)  # the window took the panel's size (panel and footer)
        assert r["panel_ok"], (k, r)  # its pixels are the panel, not a blank or stale window
        assert r["live_ok"], (k, r)  # and after Esc the live view again


if __name__ == "__main__":  # the measurement: print the report of one run on $DISPLAY
    print(json.dumps(run_script(dict(__import__("os").environ), Path(sys.argv[2]), int(sys.argv[3]),
                                Path(sys.argv[1]))))

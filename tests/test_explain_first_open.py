"""The explanation window shows its panel at once, every time it opens: its pixels under Xvfb, read
within a second of opening, are the panel the session rendered (a blank or grey window fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mask_classifier.keras"

pytestmark = pytest.mark.display

SCRIPT = r"""
import json, subprocess, sys, time
import cv2, numpy as np, skimage.data
from face_detector import CenterFaceDetector
from livemask.models.backends.keras_model import MaskClassifier
from livemask.apps.compose import apply_overrides, explain_session_factory, load_config
from livemask.explain.frozen_frame import WINDOW
from livemask.core.types import Frame, FrameResult
from livemask.sinks.window import LiveWindow

model, out_dir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = apply_overrides(load_config(), {"classifier.model_path": model})
classifier = MaskClassifier(model)
image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
detections = CenterFaceDetector().detect(image)
result = FrameResult(Frame(7, time.monotonic(), image, "test"), detections, classifier.classify(image, detections))
window = LiveWindow("livemask", out_dir, explain=explain_session_factory(config, classifier))
window.open()
window.show(window.renderer.render(result), result)
session = window.session
assert session.ready.wait(120)

def pump(until, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not window.poll(20):
            raise SystemExit("the live window ended")
        if until():
            return True
    return False

def grab():
    search = ["xdotool", "search", "--name", "^" + WINDOW + "$"]
    ids = subprocess.run(search, capture_output=True, text=True).stdout.split()
    if not ids:
        return None
    png = subprocess.run(["import", "-window", ids[-1], "png:-"], capture_output=True, timeout=30).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if png else None

rounds_out = []
for k in range(rounds):
    session.request(result, "gradcam")
    assert pump(lambda: session.is_open)
    opened = time.monotonic()
    pump(lambda: time.monotonic() - opened > 0.5)  # the live loop goes on, as in a run
    shot = grab()
    expected = session._render(session._shown)
    if shot is None or shot.shape != expected.shape:
        rounds_out.append({"shape": None if shot is None else list(shot.shape), "expected": list(expected.shape)})
    else:
        diff = np.abs(shot.astype(int) - expected.astype(int)).max(axis=2)
        rounds_out.append({"far": float((diff > 40).mean()), "std": float(shot.std())})
    session.close()
    pump(lambda: time.monotonic() - opened > 1.0)
window.close()
print(json.dumps(rounds_out))
"""


def test_the_explanation_window_shows_its_panel_on_every_first_open(xvfb, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(MODEL), str(tmp_path), "4"], env=xvfb,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rounds) == 4
    for k, r in enumerate(rounds):
        assert "far" in r, (k, r)  # a window of the panel's size
        assert r["far"] < 0.02 and r["std"] > 10, (k, r)  # its pixels are the panel, not a blank window

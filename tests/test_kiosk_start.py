"""The kiosk's early start screen (``livemask.apps.kiosk_start``): which command lines open it before the
heavy imports, with which settings, and (under Xvfb) what is on the screen while nothing else is loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from livehelpers import find_window

from livemask.apps.kiosk_start import kiosk_settings
from livemask.sinks.kiosk import STARTING, KioskOptions, KioskRenderer

ROOT = Path(__file__).resolve().parent.parent


def test_only_a_kiosk_run_with_a_window_gets_the_early_screen(tmp_path):
    source = ["--source", "clip.mp4"]
    assert kiosk_settings(["run", "--kiosk", *source]) == ("livemask", KioskOptions(enabled=True))
    for argv in (["run", *source], ["run", "--kiosk", "--headless", *source], ["run", "--kiosk", "--help"],
                 ["run", "--kiosk", "--camera", "a=0"], ["serve", "--kiosk"], [],
                 ["run", "--kiosk", "--config", str(tmp_path / "missing.yaml"), *source],
                 ["run", "--kiosk", "--set", "run.headless=true", *source]):
        assert kiosk_settings(argv) is None, argv


def test_the_early_screen_uses_the_config_file_and_set_and_refuses_nothing_itself(tmp_path):
    """The kiosk and run sections of ``--config`` with ``--set`` on top; a value the kiosk refuses opens no
    early screen (the normal path says what is wrong, exit 2, before any window)."""
    config = tmp_path / "c.yaml"
    config.write_text("kiosk:\n  enabled: true\n  text_idle: Hello\nrun:\n  window_name: door\n")
    title, options = kiosk_settings(["run", "--config", str(config), "--set", "kiosk.fullscreen=false"])
    assert (title, options.text_idle, options.fullscreen, options.enabled) == ("door", "Hello", False, True)
    assert kiosk_settings(["run", "--kiosk", "--set", "kiosk.min_face_px=1"]) is None
    assert kiosk_settings(["run", "--kiosk", "--set", "kiosk.no_such_key=1"]) is None
    config.write_text("kiosk: [not, a, mapping]\n")
    assert kiosk_settings(["run", "--kiosk", "--config", str(config)]) is None


SCREEN_CHILD = textwrap.dedent("""
    import json, sys
    from livemask.apps import kiosk_start
    from livemask.sinks.kiosk import KioskOptions
    screen = kiosk_start.early_start_screen(["run", "--kiosk", "--source", "clip.mp4"], ("json",))
    heavy = sorted(m for m in ("livemask.apps.compose", "livemask.apps.run", "livemask.engine.engine",
                               "onnxruntime", "tensorflow") if m in sys.modules)
    print(json.dumps({"opened": screen is not None, "heavy": heavy}), flush=True)
    screen.wait_for(sys.stdin.readline)  # painted until the test has its screenshot
    same = kiosk_start.take("livemask", KioskOptions(enabled=True)) is screen
    again = kiosk_start.take("livemask", KioskOptions(enabled=True))
    print(json.dumps({"taken": same, "again": again is None}), flush=True)
""")


def differs(shot: np.ndarray) -> float:
    """The share of the screenshot's pixels far from the kiosk's start screen at the screen's size."""
    renderer = KioskRenderer(KioskOptions())
    renderer.fit_screen((shot.shape[1], shot.shape[0]))
    return float((np.abs(shot.astype(int) - renderer.message_screen(STARTING)).max(axis=2) > 60).mean())


@pytest.mark.display
def test_the_start_screen_is_on_screen_before_the_models_and_the_engine_are_imported(xvfb):
    """Under Xvfb: the early screen, opened with only OpenCV, numpy and the config reader imported, is the
    kiosk's own "Starting..." screen, pixel for pixel, and the run takes that window over once."""
    for tool in ("import", "xdotool"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(f"{tool} is not installed (apt-get install imagemagick xdotool); .ci/run installs it")
    proc = subprocess.Popen([sys.executable, "-c", SCREEN_CHILD], env=xvfb, cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        assert first == {"opened": True, "heavy": []}, proc.stderr.read() if not first else first
        window = find_window(xvfb, proc)  # its own window: another test's window closing is not in the picture
        shot = None
        for _ in range(40):  # the window manager-less resize to full screen may take a few paints
            png = subprocess.run(["import", "-window", window, "png:-"], env=xvfb, capture_output=True,
                                 timeout=30).stdout
            shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if png else None
            if shot is not None and differs(shot) < 0.003:
                break
            time.sleep(0.25)
        assert shot is not None, "no screenshot of the window"
        screen = subprocess.run(["xdotool", "getdisplaygeometry"], env=xvfb, capture_output=True, text=True).stdout
        assert shot.shape[1::-1] == tuple(int(v) for v in screen.split()), "the start screen is not full screen"
        proc.stdin.write("done\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline() or "{}")
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        proc.kill()
    far = differs(shot)
    assert far < 0.003, f"{far:.2%} of the screen differs from the start screen"
    assert second == {"taken": True, "again": True}

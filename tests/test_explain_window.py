"""The live freeze-and-explain window under a private Xvfb server.

* the ExplainSession protocol (computing / queued / refused, the panel, save, errors
  forwarded, clean shutdown; no window of its own), driven in a child process on the Xvfb display;
* ``livemask run`` on a real clip: xdotool presses g, the live window shows the panel in place of
  the live view (its screenshot is not uniform), q ends the process with status 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from livehelpers import window_ids

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mask_classifier.keras"  # as the classifier fixture in conftest.py

pytestmark = pytest.mark.display

SESSION_SCRIPT = r"""
import json, os, subprocess, sys, time
from pathlib import Path
import cv2, numpy as np, skimage.data
from face_detector import CenterFaceDetector
from livemask.models.backends.keras_model import MaskClassifier
from livemask.apps.compose import apply_overrides, explain_session_factory, load_config
from livemask.core.errors import LivemaskError
from livemask.core.types import Detections, Frame, FrameResult

model, out_dir = sys.argv[1], Path(sys.argv[2])
config = apply_overrides(load_config(), {"classifier.model_path": model})
classifier = MaskClassifier(model)
image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
detections = CenterFaceDetector().detect(image)
result = FrameResult(Frame(7, time.monotonic(), image, "test"), detections, classifier.classify(image, detections))
report = {"faces": len(detections)}
from livemask.sinks.window import LiveWindow
window = LiveWindow("livemask-warm-test", out_dir, explain=explain_session_factory(config, classifier))
window.open()  # opening the live window starts the explainer's warm-up in the background
session = window.session
report["session_at_open"] = type(session).__name__
report["ready_at_open"] = session.ready.is_set()
report["warmed"] = session.ready.wait(120)
report["warmup_seconds"] = session.warmup_seconds
cam = session.suite.explainers["gradcam"]._cam_fn
logits = session.suite.explainers["gradcam"].scorer._call
report["traces_after_warmup"] = [cam.experimental_get_tracing_count(), logits.experimental_get_tracing_count()]

def pump(until, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        session.update()
        cv2.waitKey(20)
        if until():
            return True
    return False

report["first"] = session.request(result, "all").text
report["state_first"] = session.state
report["second"] = session.request(result, "gradcam").text
report["state_second"] = session.state
third = session.request(result, "occlusion")
report["third"], report["third_accepted"] = third.text, third.accepted
report["busy_status"] = session.status
report["opened"] = pump(lambda: session.is_open)
report["queued_done"] = pump(lambda: not session.busy and "gradcam" in (session.status or ""))
report["traces_after_requests"] = [cam.experimental_get_tracing_count(), logits.experimental_get_tracing_count()]
report["panel_shape"] = list(session.panel.shape)
search = subprocess.run(["xdotool", "search", "--all", "--pid", str(os.getpid()), "--name", "."],
                        capture_output=True, text=True)  # every named window of this process
names = [subprocess.run(["xdotool", "getwindowname", w], capture_output=True, text=True).stdout.strip()
         for w in search.stdout.split()]
report["window_names"] = sorted(set(names))
saved = session.save(out_dir)
report["saved"] = str(saved) if saved else None
session.close()
report["open_after_close"] = session.is_open
report["panel_after_close"] = session.panel is not None
report["save_when_closed"] = session.save(out_dir)
none = Detections.empty()
empty = FrameResult(Frame(8, time.monotonic(), image, "test"), none, classifier.classify(image, none))
report["no_faces"] = session.request(empty, "gradcam").text
outside = Detections(np.array([[5000, 5000, 5100, 5100]], np.float32), np.array([0.9], np.float32))
bad = FrameResult(Frame(9, time.monotonic(), image, "test"), outside, result.predictions)
session.request(bad, "gradcam")
try:
    pump(lambda: False, timeout=20)
    report["forwarded"] = None
except LivemaskError as err:
    report["forwarded"] = f"{type(err).__name__}: {err}"
session.shutdown()
report["worker_alive"] = session._thread is not None
print(json.dumps(report))
"""


def test_explain_session_protocol(xvfb, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SESSION_SCRIPT, str(MODEL), str(tmp_path)], env=xvfb,
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["faces"] == 1
    # the live window's open() started the warm-up; it finished without any key press, and the
    # requests after it traced nothing new (the first key press does not pay for compiling)
    assert report["session_at_open"] == "ExplainSession" and report["warmed"]
    assert report["warmup_seconds"] > 0
    assert report["traces_after_warmup"] == [1, 1]
    assert report["traces_after_requests"] == report["traces_after_warmup"]
    assert "computing" in report["first"] and report["state_first"] == "computing"
    assert "queued" in report["second"] and report["state_second"] == "queued"
    assert "refused" in report["third"] and not report["third_accepted"]  # never silently lost
    assert "waiting" in report["busy_status"]  # the status line tells the state, the refusal is a message
    assert report["opened"] and report["queued_done"]
    assert report["panel_shape"][0] > 50 and report["panel_shape"][1] > 50
    assert report["window_names"] == ["livemask-warm-test"], report["window_names"]  # the session made none
    saved = Path(report["saved"])
    assert saved.is_file() and saved.name.startswith("livemask-") and saved.name.endswith("-f000007-explain.png")
    import cv2

    panel = cv2.imread(str(saved))
    assert panel is not None and panel.std() > 10
    assert report["open_after_close"] is False and report["save_when_closed"] is None
    assert report["panel_after_close"] is False
    assert "no faces" in report["no_faces"]
    forwarded = report["forwarded"] or ""
    assert forwarded.startswith("InputImageError") and "outside" in forwarded
    assert report["worker_alive"] is False


def _xdotool(env, *args, check=True) -> str:
    proc = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise AssertionError(f"xdotool {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def _wait_window(env, name: str, timeout: float) -> str | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = _xdotool(env, "search", "--name", name, check=False).split()
        if found:
            return found[0]
        time.sleep(0.05)
    return None


def _repeated(source: Path, out: Path, times: int) -> Path:
    """The real clip played ``times`` times, written as MJPG (no codec needed beyond OpenCV's own)."""
    import cv2
    from livehelpers import read_video, video_info

    frames = read_video(source)
    fps = video_info(source)[2] or 25.0
    assert frames, f"cannot read {source}"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for frame in frames * times:
        writer.write(frame)
    writer.release()
    return out


@pytest.mark.data
def test_g_in_the_live_window_shows_the_panel_in_its_place(xvfb, data_dir, tmp_path):
    source = data_dir / "videos" / "masked_woman_laptop.mp4"
    if not source.is_file():
        pytest.skip(f"clip not found: {source}")
    # ~59 s paced: the run must still be live when q comes, however slow the start-up (a live run drops
    # the frames that pass while the models load, so a short clip can be over before the window shows)
    clip = _repeated(source, tmp_path / "clip.avi", 6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "livemask", "run", "--source", str(clip), "--realtime",
         "--events", str(tmp_path / "events.jsonl"), "--set", f"classifier.model_path={MODEL}"],
        env=xvfb, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import cv2

    def shot() -> np.ndarray | None:
        ids = window_ids(xvfb, "livemask", proc.pid)
        if not ids:
            return None
        png = subprocess.run(["import", "-window", ids[-1], "png:-"], env=xvfb, capture_output=True, timeout=30)
        return cv2.imdecode(np.frombuffer(png.stdout, np.uint8), cv2.IMREAD_COLOR) if png.stdout else None

    try:
        live = None
        end = time.monotonic() + 90
        while live is None and time.monotonic() < end and proc.poll() is None:
            live = next(iter(window_ids(xvfb, "livemask", proc.pid)), None)
            time.sleep(0.2)
        assert live is not None, f"live window never appeared (exit {proc.poll()})"
        time.sleep(2.0)  # a few frames with detections
        before = shot()
        assert before is not None
        _xdotool(xvfb, "windowactivate", "--sync", live, check=False)
        _xdotool(xvfb, "key", "--window", live, "g")
        # the panel takes the live view's place: the window changes to the panel's size (at least
        # MIN_PANEL, with the footer under it) and shows it; no window of its own
        image, end = None, time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None:
            image = shot()
            if image is not None and image.shape != before.shape:
                time.sleep(0.5)  # its pixels half a second later
                image = shot()
                break
            time.sleep(0.2)
        assert image is not None and image.shape != before.shape, "the panel never took the live view's place"
        from livemask.sinks.window import MIN_PANEL

        assert image.shape[1] >= min(MIN_PANEL[0], before.shape[1]), image.shape
        assert image.reshape(-1, 3).std(axis=0).max() > 10, "the panel's screenshot is uniform"
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
        assert window_ids(xvfb, "livemask.+", proc.pid) == [], "a second window was opened"
        assert proc.poll() is None, "the run ended before q was pressed"
        # Qt may have replaced the window's X id since (it resizes to the first frame): look again, by this
        # process and the window's name, and press q until the process ends (a busy machine can be between
        # two windows, or take a moment to read the key)
        sent = 0
        end = time.monotonic() + 30
        while time.monotonic() < end and proc.poll() is None:
            ids = [*window_ids(xvfb, "livemask", proc.pid), live]
            sent += sum(subprocess.run(["xdotool", "key", "--window", i, "q"], env=xvfb,
                                       capture_output=True).returncode == 0 for i in dict.fromkeys(ids))
            try:
                proc.wait(timeout=3.0 if sent else 0.3)
            except subprocess.TimeoutExpired:
                pass
        # xdotool may report a failure for the q that ended the run (its window went away under it); the
        # summary below tells that a key ended the run ("user"), not the clip's end or a window close
        assert sent or proc.poll() == 0, f"could not send q to the live window (the run's exit: {proc.poll()})"
        code = proc.wait(timeout=30)
        assert code == 0, proc.stderr.read()[-3000:]
        from livehelpers import read_events

        summary = read_events(tmp_path / "events.jsonl")[1]
        assert summary is not None and summary["ended"] == "user", summary  # q ended it, not the clip's end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


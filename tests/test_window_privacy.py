"""The live window while recording, under a real (private) Xvfb: the "REC" mark is on screen, and with
--blur-faces a snapshot saved with 's' has the face blurred while the recording is blurred too."""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest
from livehelpers import astronaut_bgr, clip_frame, find_window, read_code, read_events, read_video, send_keys
from test_window import start

pytestmark = pytest.mark.display


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def red_pixels(image: np.ndarray) -> int:
    b, g, r = (image[..., k].astype(int) for k in range(3))
    return int(((r > 180) & (g < 60) & (b < 60)).sum())


def test_rec_mark_in_the_window_and_blurred_snapshot_while_recording(xvfb, tmp_path):
    import shutil

    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed (apt-get install xdotool)")
    from livehelpers import write_clip

    clip = write_clip(tmp_path / "clip.mp4", 900)
    out, events = tmp_path / "o.avi", tmp_path / "e.jsonl"
    proc = start(xvfb, tmp_path, clip, "--output", str(out), "--events", str(events), "--blur-faces")
    try:
        find_window(xvfb, proc)
        time.sleep(3)
        send_keys(xvfb, proc, "livemask", "s")
        deadline = time.monotonic() + 10
        while not list((tmp_path / "snaps").glob("livemask-*.png")) and time.monotonic() < deadline:
            time.sleep(0.1)
        send_keys(xvfb, proc, "livemask", "q")
        proc.wait(timeout=30)
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    snaps = list((tmp_path / "snaps").glob("livemask-*.png"))
    assert len(snaps) == 1, snaps
    snap = cv2.imread(str(snaps[0]))
    frame_id = int(re.search(r"f(\d+)", snaps[0].name).group(1))
    lines, _ = read_events(events)
    faces = next(line["faces"] for line in lines if line["frame_id"] == frame_id)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0]["box"]
    dx, dy = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
    ys, xs = slice(int(y1 + dy), int(y2 - dy)), slice(int(x1 + dx), int(x2 - dx))
    source = clip_frame(astronaut_bgr(), frame_id)
    corner = (slice(0, 30), slice(250, 320))
    # the REC mark of the live view: a red dot (the source's own red, the flag, is darkened by the bands)
    assert red_pixels(snap[corner]) >= red_pixels(source[corner]) + 15
    assert sharpness(snap[ys, xs]) < 0.15 * sharpness(source[ys, xs])  # blurred in the snapshot
    same = [f for f in read_video(out) if read_code(f) == frame_id]  # a live run may drop frames: found by code
    assert len(same) == 1
    assert red_pixels(same[0][corner]) < red_pixels(source[corner]) + 15  # the recording has no REC mark
    assert sharpness(same[0][ys, xs]) < 0.15 * sharpness(source[ys, xs])

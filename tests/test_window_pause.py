"""Pause in the live window: a ``--realtime`` file holds where it is (resume goes on from the same frame),
read from the window's own pixels under Xvfb (each clip frame carries its number as a code)."""

from __future__ import annotations

import subprocess
import time

import cv2
import numpy as np
import pytest
from livehelpers import cli, find_window, read_code, read_events, send_keys, write_clip

pytestmark = pytest.mark.display


def shown_frame(env, wid: str) -> int | None:
    png = subprocess.run(["import", "-window", wid, "png:-"], env=env, capture_output=True, timeout=30).stdout
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) if png else None
    return None if image is None or image.shape[:2] != (240, 320) else read_code(image)


def test_pause_holds_a_realtime_file_where_it_is(xvfb, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", 450)  # 15 s at 30 fps, frame numbers drawn in
    proc = subprocess.Popen(cli("--source", str(clip), "--realtime", "--events", str(tmp_path / "e.jsonl")),
                            env=xvfb, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wid = find_window(xvfb, proc)
        deadline = time.monotonic() + 60
        while (shown_frame(xvfb, wid) or 0) < 30 and time.monotonic() < deadline:  # playing
            time.sleep(0.2)
            wid = find_window(xvfb, proc)
        send_keys(xvfb, proc, "livemask", "space")
        time.sleep(1.0)
        wid = find_window(xvfb, proc)
        paused_at = shown_frame(xvfb, wid)
        time.sleep(3.0)  # 90 frames of clip time
        assert shown_frame(xvfb, wid) == paused_at  # held on screen
        send_keys(xvfb, proc, "livemask", "space")
        time.sleep(0.5)
        resumed = shown_frame(xvfb, wid)
        # from the same place: about half a second on (15 frames), not the 3 s of the pause (90 frames)
        assert paused_at is not None and resumed is not None and 0 < resumed - paused_at < 45, (paused_at, resumed)
        proc.wait(timeout=60)  # the clip plays to its end
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    _, summary = read_events(tmp_path / "e.jsonl")
    assert summary["ended"] == "end of source" and summary["frames_read"] == 450
    # nothing of the clip is skipped over the pause: at most a few frames dropped by the live queues
    assert summary["dropped_capture"] < 30, summary


def test_a_long_message_fits_its_box_in_the_window_frame():
    """The "saved ..." line with two long paths, drawn on a 320x240 frame: wrapped onto more lines, every
    text pixel inside the dark band and away from the frame's right edge."""
    from livemask.core.types import Detections, Frame, FrameResult, Predictions
    from livemask.sinks.draw import fit_lines
    from livemask.sinks.render import Renderer

    frame = np.full((240, 320, 3), 200, np.uint8)  # a light frame: the band darkens it, the text is white
    result = FrameResult(Frame(0, time.monotonic(), frame, "t"), Detections.empty(),
                         Predictions(np.zeros((0, 2), np.float32), ("mask", "no_mask")))
    message = ("saved snapshots/livemask-20261206-193000-f123.png, "
               "snapshots/livemask-20261206-193000-f123-explain.png")
    image = Renderer().render(result, [message])
    lines = fit_lines(["x", "y", message], 310, 0.5)
    assert len(lines) > 3 and lines[-1].endswith("explain.png")  # wrapped, the file name's end kept
    band = image.min(axis=2) < 120  # the darkened band (0.4 x 200 = 80)
    rows = np.flatnonzero(band[:, 0])
    white = image.min(axis=2) > 230
    ys, xs = np.nonzero(white)
    assert xs.max() < 318  # no text cut at the frame's edge
    assert ys.max() <= rows.max() + 1  # every text pixel inside the band
    assert band[: rows.max() + 1, : xs.max() + 1][~white[: rows.max() + 1, : xs.max() + 1]].mean() > 0.9

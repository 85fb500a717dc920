"""Privacy: faces pixelated or blurred in recordings and alert snapshots (the verdict still from the sharp
face), and the "REC" notice of the live view while a recording is written."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from clipmaker import read_frames, write_frames
from livehelpers import astronaut_bgr, read_alerts, read_events, read_video, run_cli

from livemask.core.types import Analytics, Detections, Frame, FrameResult, Predictions
from livemask.sinks.privacy import FaceBlur
from livemask.sinks.render import Renderer


def sharpness(image: np.ndarray) -> float:
    """High-frequency energy: variance of the Laplacian of the grey image."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def inner(box, shrink: float = 0.15) -> tuple[slice, slice]:
    x1, y1, x2, y2 = box
    dx, dy = shrink * (x2 - x1), shrink * (y2 - y1)
    return slice(int(y1 + dy), int(y2 - dy)), slice(int(x1 + dx), int(x2 - dx))


def test_face_blur_removes_the_detail_of_the_box_only():
    image = astronaut_bgr()
    box = np.array([[170, 30, 290, 180]], np.float32)
    out = FaceBlur("blur").apply(image.copy(), box)
    ys, xs = inner(box[0])
    assert sharpness(out[ys, xs]) < 0.1 * sharpness(image[ys, xs])
    assert np.array_equal(out[300:, :], image[300:, :])  # outside the (grown) box nothing changes


def test_pixelate_leaves_a_few_flat_cells():
    """Pixelation keeps block edges (high frequencies), so it is checked by what is left: 7 x 9 flat cells."""
    image = astronaut_bgr()
    box = np.array([[170, 30, 290, 180]], np.float32)
    out = FaceBlur("pixelate").apply(image.copy(), box)
    x1, y1, x2, y2 = FaceBlur("pixelate").region(image, box[0])
    colours = np.unique(out[y1:y2, x1:x2].reshape(-1, 3), axis=0)
    assert len(colours) <= 7 * 9 < len(np.unique(image[y1:y2, x1:x2].reshape(-1, 3), axis=0)) / 50
    assert np.array_equal(out[300:, :], image[300:, :])


@pytest.fixture(scope="module")
def man_clip(data_dir, tmp_path_factory):
    frames, fps = read_frames(data_dir / "videos" / "unmasked_man_outdoors.mp4", (640, 360))
    return write_frames(tmp_path_factory.mktemp("privacy") / "man.avi", frames[:60], fps)


def test_recording_and_snapshots_have_blurred_faces_and_the_event_log_keeps_the_labels(man_clip, tmp_path):
    out, events, snaps = tmp_path / "o.avi", tmp_path / "e.jsonl", tmp_path / "snaps"
    proc = run_cli("--source", str(man_clip), "--headless", "--output", str(out), "--events", str(events),
                   "--blur-faces", "--set", "alerts.after_s=1", "--set", f"run.snapshot_dir={snaps}")
    assert proc.returncode == 0, proc.stderr
    lines, _summary = read_events(events)
    source, recorded = read_video(man_clip), read_video(out)
    assert len(recorded) == len(source) == len(lines) == 60
    labels = [f["label"] for line in lines for f in line["faces"]]
    assert len(labels) >= 55 and labels.count("no_mask") >= 0.9 * len(labels)  # verdicts from the sharp face
    ratios, outside = [], []
    for line, src, rec in zip(lines, source, recorded):
        for face in line["faces"]:
            ys, xs = inner(face["box"])
            ratios.append(sharpness(rec[ys, xs]) / max(sharpness(src[ys, xs]), 1e-6))
        outside.append(sharpness(rec[-100:, -200:]) / max(sharpness(src[-100:, -200:]), 1e-6))
    assert np.median(ratios) < 0.15 and max(ratios) < 0.4, ratios
    assert np.median(outside) > 0.5  # the rest of the frame keeps its detail
    # the alert's face crop is blurred too
    alerts = read_alerts(events)
    assert len(alerts) == 1
    alert = alerts[0]
    snap = cv2.imread(alert["snapshot"])
    src = source[alert["frame_id"]]
    x1, y1, x2, y2 = alert["box"]
    w, h = x2 - x1, y2 - y1
    ox, oy = max(int(x1 - 0.25 * w), 0), max(int(y1 - 0.25 * h), 0)  # the crop's origin in the frame
    ys, xs = inner([x1 - ox, y1 - oy, x2 - ox, y2 - oy])
    sys_, sxs = inner([x1, y1, x2, y2])
    assert sharpness(snap[ys, xs]) < 0.15 * sharpness(src[sys_, sxs])


def one_face(image: np.ndarray) -> FrameResult:
    dets = Detections(np.array([[170, 30, 290, 180]], np.float32), np.array([0.9], np.float32))
    preds = Predictions(np.array([[0.1, 0.9]], np.float32), ("mask", "no_mask"))
    return FrameResult(Frame(0, 0.0, image, "x"), dets, preds, np.array([1]), 5.0, Analytics.empty(1))


def red_pixels(image: np.ndarray) -> int:
    b, g, r = (image[..., k].astype(int) for k in range(3))
    return int(((r > 180) & (g < 60) & (b < 60)).sum())


def test_rec_notice_only_where_asked_and_live_view_snapshot_is_blurred():
    image = np.full((360, 640, 3), 90, np.uint8)
    image[30:180, 170:290] = astronaut_bgr()[30:180, 170:290]
    live = Renderer(recording_notice=True, snapshot_blur=FaceBlur("blur"))
    shown = live.render(one_face(image))
    recorded = Renderer(blur=FaceBlur("blur")).render(one_face(image))
    corner = (slice(0, 40), slice(540, 640))
    assert red_pixels(shown[corner]) >= 20 and red_pixels(recorded[corner]) == 0
    ys, xs = inner([170, 30, 290, 180])
    assert sharpness(shown[ys, xs]) > 5 * sharpness(recorded[ys, xs])  # the live view stays sharp
    saved = live.for_snapshot(shown, one_face(image))  # what 's' saves from the live window
    assert sharpness(saved[ys, xs]) < 0.15 * sharpness(shown[ys, xs])
    assert saved is not shown and red_pixels(saved[corner]) >= 20
    assert Renderer().for_snapshot(shown, one_face(image)) is shown  # no privacy: saved as shown


def test_the_count_line_counts_people_not_boxes():
    from livemask.core.types import PeopleStats

    image = np.zeros((120, 160, 3), np.uint8)
    r = one_face(image)
    stats = Analytics(PeopleStats(1, 4, 3, 1), np.array([False]))
    from dataclasses import replace

    assert Renderer.count_text(replace(r, analytics=stats)) == "people 4  masked 75%  in view 1  static 1"
    assert Renderer.count_text(replace(r, analytics=None)) == "Mask: 0  No mask: 1"  # in words


# -- privacy by default: alert snapshots blurred unless privacy.snapshots is sharp; a kiosk never writes one --
def _alert_snapshot_sharpness(events, source) -> float:
    """Sharpness of the alert snapshot's face over the same face in the source frame."""
    alerts = read_alerts(events)
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    snap, src = cv2.imread(alert["snapshot"]), source[alert["frame_id"]]
    x1, y1, x2, y2 = alert["box"]
    ox, oy = max(int(x1 - 0.25 * (x2 - x1)), 0), max(int(y1 - 0.25 * (y2 - y1)), 0)  # the crop's origin
    ys, xs = inner([x1 - ox, y1 - oy, x2 - ox, y2 - oy])
    src_ys, src_xs = inner([x1, y1, x2, y2])
    return sharpness(snap[ys, xs]) / max(sharpness(src[src_ys, src_xs]), 1e-6)


@pytest.mark.parametrize("setting, blurred", [(None, True), ("sharp", False)])
def test_alert_snapshots_are_blurred_by_default_and_sharp_only_when_asked(man_clip, tmp_path, setting, blurred):
    events, snaps, out = tmp_path / "e.jsonl", tmp_path / "snaps", tmp_path / "o.avi"
    extra = ["--set", f"privacy.snapshots={setting}"] if setting else []
    proc = run_cli("--source", str(man_clip), "--headless", "--events", str(events), "--output", str(out),
                   "--set", "alerts.after_s=1", "--set", f"run.snapshot_dir={snaps}", *extra)
    assert proc.returncode == 0, proc.stderr
    source = read_video(man_clip)
    ratio = _alert_snapshot_sharpness(events, source)
    assert (ratio < 0.15) if blurred else (ratio > 0.6), ratio
    # the recording follows privacy.blur_faces (off by default): its faces stay sharp either way
    lines, _ = read_events(events)
    face = next(f for line in lines for f in line["faces"])
    ys, xs = inner(face["box"])
    recorded = read_video(out)[lines[0]["frame_id"]]
    assert sharpness(recorded[ys, xs]) > 0.5 * sharpness(source[lines[0]["frame_id"]][ys, xs])


def test_a_bad_snapshots_value_is_a_one_line_usage_error(man_clip):
    proc = run_cli("--source", str(man_clip), "--headless", "--set", "privacy.snapshots=clear", timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("livemask: error:") and "privacy.snapshots" in last and "Traceback" not in proc.stderr


def test_kiosk_mode_never_writes_a_sharp_face():
    """Asked for sharp snapshots and no blur, a kiosk run's alert snapshots and recording are still blurred."""
    from livemask.apps import compose
    from livemask.sinks.privacy import FaceBlur

    sharp = compose.apply_overrides(compose.load_config(), {"privacy.snapshots": "sharp"})
    window = compose.run_options(compose.apply_overrides(sharp, {"run.headless": False}))
    assert compose.alert_snapshot_blur(sharp, window) is None  # not a kiosk: sharp as asked
    assert compose.kiosk_recording_blur(sharp, window, None) is None
    kiosk = compose.apply_overrides(sharp, {"kiosk.enabled": True})
    assert isinstance(compose.alert_snapshot_blur(kiosk, window), FaceBlur)
    assert isinstance(compose.kiosk_recording_blur(kiosk, window, None), FaceBlur)
    # and what such a blur leaves of a real face: no detail
    image = astronaut_bgr()
    box = np.array([[170, 30, 290, 180]], np.float32)
    out = compose.alert_snapshot_blur(kiosk, window).apply(image.copy(), box)
    ys, xs = inner(box[0])
    assert sharpness(out[ys, xs]) < 0.1 * sharpness(image[ys, xs])

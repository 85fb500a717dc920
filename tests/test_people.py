"""People counted by track, static faces (a photo pasted still into a real clip), and the alert rule's timing."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from clipmaker import pasted_photo_clip
from livehelpers import astronaut_bgr, read_alerts, read_events

from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.engine.capture import Capture
from livemask.engine.engine import Engine
from livemask.engine.people import AlertRule, People, PeopleOptions
from livemask.engine.pipeline import FrameProcessor
from livemask.engine.sources import FileSource
from livemask.engine.tracker import Tracker
from livemask.sinks.recording import EventLog

CLASSES = ("mask", "no_mask", "mask_incorrect")
ONE_HOT = {c: np.eye(3, dtype=np.float32)[i] for i, c in enumerate(CLASSES)}


def result(i: int, t: float, image: np.ndarray, boxes, labels, ids) -> FrameResult:
    frame = Frame(i, 1000.0 + t, image, "test", t * 1000.0)
    dets = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full((len(boxes),), 0.9, np.float32))
    preds = Predictions(np.array([ONE_HOT[x] for x in labels], np.float32).reshape(-1, 3), CLASSES)
    return FrameResult(frame, dets, preds, np.array(ids, np.int64))


def moving_face(i: int) -> tuple[np.ndarray, list[float]]:
    """The astronaut's face, sliding right 3 px per frame: a face that moves."""
    base = astronaut_bgr()
    image = np.ascontiguousarray(base[0:240, 100 - 0:420])
    dx = 3 * (i % 40)
    shifted = np.roll(image, dx, axis=1)
    return shifted, [150 + dx, 20, 260 + dx, 150]


def test_alert_rule_after_s_and_cooldown_on_frame_time():
    people = People(PeopleOptions(min_track_s=0.5), AlertRule(("no_mask",), after_s=2.0, cooldown_s=2.5))
    fired, counts = [], []
    fps = 10.0
    for i in range(80):  # 8 s: mask for 1 s, no_mask for 5 s, mask again for 2 s
        t = i / fps
        label = "no_mask" if 1.0 <= t < 6.0 else "mask"
        image, box = moving_face(i)
        out = people.update(result(i, t, image, [box], [label], [1]))
        fired += [(round(t, 1), a.duration_s) for a in out.analytics.alerts]
        counts.append(out.analytics.people)
    # no_mask from 1.0 s: first alert at 3.0 s (2 s into the stretch), the next one a cooldown later
    assert [t for t, _ in fired] == [3.0, 5.5]
    assert fired[0][1] == pytest.approx(2.0) and fired[1][1] == pytest.approx(4.5)
    assert counts[3].counted == 0  # 0.3 s: shorter than min_track_s
    assert counts[-1].counted == 1 and counts[-1].in_view == 1
    assert counts[-1].masked == 0  # most of its frames were no_mask
    assert people.summary()["alerts"] == 2


def test_a_short_track_is_not_a_person_and_a_flicker_does_not_fire():
    people = People(PeopleOptions(min_track_s=0.5), AlertRule(("no_mask",), after_s=1.0, cooldown_s=10))
    for i in range(30):  # a 3 s person whose label flickers to mask every 0.8 s
        t = i / 10
        image, box = moving_face(i)
        label = "mask" if i % 8 == 7 else "no_mask"
        out = people.update(result(i, t, image, [box], [label], [1]))
        assert out.analytics.alerts == ()
    image, _ = moving_face(0)
    for i in range(30, 33):  # a second face for 0.3 s only
        out = people.update(result(i, i / 10, image, [[10, 10, 60, 60]], ["mask"], [2]))
    assert out.analytics.people.counted == 1


def test_a_still_picture_is_static_never_counted_and_never_alerted():
    people = People(PeopleOptions(static_s=2.0), AlertRule(("no_mask",), after_s=0.5, cooldown_s=1))
    still = astronaut_bgr()[0:240, 100:420].copy()
    rng = np.random.default_rng(0)
    marks = []
    for i in range(50):  # 5 s of the same photo with camera noise (+-2 grey levels)
        noisy = np.clip(still.astype(np.int16) + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8)
        out = people.update(result(i, i / 10, noisy, [[150, 20, 260, 150]], ["no_mask"], [1]))
        assert out.analytics.alerts == () and out.analytics.people.counted == 0
        marks.append(bool(out.analytics.static[0]))
    assert not any(marks[:19]) and all(marks[21:])  # static from static_s on
    assert people.summary()["static_tracks"] == 1


def test_people_by_label_uses_each_persons_most_frequent_label_and_keeps_forgotten_people():
    # moving_face rolls the whole image, as a camera pan would: judged in the frame, not relative to the scene
    people = People(PeopleOptions(min_track_s=0.5, forget_s=1.0, follow_camera=False))
    for i in range(20):  # person 1: mask for 1.4 s, then no_mask for 0.6 s (mostly mask)
        image, box = moving_face(i)
        people.update(result(i, i / 10, image, [box], ["mask" if i < 14 else "no_mask"], [1]))
    assert people.by_label() == {"mask": 1}
    for i in range(20, 60):  # person 2 (no_mask) for 4 s; person 1 is gone and folded into the totals
        image, box = moving_face(i)
        people.update(result(i, i / 10, image, [box], ["no_mask"], [2]))
    assert 1 not in people.people  # forgotten
    assert people.by_label() == {"mask": 1, "no_mask": 1}
    summary = people.summary()
    assert summary["counted"] == 2 and summary["masked"] == 1 and summary["share_masked"] == 0.5


def test_empty_frames_keep_the_shape():
    people = People()
    image = np.zeros((120, 160, 3), np.uint8)
    out = people.update(result(0, 0.0, image, [], [], []))
    assert out.analytics.static.shape == (0,) and out.analytics.people.counted == 0
    untracked = FrameResult(Frame(1, 0.0, image, "x"), Detections.empty(), Predictions.empty(CLASSES))
    assert people.update(untracked).analytics.static.shape == (0,)


def test_a_photo_on_the_wall_is_marked_static_and_left_out_next_to_a_real_moving_face(data_dir, tmp_path,
                                                                                      detector, classifier):
    clip, region, _fps = pasted_photo_clip(data_dir, detector, tmp_path / "photo.avi")
    from face_detector import CenterFaceDetector

    capture = Capture(FileSource(clip), queue_size=4, stop_event=threading.Event())
    capture.open()
    events = tmp_path / "e.jsonl"
    options = PeopleOptions()
    alerting = ("no_mask", "mask_incorrect")
    people = People(options, AlertRule(alerting, 2.0, 30.0), None)
    engine = Engine(capture, FrameProcessor(CenterFaceDetector(input_long_side=320), classifier, Tracker(), 2),
                    [EventLog(events)], people=people)
    summary = engine.run()
    lines, _ = read_events(events)

    def on_photo(face):
        x = (face["box"][0] + face["box"][2]) / 2
        y = (face["box"][1] + face["box"][3]) / 2
        return region[0] <= x <= region[2] and region[1] <= y <= region[3]

    photo = [(line["position_s"], f) for line in lines for f in line["faces"] if on_photo(f)]
    person = [(line["position_s"], f) for line in lines for f in line["faces"] if not on_photo(f)]
    assert len(photo) >= 0.9 * len(lines) and len(person) >= 0.9 * len(lines)
    # the photo is an unmasked face: without the static rule it would be counted and alerted on. (Its chin meets
    # the photo's lower edge and the flat wall below it: the shipped model calls it mask_incorrect, v4 no_mask;
    # docs/known-issues.md.)
    assert sum(f["label"] in alerting for _, f in photo) >= 0.8 * len(photo)
    late = [f for t, f in photo if t >= options.static_s + 0.5]
    assert late and all(f.get("static") for f in late)
    assert not any(f.get("static") for _, f in person)
    assert summary["people"]["counted"] == 1 and summary["people"]["share_masked"] == 1.0
    assert summary["people"]["static_tracks"] >= 1
    assert read_alerts(events) == []
    assert all(line["people"]["counted"] <= 1 for line in lines) and lines[-1]["people"]["static"] == 1


@pytest.mark.parametrize("every", [0.0, 0.5])
def test_faces_are_compared_at_most_every_check_every_s_and_the_verdicts_follow(every, monkeypatch):
    """The still photo becomes static at the first comparison from static_s on (at most check_every_s late), a
    moving face is counted; between comparisons no face's pixels are read again."""
    from livemask.engine import people as people_module

    compared = []
    real_changed = People._changed
    monkeypatch.setattr(People, "_changed", lambda self, *a, **k: compared.append(a[0]) or real_changed(self, *a, **k))
    people = People(PeopleOptions(static_s=2.0, min_track_s=0.3, check_every_s=every, follow_camera=False))
    still = astronaut_bgr()[0:240, 100:420].copy()
    first_static, frames_compared = None, set()
    for i in range(40):  # 4 s at 10 fps: track 1 the still photo, track 2 a moving face
        image, box = moving_face(i)
        image = image.copy()
        image[:, :100] = still[:, 150:250]  # the photo's face, still, at the left
        n_before = len(compared)
        out = people.update(result(i, i / 10, image, [[0, 20, 100, 150], box], ["mask", "mask"], [1, 2]))
        if len(compared) > n_before:
            frames_compared.add(i)
        if first_static is None and out.analytics.static[0]:
            first_static = i / 10
    assert people_module.PeopleOptions().check_every_s == 0.2  # the default of config.yaml
    step = max(every, 0.1)
    assert frames_compared == {i for i in range(1, 40) if round(i * 0.1 / step, 6) == int(round(i * 0.1 / step, 6))}
    assert first_static is not None and 2.0 <= first_static <= 2.0 + every + 1e-9
    assert out.analytics.people.counted == 1 and not out.analytics.static[1]

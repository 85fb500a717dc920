"""IoU tracker and label vote."""

from __future__ import annotations

import numpy as np
import pytest

from livemask.core.errors import ConfigError
from livemask.core.geometry import greedy_match, iou_matrix
from livemask.core.types import Detections, Predictions
from livemask.engine.tracker import Tracker

NAMES = ("mask", "no_mask")


def dets(*boxes) -> Detections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full((len(b),), 0.9, np.float32))


def preds(*p_mask) -> Predictions:
    p = np.array([[v, 1 - v] for v in p_mask], np.float32).reshape(-1, 2)
    return Predictions(p, NAMES)


def test_iou_matrix_values():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0) and m[0, 1] == pytest.approx(50 / 150) and m[1].max() == 0
    assert iou_matrix(a[:0], b).shape == (0, 3)


def test_greedy_match_takes_best_pairs_once():
    iou = np.array([[0.9, 0.8], [0.85, 0.1]], np.float32)
    assert sorted(greedy_match(iou, 0.3)) == [(0, 0)]  # row 1's only good column is taken by the better pair
    assert sorted(greedy_match(iou, 0.05)) == [(0, 0), (1, 1)]


def test_ids_follow_moving_faces_and_new_faces_get_new_ids():
    t = Tracker()
    ids0, _ = t.update(dets([0, 0, 50, 50], [200, 0, 250, 50]), preds(0.9, 0.1))
    assert list(ids0) == [1, 2]
    # both move a little; order of detections swapped
    ids1, _ = t.update(dets([205, 3, 255, 53], [4, 2, 54, 52]), preds(0.1, 0.9))
    assert list(ids1) == [2, 1]
    ids2, _ = t.update(dets([8, 4, 58, 54], [400, 400, 450, 450]), preds(0.9, 0.5))
    assert list(ids2) == [1, 3]


def test_lost_track_expires_after_max_age():
    t = Tracker(max_age=2)
    t.update(dets([0, 0, 50, 50]), preds(0.9))
    for _ in range(2):
        t.update(dets(), preds())
    ids, _ = t.update(dets([0, 0, 50, 50]), preds(0.9))
    assert list(ids) == [1]  # missed 2 frames: still alive
    for _ in range(3):
        t.update(dets(), preds())
    ids, _ = t.update(dets([0, 0, 50, 50]), preds(0.9))
    assert list(ids) == [2]  # missed 3 > max_age: a new track


def test_vote_keeps_a_steady_label_through_a_flicker():
    t = Tracker(vote_frames=5)
    raw = [0.9, 0.8, 0.3, 0.85, 0.45, 0.9, 0.9]  # two single-frame dips below 0.5
    shown = []
    for p in raw:
        _, voted = t.update(dets([10, 10, 60, 60]), preds(p))
        shown.append(voted.labels[0])
    assert [("mask" if p > 0.5 else "no_mask") for p in raw].count("no_mask") == 2
    assert shown == ["mask"] * len(raw)
    # voted probability is the mean of the last vote_frames frames
    assert voted.probabilities[0, 0] == pytest.approx(np.mean(raw[-5:]), abs=1e-6)


def test_vote_follows_a_real_change_within_the_window():
    t = Tracker(vote_frames=4)
    shown = []
    for p in [0.9] * 4 + [0.1] * 6:
        _, voted = t.update(dets([10, 10, 60, 60]), preds(p))
        shown.append(voted.labels[0])
    assert shown[:4] == ["mask"] * 4 and shown[-3:] == ["no_mask"] * 3


def test_disabled_tracker_passes_predictions_through():
    t = Tracker(enabled=False)
    p = preds(0.3)
    ids, out = t.update(dets([0, 0, 5, 5]), p)
    assert ids is None and out is p


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="iou_threshold"):
        Tracker(iou_threshold=0)
    with pytest.raises(ConfigError, match="vote_frames"):
        Tracker(vote_frames=0)


def test_carry_moves_boxes_along_their_velocity_and_keeps_ids():
    t = Tracker()
    t.update(dets([10, 10, 60, 60]), preds(0.9))
    boxes, ids = t.carry((640, 480))  # a new track has no velocity yet
    np.testing.assert_allclose(boxes.boxes, [[10, 10, 60, 60]])
    t.update(dets([20, 10, 70, 60]), preds(0.9))  # detected again 2 frames later: +5 px per frame in x
    boxes, ids = t.carry((640, 480))
    assert list(ids) == [1]
    np.testing.assert_allclose(boxes.boxes, [[25, 10, 75, 60]])
    boxes, _ = t.carry((640, 480))
    np.testing.assert_allclose(boxes.boxes, [[30, 10, 80, 60]])


def test_carried_boxes_stay_inside_the_frame():
    t = Tracker()
    t.update(dets([500, 10, 600, 110]), preds(0.9))
    t.update(dets([560, 10, 636, 110]), preds(0.9))  # moving right fast
    boxes, ids = t.carry((640, 480))
    assert boxes.boxes[0, 2] <= 640 and len(ids) == 1
    for _ in range(5):
        boxes, ids = t.carry((640, 480))
    assert len(boxes) == len(ids) and (len(ids) == 0 or boxes.boxes[0, 0] < 640)

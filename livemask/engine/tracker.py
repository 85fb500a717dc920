"""Track faces across frames by box overlap and steady their labels with a short vote.

Each frame's boxes are matched to the live tracks greedily by intersection over union
(best pair first). A matched track keeps its id; an unmatched box starts a new track; a
track not seen for ``max_age`` frames is dropped. The label shown for a track is the
class with the highest mean probability over its last ``vote_frames`` frames (a soft
vote), so one uncertain frame does not flip a steady face's label.

Between detections (``pipeline.detect_every`` > 1) :meth:`Tracker.carry` moves each box
along its track's recent velocity, so carried boxes follow a moving face.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from livemask.core.geometry import greedy_match, iou_matrix
from livemask.core.params import Range, check_arguments
from livemask.core.types import Detections, Predictions


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    history: deque = field(default_factory=deque)
    missed: int = 0  # detector runs since the detector last saw it
    hits: int = 1
    seen_at: int = 0  # tracker frame number of the last detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))  # box change per frame


class Tracker:
    """IoU tracker with a label vote; ``enabled: false`` passes predictions through untouched."""

    def __init__(self, enabled: bool = True, iou_threshold: Annotated[float, Range(0, 1, lo_open=True)] = 0.3,
                 max_age: Annotated[int, Range(0, 10_000)] = 10, vote_frames: Annotated[int, Range(1, 1000)] = 7):
        check_arguments(Tracker, {"iou_threshold": iou_threshold, "max_age": max_age, "vote_frames": vote_frames},
                        "Tracker")
        self.enabled = bool(enabled)
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.vote_frames = int(vote_frames)
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frame = 0  # frames seen (detected or carried)

    def reset(self) -> None:
        self.tracks = []
        self.next_id = 1
        self.frame = 0

    @property
    def total_tracks(self) -> int:
        return self.next_id - 1

    def associate(self, detections: Detections) -> np.ndarray:
        """Give each detection a track id (new or continued) and age the unmatched tracks."""
        boxes = detections.boxes
        pairs = greedy_match(iou_matrix(boxes, np.array([t.box for t in self.tracks], np.float32).reshape(-1, 4)),
                             self.iou_threshold)
        ids = np.zeros((len(boxes),), np.int64)
        matched = set()
        self.frame += 1
        for det_i, trk_i in pairs:
            t = self.tracks[trk_i]
            gap = max(self.frame - t.seen_at, 1)
            step = (boxes[det_i] - t.box) / gap
            t.velocity = (0.5 * t.velocity + 0.5 * step).astype(np.float32) if t.hits > 1 else step.astype(np.float32)
            t.box, t.score, t.landmarks = boxes[det_i], float(detections.scores[det_i]), detections.landmarks[det_i]
            t.missed, t.hits, t.seen_at = 0, t.hits + 1, self.frame
            ids[det_i] = t.track_id
            matched.add(trk_i)
        for i, t in enumerate(self.tracks):
            if i not in matched:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_age]
        for det_i in range(len(boxes)):
            if ids[det_i] == 0:
                t = Track(self.next_id, boxes[det_i], float(detections.scores[det_i]), detections.landmarks[det_i],
                          deque(maxlen=self.vote_frames), seen_at=self.frame)
                self.next_id += 1
                self.tracks.append(t)
                ids[det_i] = t.track_id
        return ids

    def carry(self, frame_size: tuple[int, int]) -> tuple[Detections, np.ndarray]:
        """Boxes and ids for a frame the detector skips: the faces of the last detection, moved along
        their velocity and clipped to ``frame_size`` (width, height)."""
        self.frame += 1
        live = [t for t in self.tracks if t.missed == 0]
        w, h = frame_size
        boxes, keep = [], []
        for t in live:
            b = t.box + t.velocity * (self.frame - t.seen_at)
            b = np.array([np.clip(b[0], 0, w), np.clip(b[1], 0, h), np.clip(b[2], 0, w), np.clip(b[3], 0, h)],
                         np.float32)
            if b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
                boxes.append(b)
                keep.append(t)
        if not keep:
            return Detections.empty(), np.zeros((0,), np.int64)
        offsets = np.array([b[:2] - t.box[:2] for b, t in zip(boxes, keep, strict=True)], np.float32)
        landmarks = np.array([t.landmarks for t in keep], np.float32) + offsets[:, None, :]
        dets = Detections(np.array(boxes, np.float32), np.array([t.score for t in keep], np.float32), landmarks)
        return dets, np.array([t.track_id for t in keep], np.int64)

    def vote(self, track_ids: np.ndarray, predictions: Predictions) -> Predictions:
        """Record this frame's probabilities per track; return the mean over each track's recent frames."""
        by_id = {t.track_id: t for t in self.tracks}
        out = predictions.probabilities.copy()
        for i, tid in enumerate(track_ids):
            t = by_id.get(int(tid))
            if t is None:
                continue
            t.history.append(predictions.probabilities[i])
            out[i] = np.mean(t.history, axis=0)
        return Predictions(out.astype(np.float32), predictions.class_names)

    def update(self, detections: Detections, predictions: Predictions) -> tuple[np.ndarray | None, Predictions]:
        """Track ids and voted predictions for a frame where the detector ran."""
        if not self.enabled:
            return None, predictions
        ids = self.associate(detections)
        return ids, self.vote(ids, predictions)

"""Typed, validated results that flow frame -> detections -> predictions.

Every result keeps the same shape when it is empty (zero rows), so callers never
special-case "no faces".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livemask.core.errors import ShapeError


def check_array(name: str, array: np.ndarray, shape: tuple[int | None, ...], dtype=None) -> None:
    """Raise ShapeError naming ``name`` with the expected and actual shape."""
    if not isinstance(array, np.ndarray):
        raise ShapeError(f"{name}: expected numpy array, got {type(array).__name__}")
    ok = array.ndim == len(shape) and all(e is None or e == a for e, a in zip(shape, array.shape))
    if not ok:
        expected = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
        raise ShapeError(f"{name}: expected shape {expected}, got {tuple(array.shape)}")
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise ShapeError(f"{name}: expected dtype {np.dtype(dtype)}, got {array.dtype}")


@dataclass(frozen=True)
class Frame:
    """One BGR uint8 image from a source."""

    frame_id: int
    timestamp: float  # time.monotonic() at capture
    image: np.ndarray  # (H, W, 3) uint8 BGR
    source: str
    position_ms: float | None = None  # position in a file, when the source has one

    def __post_init__(self) -> None:
        check_array("Frame.image", self.image, (None, None, 3), np.uint8)


@dataclass(frozen=True)
class Detections:
    """Face boxes in pixel coordinates of the frame they came from.

    boxes: (N, 4) float32 x1, y1, x2, y2; scores: (N,) float32;
    landmarks: (N, 5, 2) float32 (NaN where the detector gives none).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.boxes) if isinstance(self.boxes, np.ndarray) else -1
        check_array("Detections.boxes", self.boxes, (None, 4), np.float32)
        check_array("Detections.scores", self.scores, (n,), np.float32)
        if self.landmarks is None:
            object.__setattr__(self, "landmarks", np.full((n, 5, 2), np.nan, np.float32))
        check_array("Detections.landmarks", self.landmarks, (n, 5, 2), np.float32)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index) -> Detections:
        index = np.atleast_1d(np.arange(len(self))[index])
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index])

    @property
    def sizes(self) -> np.ndarray:
        """Shorter side of each box in pixels."""
        wh = self.boxes[:, 2:] - self.boxes[:, :2]
        return wh.min(axis=1) if len(self) else np.zeros((0,), np.float32)

    @property
    def areas(self) -> np.ndarray:
        """Area of each box in square pixels."""
        wh = (self.boxes[:, 2:] - self.boxes[:, :2]).clip(0)
        return wh.prod(axis=1) if len(self) else np.zeros((0,), np.float32)

    def largest(self) -> int:
        """Index of the largest box: a photo's subject (a bystander may score higher). -1 when empty."""
        return int(np.argmax(self.areas)) if len(self) else -1


@dataclass(frozen=True)
class Predictions:
    """Classifier output for N faces: probabilities (N, C) over ``class_names``."""

    probabilities: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        check_array("Predictions.probabilities", self.probabilities, (None, len(self.class_names)), np.float32)

    @classmethod
    def empty(cls, class_names: tuple[str, ...]) -> Predictions:
        return cls(np.zeros((0, len(class_names)), np.float32), tuple(class_names))

    def __len__(self) -> int:
        return len(self.probabilities)

    def __getitem__(self, index) -> Predictions:
        index = np.atleast_1d(np.arange(len(self))[index])
        return Predictions(self.probabilities[index], self.class_names)

    @property
    def class_ids(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1) if len(self) else np.zeros((0,), np.int64)

    @property
    def labels(self) -> list[str]:
        return [self.class_names[i] for i in self.class_ids]

    @property
    def confidences(self) -> np.ndarray:
        return self.probabilities.max(axis=1) if len(self) else np.zeros((0,), np.float32)


@dataclass(frozen=True)
class Alert:
    """A tracked face stayed in a non-compliant class for ``duration_s`` seconds of frame time."""

    time: float  # Unix seconds of the frame that fired it
    track_id: int
    label: str
    duration_s: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    frame_id: int
    position_s: float | None = None  # position in a file, when the source has one
    snapshot: str | None = None  # where the face crop is written (None: no snapshots)

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        if len(self.box) != 4 or not all(np.isfinite(self.box)):
            raise ShapeError(f"Alert.box: expected 4 finite numbers, got {self.box}")
        if int(self.track_id) < 1 or not self.label:
            raise ShapeError(f"Alert: expected a track id >= 1 and a label, got {self.track_id}, {self.label!r}")
        if not (np.isfinite(self.duration_s) and self.duration_s >= 0 and np.isfinite(self.time)):
            raise ShapeError(f"Alert: expected finite time and duration >= 0, got {self.time}, {self.duration_s}")


@dataclass(frozen=True)
class PeopleStats:
    """People counted by track up to a frame (not boxes per frame); static faces are not people."""

    in_view: int  # counted people whose face is in this frame
    counted: int  # unique people so far (tracks that lasted long enough and were not static)
    masked: int  # of ``counted``, those whose most frequent label is a masked class
    static: int  # faces in this frame marked static (a picture)

    def __post_init__(self) -> None:
        if min(self.in_view, self.counted, self.masked, self.static) < 0 or self.masked > self.counted:
            raise ShapeError(f"PeopleStats: inconsistent counts {self}")

    @property
    def share_masked(self) -> float | None:
        return self.masked / self.counted if self.counted else None

    def to_dict(self) -> dict:
        share = self.share_masked
        return {"in_view": self.in_view, "counted": self.counted, "masked": self.masked,
                "share_masked": None if share is None else round(share, 4), "static": self.static}


@dataclass(frozen=True)
class Analytics:
    """What the people stage (after the tracker) adds to a frame: counts, static faces, alerts fired."""

    people: PeopleStats
    static: np.ndarray  # (N,) bool: face i is static (a picture), left out of counts and alerts
    alerts: tuple[Alert, ...] = ()

    def __post_init__(self) -> None:
        check_array("Analytics.static", self.static, (None,), np.bool_)
        object.__setattr__(self, "alerts", tuple(self.alerts))
        if not all(isinstance(a, Alert) for a in self.alerts):
            raise ShapeError("Analytics.alerts: expected Alert records")

    @classmethod
    def empty(cls, n: int = 0) -> Analytics:
        return cls(PeopleStats(0, 0, 0, 0), np.zeros((n,), np.bool_))


@dataclass(frozen=True)
class FrameResult:
    """Everything known about one frame after inference."""

    frame: Frame
    detections: Detections
    predictions: Predictions
    track_ids: np.ndarray | None = None  # (N,) int64, when tracking is on
    inference_ms: float = 0.0
    analytics: Analytics | None = None  # people counts, static faces and alerts (livemask.engine.people)

    def __post_init__(self) -> None:
        if len(self.detections) != len(self.predictions):
            raise ShapeError(
                f"FrameResult: {len(self.detections)} detections but {len(self.predictions)} predictions"
            )
        if self.track_ids is not None:
            check_array("FrameResult.track_ids", self.track_ids, (len(self.detections),))
        if self.analytics is not None:
            check_array("FrameResult.analytics.static", self.analytics.static, (len(self.detections),))

    @property
    def time_s(self) -> float:
        """The frame's time in seconds: its position in a file when known, else its capture time."""
        f = self.frame
        return f.position_ms / 1000.0 if f.position_ms is not None else f.timestamp

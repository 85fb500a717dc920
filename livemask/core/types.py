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
class FrameResult:
    """Everything known about one frame after inference."""

    frame: Frame
    detections: Detections
    predictions: Predictions
    track_ids: np.ndarray | None = None  # (N,) int64, when tracking is on
    inference_ms: float = 0.0

    def __post_init__(self) -> None:
        if len(self.detections) != len(self.predictions):
            raise ShapeError(
                f"FrameResult: {len(self.detections)} detections but {len(self.predictions)} predictions"
            )
        if self.track_ids is not None:
            check_array("FrameResult.track_ids", self.track_ids, (len(self.detections),))

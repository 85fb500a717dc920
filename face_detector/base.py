"""What every face detector offers: ``detect(bgr_image) -> Detections``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np

from livemask.core.errors import ModelFileError
from livemask.core.images import as_bgr8
from livemask.core.params import Range
from livemask.core.types import Detections

# declared ranges of the settings every detector shares (read by livemask.config)
Score = Annotated[float, Range(0, 1)]
NmsIou = Annotated[float, Range(0, 1, lo_open=True)]
MinFace = Annotated[int, Range(0, 4096)]


def require_file(path: str | Path, key: str) -> Path:
    """Return ``path`` if it is a file, else raise a one-line error naming it and its config key."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p} (set by config key '{key}')")
    return p


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by non-maximum suppression, highest score first."""
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float32)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), 0.0, iou)
    return np.asarray(keep, np.int64).reshape(-1)


class FaceDetector(ABC):
    """Base class: converts the input once, calls ``_detect`` and clips boxes to the frame."""

    name = "detector"

    def __init__(self, score_threshold: Score = 0.5, min_face: MinFace = 0):
        self.score_threshold = float(score_threshold)
        self.min_face = int(min_face)

    def detect(self, image: np.ndarray) -> Detections:
        bgr = as_bgr8(image)
        det = self._detect(bgr)
        if not len(det):
            return det
        h, w = bgr.shape[:2]
        boxes = det.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        sides = (boxes[:, 2:] - boxes[:, :2]).min(axis=1)
        keep = (det.scores >= self.score_threshold) & (sides >= max(self.min_face, 1))
        return Detections(boxes[keep], det.scores[keep], det.landmarks[keep])

    @abstractmethod
    def _detect(self, bgr: np.ndarray) -> Detections:
        """Detect faces in a BGR uint8 image; boxes in its pixel coordinates."""

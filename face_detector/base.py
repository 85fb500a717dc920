"""What every face detector offers: ``detect(bgr_image) -> Detections``."""

from __future__ import annotations

import logging
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import cv2
import numpy as np

from livemask.core.errors import ModelFileError
from livemask.core.images import as_bgr8, cv_message
from livemask.core.params import Range
from livemask.core.types import Detections

# declared ranges of the settings every detector shares (read by livemask.config)
Score = Annotated[float, Range(0, 1)]
NmsIou = Annotated[float, Range(0, 1, lo_open=True)]
MinFace = Annotated[int, Range(0, 4096)]

T = TypeVar("T")


class NetworkError(Exception):
    """A network call failed in a runtime other than OpenCV's (whose failures are ``cv2.error``);
    the message is one line. Detectors turn both into a ModelFileError naming the file."""


def _failure(err: Exception) -> str:
    return cv_message(err) if isinstance(err, cv2.error) else str(err)


def require_file(path: str | Path, key: str) -> Path:
    """Return ``path`` if it is a file, else raise a one-line error naming it and its config key."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p} (set by config key '{key}')")
    return p


@contextmanager
def native_quiet():
    """OpenCV's and protobuf's own console lines (``[ERROR:0@0.1] ...``) off while a model loads.

    They would break the one-line error promise; with debug logging (``-v``) they stay.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        cv2.utils.logging.setLogLevel(level)


def load_model(path: str | Path, what: str, loader: Callable[[], T]) -> T:
    """``loader()`` with OpenCV's failures turned into one ModelFileError line naming the file."""
    try:
        with native_quiet():
            return loader()
    except cv2.error as err:
        raise ModelFileError(f"{path}: cannot load as a {what} model ({cv_message(err)})") from None


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
    concurrent_calls = False  # True: ``detect`` may run in several threads at once (a thread-safe runtime)

    def __init__(self, score_threshold: Score = 0.5, min_face: MinFace = 0):
        self.score_threshold = float(score_threshold)
        self.min_face = int(min_face)

    model_path: str = "?"

    def check_model(self) -> None:
        """Run the network once on a small black image: a file that loads but is not this
        detector's network (wrong outputs, wrong input layout) fails here, before any work."""
        try:
            with native_quiet():
                self._probe()
        except (cv2.error, NetworkError) as err:
            raise ModelFileError(f"{self.model_path}: loads, but is not a {self.name} model "
                                 f"({_failure(err)})") from None
        except (ValueError, IndexError, TypeError, KeyError) as err:
            raise ModelFileError(f"{self.model_path}: loads, but is not a {self.name} model "
                                 f"(unexpected output: {type(err).__name__}: {str(err)[:120]})") from None

    def _probe(self) -> None:
        self._detect(np.zeros((64, 64, 3), np.uint8))

    def settings(self) -> dict:
        """The detector's scalar settings (thresholds, sizes, runtime, model path), sorted by name."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, (int, float, str, bool))}

    def describe(self) -> dict:
        """What ran, for reports: the detector's name and its settings but the model path."""
        return {"name": self.name, **{k: v for k, v in self.settings().items() if k != "model_path"}}

    def detect(self, image: np.ndarray) -> Detections:
        bgr = as_bgr8(image)
        try:
            det = self._detect(bgr)
        except (cv2.error, NetworkError) as err:
            raise ModelFileError(f"{self.model_path}: the {self.name} network failed on a "
                                 f"{bgr.shape[1]}x{bgr.shape[0]} image ({_failure(err)})") from None
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

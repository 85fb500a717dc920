"""YuNet face detector (cv2.FaceDetectorYN) from a user-supplied ONNX file (optional)."""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np

from face_detector.base import FaceDetector, MinFace, NmsIou, Score, load_model, require_file
from livemask.core.errors import ConfigError
from livemask.core.params import Range
from livemask.core.types import Detections


class YuNetDetector(FaceDetector):
    """``upscale`` multiplies the frame size before detection (small faces need 2)."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | None = None,
        upscale: Annotated[float, Range(0, 8, lo_open=True)] = 1.0,
        score_threshold: Score = 0.7,
        nms_iou: NmsIou = 0.3,
        min_face: MinFace = 0,
    ):
        super().__init__(score_threshold, min_face)
        path = require_file(model_path or "", "detector.model_path")
        self.upscale = float(upscale)
        if not (0.0 < self.upscale <= 8.0):  # 0 would make cv2.resize fail on every frame
            raise ConfigError(f"detector.upscale must be in (0, 8], got {upscale!r}")
        self.model_path = str(path)
        self.net = load_model(path, "YuNet (ONNX)", lambda: cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), min(self.score_threshold, 0.99), nms_iou))
        self.check_model()

    def _detect(self, bgr: np.ndarray) -> Detections:
        if self.upscale != 1.0:
            bgr = cv2.resize(bgr, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        self.net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.net.detect(bgr)
        if faces is None or not len(faces):
            return Detections.empty()
        faces = faces.astype(np.float32) / np.float32(self.upscale)
        boxes = np.column_stack([faces[:, :2], faces[:, :2] + faces[:, 2:4]]).astype(np.float32)
        marks = faces[:, 4:14].reshape(-1, 5, 2).astype(np.float32)
        scores = (faces[:, 14] * self.upscale).astype(np.float32)
        return Detections(boxes, scores, marks)

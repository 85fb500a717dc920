"""OpenCV's res10 300x300 SSD face detector from user-supplied TensorFlow files (optional)."""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np

from face_detector.base import FaceDetector, MinFace, NmsIou, Score, nms, require_file
from livemask.core.params import Range
from livemask.core.types import Detections


class Res10Detector(FaceDetector):
    name = "res10"

    def __init__(
        self,
        model_path: str | None = None,
        config_path: str | None = None,
        input_size: Annotated[int, Range(32, 4096)] = 300,
        score_threshold: Score = 0.5,
        nms_iou: NmsIou = 0.3,
        min_face: MinFace = 0,
    ):
        super().__init__(score_threshold, min_face)
        pb = require_file(model_path or "", "detector.model_path")
        pbtxt = require_file(config_path or "", "detector.config_path")
        self.net = cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt))
        self.input_size = int(input_size)
        self.nms_iou = float(nms_iou)

    def _detect(self, bgr: np.ndarray) -> Detections:
        h, w = bgr.shape[:2]
        size = (self.input_size, self.input_size)
        self.net.setInput(cv2.dnn.blobFromImage(bgr, 1.0, size, (104.0, 177.0, 123.0)))
        out = self.net.forward().reshape(-1, 7)
        out = out[out[:, 2] >= min(self.score_threshold, 0.99)]
        if not len(out):
            return Detections.empty()
        boxes = (out[:, 3:7] * [w, h, w, h]).astype(np.float32)
        scores = out[:, 2].astype(np.float32)
        keep = nms(boxes, scores, self.nms_iou)
        return Detections(boxes[keep], scores[keep])

"""OpenCV's res10 300x300 SSD face detector from user-supplied TensorFlow files (optional)."""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np

from face_detector.base import FaceDetector, MinFace, NmsIou, Score, load_model, nms, require_file
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
        self.model_path = f"{pb} + {pbtxt.name}"
        self.net = load_model(self.model_path, "res10 SSD (TensorFlow .pb + .pbtxt)",
                              lambda: cv2.dnn.readNetFromTensorflow(str(pb), str(pbtxt)))
        self.input_size = int(input_size)
        self.nms_iou = float(nms_iou)
        self.check_model()

    def _probe(self) -> None:
        self.net.setInput(cv2.dnn.blobFromImage(np.zeros((64, 64, 3), np.uint8), 1.0, (self.input_size,) * 2))
        out = self.net.forward()
        if out.ndim != 4 or out.shape[-1] != 7:
            raise ValueError(f"output shape {out.shape}, expected (1, 1, N, 7)")

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

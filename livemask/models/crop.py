"""The crop rules used by training, inference and explanation.

``box`` (v3 and the shipped v4): a face box is grown to a square around its centre, with ``margin`` of
the longer side added, then cut from the frame; the part outside the frame is filled with black.
The square is resized to the classifier's input size.

``aligned`` (built for v4, not shipped): the face's five landmarks (eyes, nose tip, mouth corners) are mapped by a
similarity transform (rotation, one scale, shift; least squares over the five points, closed-form
Umeyama) onto fixed template positions, so the eyes are level at fixed rows and the nose and mouth
fall at the same place of every crop. The template is the median CenterFace landmark layout of a
``box`` crop at margin 0.2, made left-right symmetric, so an aligned crop frames the face like a box
crop of an upright frontal face. Faces whose landmarks are missing or implausible
(:func:`plausible_landmarks`) fall back to the ``box`` crop. The rule is part of the model's
contract (:class:`livemask.models.spec.ModelSpec.crop_rule`), stored in the model file.
"""

from __future__ import annotations

import cv2
import numpy as np

from livemask.core.errors import InputImageError
from livemask.core.types import check_array

DEFAULT_MARGIN = 0.2
CROP_RULES = ("box", "aligned")
TEMPLATE_MARGIN = 0.2  # the margin of the box crop the template positions were measured in
# left eye, right eye, nose tip, left and right mouth corner as fractions of the crop side (x, y): the median
# CenterFace landmarks of 284 faces of ../shared/data/faces in box crops at margin 0.2 (see
# livemask/explain/words.py TYPICAL_LANDMARKS), averaged with their mirror image
TEMPLATE = np.array([[0.343, 0.417], [0.657, 0.417], [0.5, 0.585], [0.3695, 0.7115], [0.6305, 0.7115]],
                    np.float64)
# plausibility checks before aligning (otherwise the box crop is used); lengths in units of the box width
MAX_OUTSIDE = 0.25  # every landmark within the box grown by this much on each side
EYE_DISTANCE = (0.15, 1.0)  # distance between the eyes
MAX_ROLL_DEG = 60.0  # eye line against the horizontal
MIN_NOSE_DROP = 0.15  # nose tip below the eye line, in units of the eye distance (a rotated frame)
MAX_RESIDUAL = 0.2  # RMS distance of the five points from the template after the fit, in template eye distances
SCALE_RANGE = (0.5, 2.0)  # aligned crop side / box crop side


def check_rule(rule: str) -> str:
    if rule not in CROP_RULES:
        raise ValueError(f"crop rule must be one of {list(CROP_RULES)}, got {rule!r}")
    return rule


def square_box(box: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Integer square (x1, y1, x2, y2) around ``box``, its side (1 + margin) * longer side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = round(cx - side / 2), round(cy - side / 2)
    s = max(round(side), 1)
    return np.array([left, top, left + s, top + s], np.int64)


def _check_box(box: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1):
        raise InputImageError(f"empty crop: box {[round(v, 1) for v in (x1, y1, x2, y2)]} has no area")
    return x1, y1, x2, y2


def crop_face(image: np.ndarray, box: np.ndarray, size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut the face in ``box`` out of ``image`` (H, W, 3) as a (size, size, 3) array (the ``box`` rule)."""
    check_array("image", image, (None, None, 3))
    x1, y1, x2, y2 = _check_box(box)
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


def template(size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The five template points (5, 2) in pixels of a (size x size) aligned crop with ``margin``."""
    shrink = (1.0 + TEMPLATE_MARGIN) / (1.0 + margin)  # a wider margin puts the same face in a smaller part
    return ((TEMPLATE - 0.5) * shrink + 0.5) * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, one scale, shift) taking ``src`` (N, 2) closest to ``dst``
    in least squares (Umeyama's closed form, no reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum() / len(src)
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / var) if var > 0 else 0.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def plausible_landmarks(box: np.ndarray, landmarks: np.ndarray) -> str:
    """'' when the five landmarks (5, 2) of the face in ``box`` are fit to align on, else the reason why not."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        return "no landmarks"
    x1, y1, x2, y2 = (float(v) for v in box)
    bw = max(x2 - x1, y2 - y1, 1e-6)
    grow = MAX_OUTSIDE * bw
    if ((lm[:, 0] < x1 - grow) | (lm[:, 0] > x2 + grow) | (lm[:, 1] < y1 - grow) | (lm[:, 1] > y2 + grow)).any():
        return "outside the box"
    eye = lm[1] - lm[0]
    dist = float(np.hypot(*eye))
    if not EYE_DISTANCE[0] * bw <= dist <= EYE_DISTANCE[1] * bw:
        return "eye distance"
    if abs(np.degrees(np.arctan2(eye[1], eye[0]))) > MAX_ROLL_DEG:
        return "roll"
    # in a frame rotated so the eyes are level: nose below the eyes, mouth below the eyes, mouth corners in order
    c, s = eye / dist
    rot = np.array([[c, s], [-s, c]])
    p = (lm - (lm[0] + lm[1]) / 2) @ rot.T
    if p[2, 1] < MIN_NOSE_DROP * dist or min(p[3, 1], p[4, 1]) < MIN_NOSE_DROP * dist or p[3, 0] >= p[4, 0]:
        return "order"
    return ""


def aligned_transform(box: np.ndarray, landmarks: np.ndarray, size: int,
                      margin: float = DEFAULT_MARGIN) -> np.ndarray | None:
    """The 2x3 image -> crop transform of the ``aligned`` rule, or None when the box crop must be used
    (implausible landmarks, a poor fit or a scale far from the box's)."""
    if plausible_landmarks(box, landmarks):
        return None
    dst = template(size, margin)
    m = similarity(landmarks, dst)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    x1, y1, x2, y2 = (float(v) for v in box)
    box_scale = size / (max(x2 - x1, y2 - y1) * (1.0 + margin))
    if not SCALE_RANGE[0] <= scale / box_scale <= SCALE_RANGE[1]:
        return None
    moved = np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]
    if np.sqrt(((moved - dst) ** 2).sum(1).mean()) > MAX_RESIDUAL * float(dst[1, 0] - dst[0, 0]):
        return None
    return m


def warp_face(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The (size, size, 3) crop of ``image`` under the 2x3 transform ``m``; outside the frame is black.
    A face much larger than the crop is first shrunk with area averaging (no aliasing)."""
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 0.7:
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
        h, w = image.shape[:2]
        ox, oy = max(int(np.floor(corners[:, 0].min())) - 2, 0), max(int(np.floor(corners[:, 1].min())) - 2, 0)
        ex, ey = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
        if ex <= ox or ey <= oy:
            return np.zeros((size, size, 3), image.dtype)
        patch = image[oy:ey, ox:ex]
        nw, nh = max(round((ex - ox) * scale), 1), max(round((ey - oy) * scale), 1)
        patch = cv2.resize(patch, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / (ex - ox), nh / (ey - oy)
        # crop = m @ image point, image point = (patch point / f) + offset
        m = m @ np.array([[1 / fx, 0, ox], [0, 1 / fy, oy], [0, 0, 1]])
        image = patch
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def box_transform(box: np.ndarray, size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The 2x3 image -> crop transform of the ``box`` rule."""
    left, top, right, _ = square_box(box, margin)
    k = size / max(int(right - left), 1)
    return np.array([[k, 0, -left * k], [0, k, -top * k]], np.float64)


def crop_face_by_rule(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None, size: int,
                      margin: float = DEFAULT_MARGIN, rule: str = "box") -> tuple[np.ndarray, np.ndarray, bool]:
    """The crop of one face by ``rule``, its 2x3 image -> crop transform and whether it is aligned
    (False: the box crop, by rule or as the fallback)."""
    check_rule(rule)
    if rule == "aligned" and landmarks is not None:
        check_array("image", image, (None, None, 3))
        _check_box(box)
        m = aligned_transform(box, landmarks, size, margin)
        if m is not None:
            return warp_face(image, m, size), m, True
    return crop_face(image, box, size, margin), box_transform(box, size, margin), False


def crop_faces(image: np.ndarray, boxes: np.ndarray, size: int, margin: float = DEFAULT_MARGIN,
               rule: str = "box", landmarks: np.ndarray | None = None) -> np.ndarray:
    """Crops for all boxes as one (N, size, size, 3) array; (0, size, size, 3) for no boxes.
    ``landmarks`` (N, 5, 2) are needed by the ``aligned`` rule (without them it cuts box crops)."""
    out = np.zeros((len(boxes), size, size, 3), image.dtype)
    for i, box in enumerate(boxes):
        out[i] = crop_face_by_rule(image, box, None if landmarks is None else landmarks[i], size, margin, rule)[0]
    return out


def landmarks_in_crops(boxes: np.ndarray, landmarks: np.ndarray, size: int, margin: float = DEFAULT_MARGIN,
                       rule: str = "box") -> np.ndarray:
    """The landmarks (N, 5, 2) in pixels of the crops cut by ``rule`` (NaN where there are none)."""
    out = np.full((len(boxes), 5, 2), np.nan, np.float32)
    for i, box in enumerate(boxes):
        lm = np.asarray(landmarks[i], np.float64)
        m = aligned_transform(box, lm, size, margin) if rule == "aligned" else None
        if m is None:
            m = box_transform(box, size, margin)
        out[i] = lm @ m[:, :2].T + m[:, 2]
    return out

"""Test clips made from the real clips of ../shared/data/videos (written to a temporary folder only).

* :func:`mask_on_off_clip`: a real unmasked man with a mask drawn on his face (a filled polygon over
  nose, mouth and chin placed from CenterFace's landmarks) on every frame except a stretch where
  "he takes it off".
* :func:`pasted_photo_clip`: a real clip with a real face photo pasted still into a corner (a
  picture on the wall) next to the clip's own moving face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MASK_BGR = (228, 208, 172)  # a light blue surgical mask
FOLD_BGR = (196, 176, 140)


def mask_polygon(box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A mask over nose, mouth and chin: from the nose bridge (below the eyes) to under the chin."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    eyes = landmarks[:2]
    nose = landmarks[2]
    mouth = landmarks[3:5].mean(axis=0)
    eye_y = float(eyes[:, 1].mean())
    top = eye_y + 0.4 * (nose[1] - eye_y)
    side_top = top + 0.15 * (nose[1] - eye_y)
    low = mouth[1] + 0.12 * h
    left, right = min(eyes[0, 0], eyes[1, 0]), max(eyes[0, 0], eyes[1, 0])
    pts = [
        (x1 + 0.04 * w, side_top), (left, top), (nose[0], top - 0.02 * h), (right, top), (x2 - 0.04 * w, side_top),
        (x2 - 0.06 * w, low), (nose[0] + 0.25 * w, y2 + 0.02 * h), (nose[0], y2 + 0.05 * h),
        (nose[0] - 0.25 * w, y2 + 0.02 * h), (x1 + 0.06 * w, low),
    ]
    return np.array(pts, np.float32)


def draw_mask(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> None:
    poly = mask_polygon(box, landmarks)
    cv2.fillPoly(image, [np.round(poly).astype(np.int32)], MASK_BGR, cv2.LINE_AA)
    x1, x2 = float(poly[:, 0].min()), float(poly[:, 0].max())
    y_top, y_low = float(poly[2, 1]), float(poly[5, 1])
    for k in (1, 2, 3):  # pleats
        y = round(y_top + k * (y_low - y_top) / 4)
        cv2.line(image, (round(x1 + 0.1 * (x2 - x1)), y), (round(x2 - 0.1 * (x2 - x1)), y), FOLD_BGR, 2, cv2.LINE_AA)


def read_frames(path: Path, size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
    cap.release()
    return frames, fps


def write_frames(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def mask_on_off_clip(data_dir: Path, detector, path: Path, off: tuple[float, float] = (2.4, 5.6),
                     size=(640, 360)) -> tuple[Path, float, list[bool]]:
    """unmasked_man_outdoors.mp4 at ``size`` with a drawn mask except from ``off[0]`` to ``off[1]`` seconds.

    Returns the clip, its fps and per frame whether the mask was drawn (False also where no face was found).
    """
    frames, fps = read_frames(data_dir / "videos" / "unmasked_man_outdoors.mp4", size)
    drawn = []
    for i, frame in enumerate(frames):
        t = i / fps
        dets = detector.detect(frame)
        masked = not (off[0] <= t < off[1]) and len(dets) > 0
        if masked:
            k = dets.largest()
            draw_mask(frame, dets.boxes[k], dets.landmarks[k])
        drawn.append(masked)
    return write_frames(path, frames, fps), fps, drawn


def pasted_photo_clip(data_dir: Path, detector, path: Path, photo_height: int = 120) -> tuple[Path, tuple, float]:
    """masked_woman_laptop.mp4 with a real unmasked face photo pasted still on the side away from her.

    Returns the clip, the pasted region (x1, y1, x2, y2) and the fps.
    """
    frames, region, fps = pasted_photo_frames(data_dir, detector, photo_height)
    return write_frames(path, frames, fps), region, fps


def pasted_photo_frames(data_dir: Path, detector, photo_height: int = 120,
                        margin: int = 20) -> tuple[list[np.ndarray], tuple, float]:
    """The frames of :func:`pasted_photo_clip`: the photo ``margin`` pixels from the top and the side edge."""
    frames, fps = read_frames(data_dir / "videos" / "masked_woman_laptop.mp4")
    _h, w = frames[0].shape[:2]
    first = detector.detect(frames[0])
    assert len(first), "no face in the first frame of masked_woman_laptop.mp4"
    her_x = float((first.boxes[first.largest()][0] + first.boxes[first.largest()][2]) / 2)
    photo = None
    for file in sorted((data_dir / "faces" / "without_mask").glob("*.jpg"))[:60]:
        image = cv2.imread(str(file))
        if image is None or min(image.shape[:2]) < 100:
            continue
        scale = photo_height / image.shape[0]
        candidate = cv2.resize(image, (round(image.shape[1] * scale), photo_height), interpolation=cv2.INTER_AREA)
        if candidate.shape[1] > w // 3:
            continue
        dets = detector.detect(candidate)
        if len(dets) == 1 and dets.sizes[0] >= 0.4 * photo_height:
            photo = candidate
            break
    assert photo is not None, "no unmasked photo with one clear face found"
    ph, pw = photo.shape[:2]
    x1 = margin if her_x > w / 2 else w - pw - margin
    y1 = margin
    for frame in frames:
        frame[y1:y1 + ph, x1:x1 + pw] = photo
    return frames, (x1, y1, x1 + pw, y1 + ph), fps


def hand_held(frames: list[np.ndarray], size: tuple[int, int], shake_px: float = 3.0, drift_px: float = 30.0,
              degrees: float = 1.0) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """``frames`` as a hand-held camera would film the same scene: a ``size`` window over each frame that
    shakes by a few pixels (``shake_px``, several frequencies), drifts slowly from one side to the other
    (``drift_px`` in all) and turns by up to ``degrees`` about its centre. Returns the new frames and, per
    frame, the window's top-left corner in the source frame (source x - corner x = window x)."""
    h, w = frames[0].shape[:2]
    cw, ch = size
    room_x, room_y = (w - cw) / 2, (h - ch) / 2
    assert room_x >= drift_px / 2 + 2 * shake_px and room_y >= 2 * shake_px, "the frames are too small to move in"
    out, corners = [], []
    n = len(frames)
    for i, frame in enumerate(frames):
        shake_x = shake_px * (0.6 * np.sin(0.9 * i) + 0.4 * np.sin(2.3 * i + 1.0))
        shake_y = shake_px * (0.5 * np.sin(1.3 * i + 0.5) + 0.5 * np.sin(0.7 * i + 2.0))
        x0 = room_x + drift_px * (i / max(n - 1, 1) - 0.5) + shake_x
        y0 = room_y + shake_y
        angle = degrees * np.sin(2 * np.pi * i / 60.0)
        turn = cv2.getRotationMatrix2D((x0 + cw / 2, y0 + ch / 2), angle, 1.0)
        turn[:, 2] -= (x0, y0)
        out.append(cv2.warpAffine(frame, turn, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        corners.append((float(x0), float(y0)))
    return out, corners

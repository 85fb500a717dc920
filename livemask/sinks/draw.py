"""Drawing results on frames: one ``annotate(scene, ...)`` for faces, one for the status overlay."""

from __future__ import annotations

import cv2
import numpy as np

from livemask.core.labels import display_name
from livemask.core.types import Detections, Predictions

# BGR colour per class name: green, red, amber; any other class is drawn in grey
CLASS_COLOURS = {"mask": (60, 200, 60), "no_mask": (40, 40, 230), "mask_incorrect": (0, 170, 255)}
OTHER_COLOUR = (160, 160, 160)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(name: str) -> tuple[int, int, int]:
    return CLASS_COLOURS.get(name, OTHER_COLOUR)


def put_label(image: np.ndarray, text: str, org: tuple[int, int], colour, scale: float = 0.5) -> None:
    """Text on a filled box whose bottom-left corner is ``org`` (kept inside the image)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    x = int(np.clip(org[0], 0, max(image.shape[1] - tw - 4, 0)))
    y = int(np.clip(org[1], th + base + 4, image.shape[0]))
    cv2.rectangle(image, (x, y - th - base - 4), (x + tw + 4, y), colour, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - base - 1), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


class FaceAnnotator:
    """Boxes coloured by class, with the label in words (``No mask``), probability and track id."""

    def __init__(self, thickness: int = 2, text_scale: float = 0.5):
        self.thickness = thickness
        self.text_scale = text_scale

    def annotate(self, scene: np.ndarray, detections: Detections, predictions: Predictions,
                 track_ids: np.ndarray | None = None) -> np.ndarray:
        """Draw on ``scene`` in place and return it."""
        scale = self.text_scale * max(1.0, scene.shape[1] / 960)
        for i, (box, label, prob) in enumerate(zip(detections.boxes, predictions.labels, predictions.confidences)):
            colour = class_colour(label)
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            cv2.rectangle(scene, (x1, y1), (x2, y2), colour, self.thickness, cv2.LINE_AA)
            text = f"{display_name(label)} {prob:.0%}"
            if track_ids is not None:
                text = f"#{int(track_ids[i])} {text}"
            put_label(scene, text, (x1, y1 - 2 if y1 > 20 else y2 + 20), colour, scale)
        return scene


def fit_lines(lines: list[str], max_width: int, scale: float) -> list[str]:
    """``lines`` wrapped at spaces to ``max_width`` pixels; a single word still too wide (a long path) keeps
    its end, after "...", so a message never runs past its box or the frame's edge."""
    def width(text: str) -> int:
        return cv2.getTextSize(text, FONT, scale, 1)[0][0]

    out: list[str] = []
    for text in lines:
        if width(text) <= max_width:
            out.append(text)
            continue
        current = ""
        for word in text.split(" "):
            if width(word) > max_width:
                while len(word) > 1 and width("..." + word) > max_width:
                    word = word[1:]
                word = "..." + word
            trial = f"{current} {word}" if current else word
            if current and width(trial) > max_width:
                out.append(current)
                current = word
            else:
                current = trial
        out.append(current)
    return out


def draw_status(scene: np.ndarray, lines: list[str]) -> np.ndarray:
    """Status lines (FPS, latency, counts) in the top-left corner, on a dark band; lines wider than the
    frame are wrapped (see :func:`fit_lines`)."""
    scale = 0.5 * max(1.0, scene.shape[1] / 960)
    lines = fit_lines(lines, scene.shape[1] - 10, scale)
    (_, th), base = cv2.getTextSize("Ag", FONT, scale, 1)
    step = th + base + 4
    width = max((cv2.getTextSize(t, FONT, scale, 1)[0][0] for t in lines), default=0) + 10
    band = scene[: step * len(lines) + 6, :width]
    band[:] = (band * 0.4).astype(scene.dtype)
    for k, text in enumerate(lines):
        cv2.putText(scene, text, (5, step * (k + 1)), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return scene


def count_line(counts: dict[str, int]) -> str:
    """``Mask: 2  No mask: 1``: per-class counts in words, for an overlay."""
    return "  ".join(f"{display_name(name)}: {n}" for name, n in counts.items())


def count_labels(predictions: Predictions) -> dict[str, int]:
    counts = {name: 0 for name in predictions.class_names}
    for label in predictions.labels:
        counts[label] += 1
    return counts


def draw_rec(image: np.ndarray) -> np.ndarray:
    """A red dot and "REC" in the top-right corner (a recording is being written)."""
    scale = 0.6 * max(1.0, image.shape[1] / 960)
    (tw, th), base = cv2.getTextSize("REC", FONT, scale, 2)
    r = max(th // 2, 4)
    x2, y = image.shape[1] - 8, 8 + th
    x1 = x2 - tw - 3 * r - 6
    band = image[max(y - th - 4, 0):y + base + 4, max(x1 - 4, 0):x2 + 4]
    band[:] = (band * 0.4).astype(image.dtype)
    cv2.circle(image, (x1 + r, y - th // 2), r, (0, 0, 230), cv2.FILLED, cv2.LINE_AA)
    cv2.putText(image, "REC", (x1 + 3 * r, y), FONT, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return image

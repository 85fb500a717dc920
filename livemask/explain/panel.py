"""The explanation panel: one row per face with the crop, one overlay per method and a legend.

Under each map: the method, then the map in words from :mod:`livemask.explain.words` (where it
looked, the trust headline, a warning when the map does worse than random, the deletion figures).
Text is drawn with the live window's own label helper (:func:`livemask.sinks.draw.put_label`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from livemask.core.labels import display_name
from livemask.explain.words import WARNING_SHORT, summarise
from livemask.sinks.draw import FONT, class_colour, put_label

BACKGROUND = (30, 30, 30)
WARN_COLOUR = (0, 90, 200)  # BGR: a dark orange box behind the warning
LINE = 14  # caption line height (pixels) at TEXT_SCALE
TEXT_SCALE = 0.4
TITLES = {"gradcam": "Grad-CAM", "occlusion": "Occlusion"}


@dataclass(frozen=True)
class FaceView:
    """What a panel row shows for one face: its crop, the predicted label and probability."""

    crop_bgr: np.ndarray
    label: str
    probability: float
    landmarks: np.ndarray | None = None  # (5, 2) in crop pixels, for the words (None: typical positions)
    number: str | None = None  # how the face is called ("#3": the live view's track id; None: "face <row>")


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.4, background=BACKGROUND) -> None:
    put_label(img, text, org, background, scale)


def wrap(text: str, width: int, scale: float = TEXT_SCALE) -> list[str]:
    """``text`` cut at spaces into lines no wider than ``width`` pixels (a longer word gets its own line)."""
    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(trial, FONT, scale, 1)[0][0] + 4 <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


class PanelRenderer:
    """One row per face: the crop, one overlay per method (caption: method, explained class, time,
    then the map in words: where it looked, the trust headline, a warning when it does worse than
    random, the deletion figures), and a colour-bar legend. Rows wrap into columns beyond
    ``rows_per_column``."""

    def __init__(self, tile: int = 160, alpha: float = 0.5, colormap: int = cv2.COLORMAP_JET,
                 rows_per_column: int = 4):
        self.tile = int(tile)
        self.alpha = float(alpha)
        self.colormap = colormap
        self.rows_per_column = rows_per_column
        self.pad = 8
        self.header = 24
        self.caption = 10 * LINE + 6  # title, 3 lines of where, 2 of trust, 2 of warning, 2 of figures

    def overlay(self, crop_bgr: np.ndarray, heat: np.ndarray, side: int | None = None) -> np.ndarray:
        """The crop with the map over it, ``side`` pixels square (default: the tile)."""
        t = int(side or self.tile)
        base = cv2.resize(crop_bgr, (t, t), interpolation=cv2.INTER_LINEAR)
        m = cv2.resize(np.clip(heat, 0, 1).astype(np.float32), (t, t), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap((m * 255).astype(np.uint8), self.colormap)
        return cv2.addWeighted(base, 1 - self.alpha, colour, self.alpha, 0)

    def legend(self, height: int) -> np.ndarray:
        bar_h = height - 30
        ramp = np.linspace(255, 0, bar_h).astype(np.uint8)[:, None].repeat(14, axis=1)
        out = np.full((height, 60, 3), BACKGROUND, np.uint8)
        out[15:15 + bar_h, 4:18] = cv2.applyColorMap(ramp, self.colormap)
        _text(out, "high", (19, 28), 0.35)
        _text(out, "low", (19, 16 + bar_h), 0.35)
        return out

    def row(self, face: FaceView, index: int, results: list) -> np.ndarray:
        t, pad = self.tile, self.pad
        width = pad + (1 + len(results)) * (t + pad) + 60
        height = self.header + t + self.caption
        out = np.full((height, width, 3), BACKGROUND, np.uint8)
        colour = class_colour(face.label)
        cv2.rectangle(out, (0, 0), (width, self.header - 4), colour, cv2.FILLED)
        name = face.number or f"face {index + 1}"
        _text(out, f"{name}: {display_name(face.label)} {face.probability:.0%}", (pad, self.header - 4), 0.5, colour)
        y0 = self.header
        out[y0:y0 + t, pad:pad + t] = cv2.resize(face.crop_bgr, (t, t), interpolation=cv2.INTER_LINEAR)
        _text(out, "input crop", (pad, y0 + t + 18))
        for k, res in enumerate(results):
            x0 = pad + (k + 1) * (t + pad)
            out[y0:y0 + t, x0:x0 + t] = self.overlay(face.crop_bgr, res.maps[index])
            target = display_name(res.class_names[int(res.targets[index])])
            _text(out, f"{TITLES.get(res.method, res.method)} [{target}] {res.ms_per_face:.0f} ms", (x0, y0 + t + 18))
            words = summarise(res, index, face.landmarks)
            lines = [(line, BACKGROUND) for line in wrap(words.looked_at, t)[:3]]
            lines += [(line, BACKGROUND) for line in wrap(words.headline, t)[:2]]
            if words.warning:
                lines += [(line, WARN_COLOUR) for line in wrap(WARNING_SHORT, t)[:2]]
            if res.faithfulness is not None:
                f = res.faithfulness
                lines += [(line, BACKGROUND) for line in wrap(
                    f"del {f.deletion_auc[index]:.2f} vs random {f.random_deletion_auc[index]:.2f} "
                    f"ins {f.insertion_auc[index]:.2f}", t)[:2]]
            for j, (line, bg) in enumerate(lines[:9]):
                y = y0 + t + 18 + LINE * (j + 1)
                if bg != BACKGROUND:  # a box exactly the line's height, so it covers no other line's text
                    tw = cv2.getTextSize(line, FONT, TEXT_SCALE, 1)[0][0]
                    cv2.rectangle(out, (x0, y - LINE + 1), (min(x0 + tw + 4, out.shape[1] - 61), y), bg, cv2.FILLED)
                cv2.putText(out, line, (x0 + 2, y - 3), FONT, TEXT_SCALE, (235, 235, 235), 1, cv2.LINE_AA)
        out[y0:y0 + t, width - 60:] = self.legend(t)
        return out

    TITLE_H = 26

    def row_size(self, n_methods: int) -> tuple[int, int]:
        """Width and height of one face's row (with its spacing) for ``n_methods`` maps."""
        return self.pad + (1 + n_methods) * (self.tile + self.pad) + 60 + 4, self.header + self.tile + self.caption + 4

    def fit(self, n_methods: int, max_w: int, max_h: int) -> tuple[int, int]:
        """Rows and columns of faces that fit in ``max_w`` x ``max_h`` pixels (at least one of each;
        rows at most ``rows_per_column``)."""
        rw, rh = self.row_size(n_methods)
        rows = max(1, min(self.rows_per_column, (max_h - self.TITLE_H) // rh))
        return rows, max(1, max_w // rw)

    def panel(self, faces: list[FaceView], results: list, title: str = "", start: int = 0,
              count: int | None = None, rows: int | None = None) -> np.ndarray:
        """The whole panel; ``results`` are :class:`Explanations` for the same faces, one per method.
        ``start`` / ``count``: only faces ``start .. start + count - 1`` (one page); ``rows``: faces per
        column (default ``rows_per_column``)."""
        title_h = self.TITLE_H
        if not faces:
            out = np.full((120, 420, 3), BACKGROUND, np.uint8)
            _text(out, title, (8, 22), 0.5)
            _text(out, "no faces to explain", (8, 72), 0.6)
            return out
        start = max(0, int(start))
        count = len(faces) if count is None else max(1, int(count))
        tiles = [self.row(faces[i], i, results) for i in range(start, min(len(faces), start + count))]
        rh, rw = tiles[0].shape[:2]
        per_column = max(1, rows or self.rows_per_column)
        ncol = int(np.ceil(len(tiles) / per_column))
        nrow = min(len(tiles), per_column)
        width = max(ncol * (rw + 4), cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] + 16)
        out = np.full((title_h + nrow * (rh + 4), width, 3), 20, np.uint8)
        _text(out, title, (8, 22), 0.5, (20, 20, 20))
        for i, r in enumerate(tiles):
            c, k = divmod(i, per_column)
            y, x = title_h + k * (rh + 4), c * (rw + 4)
            out[y:y + rh, x:x + rw] = r
        return out

"""The Site page's tiles as one image: several cameras' tile images laid out in a grid and encoded as one JPEG.

The page gets one mosaic per update over ``WS /v1/cameras/tiles`` (:mod:`livemask.web.site`) with each tile's
place in it, and draws every tile's slice into that tile's own canvas: one message, one JPEG decode and one
image for the whole grid instead of one request, one decode and one image per tile (docs/cameras.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

COLUMNS = 4  # tiles per row of the mosaic (a 1280 px wide JPEG for 320 px tiles)


@dataclass(frozen=True)
class Place:
    """Where one tile is in the mosaic, in pixels."""

    x: int
    y: int
    w: int
    h: int


def layout(sizes: list[tuple[int, int]], columns: int = COLUMNS) -> tuple[list[Place], int, int]:
    """Places for tiles of ``sizes`` (width, height), row by row, ``columns`` a row; each column as wide as the
    widest tile, each row as tall as its tallest; and the mosaic's width and height (0, 0 for no tile)."""
    if not sizes:
        return [], 0, 0
    columns = max(1, min(int(columns), len(sizes)))
    cell_w = max(w for w, _ in sizes)
    places, y = [], 0
    for start in range(0, len(sizes), columns):
        row = sizes[start:start + columns]
        places += [Place(i * cell_w, y, w, h) for i, (w, h) in enumerate(row)]
        y += max(h for _, h in row)
    return places, cell_w * columns, y


def compose(images: list[np.ndarray], quality: int = 80, columns: int = COLUMNS) -> tuple[bytes, list[Place]]:
    """One JPEG of the BGR ``images`` laid out by :func:`layout`, and each image's place in it."""
    if not images:
        raise ValueError("a mosaic needs at least one tile")
    places, width, height = layout([(im.shape[1], im.shape[0]) for im in images], columns)
    canvas = np.zeros((height, width, 3), np.uint8)
    for im, p in zip(images, places, strict=True):
        canvas[p.y:p.y + p.h, p.x:p.x + p.w] = im
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("mosaic: JPEG encoding failed")
    return buf.tobytes(), places

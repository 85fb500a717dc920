"""Reading images and bringing any frame to the one layout the pipeline uses: BGR uint8."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import InputImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def as_bgr8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as (H, W, 3) uint8 BGR.

    Accepts grayscale (H, W) or (H, W, 1), BGR, BGRA, uint8, uint16 (scaled by 1/257)
    and float images in [0, 1]. Anything else is refused with a message saying what
    was expected and what came.
    """
    if not isinstance(image, np.ndarray):
        raise InputImageError(f"{name}: expected a numpy image, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputImageError(
            f"{name}: expected (H, W), (H, W, 3) or (H, W, 4) image, got shape {tuple(image.shape)}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputImageError(f"{name}: empty image of shape {tuple(image.shape)}")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        if not np.isfinite(image).all():
            raise InputImageError(f"{name}: float image holds NaN or infinity")
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputImageError(f"{name}: expected dtype uint8, uint16 or float, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8, or raise InputImageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputImageError(f"{path}: not a readable image")
    return as_bgr8(image, str(path))


def list_images(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (sorted, non-recursive) into a list of image paths.

    Files are kept whatever their suffix, so that a bad file is reported, not skipped.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out

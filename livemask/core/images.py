"""Reading images and bringing any frame to the one layout the pipeline uses: BGR uint8."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import ConfigError, InputImageError
from livemask.core.imagesize import header_size

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
    if image.dtype == np.uint16:  # one uint8 copy, no float32 one (4x smaller peak on large images)
        image = cv2.convertScaleAbs(image, alpha=1.0 / 257.0)
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


DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "LIVEMASK_MAX_PIXELS"
BYTES_PER_PIXEL_LIMIT = 8  # a file larger than max_pixels * this (+1 MiB) cannot be an image within the limit
_limit = {"max_pixels": DEFAULT_MAX_PIXELS}


@dataclass(frozen=True)
class ImageLimits:
    """The ``images`` section of config.yaml: the largest image (in pixels) livemask decodes.

    The width and height in a file's header are checked before decoding, so a small file
    that would decode to gigabytes (a decompression bomb) is refused at once. The same
    value is given to OpenCV (``OPENCV_IO_MAX_IMAGE_PIXELS``) for formats whose header
    livemask does not read. ``LIVEMASK_MAX_PIXELS`` in the environment overrides the
    config file; ``--set images.max_pixels=N`` overrides both.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise ConfigError(f"images.max_pixels must be a positive integer, got {self.max_pixels!r}")

    def apply(self) -> None:
        set_max_pixels(self.max_pixels)


def set_max_pixels(max_pixels: int) -> None:
    """Set the pixel limit for :func:`read_image` (and OpenCV's, if it has not decoded yet)."""
    _limit["max_pixels"] = int(max_pixels)
    # OpenCV reads this once, at its first decode; livemask's CLI sets it before any image is read
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(int(max_pixels))


def max_pixels() -> int:
    return _limit["max_pixels"]


def check_image_header(path: Path, fh) -> None:
    """Refuse a file whose header (or size) says it decodes to more than the pixel limit."""
    limit = _limit["max_pixels"]

    def read(offset: int, n: int) -> bytes:
        fh.seek(offset)
        return fh.read(n)

    size = header_size(read)
    if size is not None:
        w, h = size
        if w * h > limit:
            raise InputImageError(
                f"{path}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of {limit / 1e6:g} "
                f"(images.max_pixels in the config, or {MAX_PIXELS_ENV}); not decoded"
            )
    file_size = os.fstat(fh.fileno()).st_size
    if file_size > limit * BYTES_PER_PIXEL_LIMIT + (1 << 20):
        raise InputImageError(f"{path}: {file_size / 1e6:.0f} MB is larger than an image within the pixel limit "
                              f"of {limit / 1e6:g} megapixels can be; not read")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8, or raise InputImageError naming the file.

    The header is checked against the pixel limit (:class:`ImageLimits`) before anything
    is decoded; any decoder failure is one line naming the file.
    """
    path = Path(path)
    if not path.is_file():  # a FIFO or device would block or never end: only regular files are read
        raise InputImageError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    try:
        with path.open("rb") as fh:
            check_image_header(path, fh)
            fh.seek(0)
            data = np.fromfile(fh, dtype=np.uint8)
    except OSError as err:
        raise InputImageError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as err:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(err):
            raise InputImageError(f"{path}: over the pixel limit of {_limit['max_pixels'] / 1e6:g} megapixels "
                                  "(checked by OpenCV); not decoded") from None
        raise InputImageError(f"{path}: not a readable image ({cv_message(err)})") from None
    except MemoryError:
        raise InputImageError(f"{path}: not enough memory to decode this image") from None
    del data
    if image is None:
        raise InputImageError(f"{path}: not a readable image")
    return as_bgr8(image, str(path))


def cv_message(err: Exception) -> str:
    """The useful part of an OpenCV error (its text, or the assertion it failed), on one short line."""
    text = str(err)
    text = re.sub(r" ?in function '[^\n]*'(?=\n|$)", "", text)  # C++ signatures say nothing to a user
    text = re.sub(r"OpenCV\([^)]*\) \S+:\d+: error: ", "", text)
    text = re.sub(r"\(-?\d+:[^)]*\)\s*", "", text, count=1)
    text = " ".join(re.sub(r"\n>?", " ", text).split())
    return text.lstrip("> ")[:160] or "OpenCV error"


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


set_max_pixels(DEFAULT_MAX_PIXELS)  # the CLI then applies the config / LIVEMASK_MAX_PIXELS value

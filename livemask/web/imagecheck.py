"""Uploaded bytes -> BGR image, with the pixel count checked from the header *before* decoding,
and the :class:`DecodeBudget` that bounds how much image memory all requests decode at once.

The header is read by :func:`livemask.core.imagesize.header_size`, the same reader the command
line uses (``livemask image``), so the server and the CLI agree on every file's size.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from livemask.core.images import as_bgr8
from livemask.core.imagesize import Reader
from livemask.core.imagesize import header_size as file_header_size

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000 x 5000
DEFAULT_DECODE_BUDGET = 256 * 1024 * 1024  # bytes of uploads and decoded pixels held at once by all requests
RETRY_AFTER_S = 1
FORMATS = ("PNG", "JPEG", "BMP", "WebP")


class UploadImageError(ValueError):
    """The upload is not an image we accept; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 415, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def image_format(data: bytes) -> str | None:
    """The upload's format from its first bytes (one of :data:`FORMATS`), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def header_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the header only, or None for anything else."""
    fmt = image_format(data)
    if fmt is None:
        return None
    size = file_header_size(lambda offset, n: data[offset:offset + n])
    return None if size is None else (fmt, int(size[0]), int(size[1]))


def checked_size(data: bytes | Reader, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header of ``data`` (the bytes, or a ``read(offset, n)`` function);
    :class:`UploadImageError` 415 for what is not an image of a supported format, 413 for too many pixels."""
    read = data if callable(data) else (lambda offset, n: data[offset:offset + n])
    fmt = image_format(read(0, 16))
    if fmt is None:
        raise UploadImageError(f"not an image (supported: {', '.join(FORMATS)})")
    size = file_header_size(read)
    if size is None:
        raise UploadImageError(f"{fmt} header cannot be read")
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise UploadImageError(f"{fmt} header gives an empty image ({w}x{h})")
    if w * h > max_pixels:
        raise UploadImageError(f"{fmt} image of {w}x{h} = {w * h} pixels is over the limit of {max_pixels}", 413)
    return w, h


def file_reader(fh) -> Reader:
    """A ``read(offset, n)`` function over a seekable binary file."""
    def read(offset: int, n: int) -> bytes:
        fh.seek(offset)
        return fh.read(n)

    return read


def decode_upload(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Check the header's pixel count, then decode (EXIF orientation applied, as browsers show it).

    Raises :class:`UploadImageError`: 415 for anything that is not a decodable image of a
    supported format, 413 for too many pixels. The type is decided by the bytes, never by
    a file name or a client's content type.
    """
    checked_size(data, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UploadImageError(f"{image_format(data)} header but the image cannot be decoded")
    return as_bgr8(image, "upload")


def decode_cost(size: int, width: int, height: int) -> int:
    """Bytes an upload of ``size`` bytes holds while it is decoded and analysed: its size plus 3 per pixel."""
    return int(size) + 3 * int(width) * int(height)


class DecodeBudget:
    """How many bytes of uploads and decoded images all requests hold at once (thread-safe).

    :meth:`take` never waits: past the budget it raises :class:`UploadImageError` 503 with a
    Retry-After, so a flood of uploads is answered at once instead of queueing in memory. One
    upload larger than the whole budget still runs when nothing else is held (never starved).
    """

    def __init__(self, max_bytes: int = DEFAULT_DECODE_BUDGET):
        if max_bytes <= 0:
            raise ValueError(f"decode budget must be positive, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.in_use = 0
        self.refused = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, cost: int) -> Ticket:
        with self._lock:
            if self.in_use and self.in_use + cost > self.max_bytes:
                self.refused += 1
                raise UploadImageError(f"busy: other images are being decoded (budget {self.max_bytes >> 20} MB); "
                                       f"retry in {RETRY_AFTER_S} s", 503, RETRY_AFTER_S)
            self.in_use += cost
            self.peak = max(self.peak, self.in_use)
        return Ticket(self, cost)

    def give_back(self, cost: int) -> None:
        with self._lock:
            self.in_use -= cost

    def summary(self) -> dict:
        return {"budget_mb": round(self.max_bytes / 2**20, 1), "in_use_mb": round(self.in_use / 2**20, 1),
                "peak_mb": round(self.peak / 2**20, 1), "refused": self.refused}


class Ticket:
    """A share of the :class:`DecodeBudget`, given back once (context manager or :meth:`release`)."""

    def __init__(self, budget: DecodeBudget, cost: int):
        self.budget, self.cost = budget, cost

    def release(self) -> None:
        if self.cost:
            self.budget.give_back(self.cost)
            self.cost = 0

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

"""Uploaded bytes -> BGR image, with the pixel count checked from the header *before* decoding.

TEMPORARY: :func:`header_size` is a small check of our own until the shared pixel-limit
header check lands in :mod:`livemask.core.images` (input hardening); then replace
:func:`header_size` and :data:`DEFAULT_MAX_PIXELS` by the shared ones and keep
:func:`decode_upload` as the one place the web package decodes client images.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from livemask.core.images import as_bgr8

DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000 x 5000
FORMATS = ("PNG", "JPEG", "BMP", "WebP")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class UploadImageError(ValueError):
    """The upload is not an image we accept; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 415):
        super().__init__(message)
        self.status = status


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def header_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) read from the file header only, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return "PNG", w, h
    if data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
        return ("JPEG", *size) if size else None
    if data.startswith(b"BM") and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return "BMP", abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return "WebP", w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return "WebP", 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8X":
            return "WebP", 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def decode_upload(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Check the header's pixel count, then decode (EXIF orientation applied, as browsers show it).

    Raises :class:`UploadImageError`: 415 for anything that is not a decodable image of a
    supported format, 413 for too many pixels. The type is decided by the bytes, never by
    a file name or a client's content type.
    """
    found = header_size(data)
    if found is None:
        raise UploadImageError(f"not an image (supported: {', '.join(FORMATS)})")
    fmt, w, h = found
    if w <= 0 or h <= 0:
        raise UploadImageError(f"{fmt} header gives an empty image ({w}x{h})")
    if w * h > max_pixels:
        raise UploadImageError(f"{fmt} image of {w}x{h} = {w * h} pixels is over the limit of {max_pixels}", 413)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UploadImageError(f"{fmt} header but the image cannot be decoded")
    return as_bgr8(image, "upload")

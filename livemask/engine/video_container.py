"""What a video file's container says about itself, read from its structure, not decoded.

OpenCV's ``CAP_PROP_FRAME_COUNT`` is exact only for containers that index every frame
(MP4/MOV and AVI); for Matroska/WebM, MPEG-TS and the rest it is ``duration x fps``, an
estimate that is wrong for variable frame rate video. So a video that ends before that
count is *truncated* only when the container itself says it is longer than the file:
:func:`truncation` compares the sizes the container declares (Matroska's Segment size,
RIFF chunk sizes, the ISO BMFF top-level boxes) with the file's size.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
MATROSKA_SEGMENT = b"\x18\x53\x80\x67"


def kind(path: str | Path) -> str:
    """'isobmff' (MP4/MOV/3GP), 'avi', 'matroska' (MKV/WebM) or 'other'."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return "other"
    if head[4:8] == b"ftyp":
        return "isobmff"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == EBML_MAGIC:
        return "matroska"
    return "other"


def frame_count_is_exact(path: str | Path) -> bool:
    """True when the container indexes every frame, so OpenCV's frame count is a count."""
    return kind(path) in ("isobmff", "avi")


def _vint(fh) -> tuple[int | None, int]:
    """A Matroska variable-length size: (value or None for "unknown size", bytes used)."""
    first = fh.read(1)
    if not first:
        raise EOFError
    b = first[0]
    length = 1
    while length <= 8 and not b & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML size")
    value = b & (0xFF >> length)
    rest = fh.read(length - 1)
    if len(rest) != length - 1:
        raise EOFError
    all_ones = value == (0xFF >> length)
    for byte in rest:
        value = (value << 8) | byte
        all_ones = all_ones and byte == 0xFF
    return (None if all_ones else value), length


def declared_size(path: str | Path) -> int | None:
    """The number of bytes the container says the file has, or None when it does not say."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            k = kind(path)
            if k == "matroska":
                fh.seek(4)
                header_size, _ = _vint(fh)
                if header_size is None:
                    return None
                fh.seek(header_size, 1)
                if fh.read(4) != MATROSKA_SEGMENT:
                    return None
                seg_size, _ = _vint(fh)
                return None if seg_size is None else fh.tell() + seg_size
            if k == "avi":
                pos = 0
                while pos + 8 <= size:  # RIFF 'AVI ' then RIFF 'AVIX' chunks for files over 1 GB
                    fh.seek(pos)
                    tag, chunk = struct.unpack("<4sI", fh.read(8))
                    if tag != b"RIFF":
                        break
                    pos += 8 + chunk + (chunk & 1)
                return pos
            if k == "isobmff":
                pos = 0
                while pos + 8 <= size:
                    fh.seek(pos)
                    box, _typ = struct.unpack(">I4s", fh.read(8))
                    if box == 1:
                        box = struct.unpack(">Q", fh.read(8))[0]
                    elif box == 0:  # to the end of the file
                        return max(pos, size)
                    if box < 8:
                        return None
                    pos += box
                return pos
    except (OSError, EOFError, ValueError, struct.error):
        return None
    return None


def truncation(path: str | Path) -> str | None:
    """A short reason when the container declares more bytes than the file has, else None."""
    declared = declared_size(path)
    if declared is None:
        return None
    try:
        actual = os.path.getsize(path)
    except OSError:
        return None
    if declared > actual:
        return f"the container declares {declared} bytes, the file has {actual}"
    return None

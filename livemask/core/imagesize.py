"""Width and height of an image file from its header, without decoding it.

Used to refuse decompression bombs (a 2 MB PNG that decodes to 30000 x 30000 pixels)
before any pixel memory is allocated. Reads only the header bytes it needs through a
``read(offset, n) -> bytes`` function. Knows PNG/APNG, JPEG, BMP, GIF, WebP, TIFF and
BigTIFF, PNM/PAM/PFM, Sun raster, Radiance HDR, JPEG 2000 (jp2 and codestream), OpenEXR
and AVIF/HEIF. :func:`header_size` returns ``None`` for a format it does not know or a
header it cannot parse; the caller then relies on OpenCV's own pixel limit, which
livemask sets to the same value (``OPENCV_IO_MAX_IMAGE_PIXELS``).

For formats that hold several images (TIFF pages, GIF frames) the largest size found
in the first few headers is returned.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

Reader = Callable[[int, int], bytes]

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, 0xD8, *range(0xD0, 0xD8)}
MAX_HEADER_SCAN = 4 << 20  # never read more than this many bytes looking for a header


def header_size(read: Reader) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when the format is not known here."""
    head = read(0, 64)
    for test, parse in _PARSERS:
        if test(head):
            try:
                return parse(read)
            except (struct.error, ValueError, IndexError):
                return None
    return None


def _u16be(b: bytes, o: int) -> int:
    return struct.unpack_from(">H", b, o)[0]


def _png(read: Reader):
    b = read(0, 24)
    if b[12:16] != b"IHDR":
        return None
    return struct.unpack_from(">II", b, 16)


def _jpeg(read: Reader):
    pos, best = 2, None
    while pos < MAX_HEADER_SCAN:
        b = read(pos, 2)
        if len(b) < 2:
            return best
        if b[0] != 0xFF:
            return best
        marker = b[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            pos += 2
            continue
        if marker == 0xD9 or marker == 0xDA:  # end of image / start of scan: no SOF after this matters
            return best
        seg = read(pos + 2, 7)
        if len(seg) < 2:
            return best
        length = _u16be(seg, 0)
        if marker in _JPEG_SOF and len(seg) >= 7:
            h, w = _u16be(seg, 3), _u16be(seg, 5)
            best = (w, h) if best is None else (max(w, best[0]), max(h, best[1]))
            return best
        pos += 2 + length
    return best


def _bmp(read: Reader):
    b = read(0, 26)
    dib = struct.unpack_from("<I", b, 14)[0]
    if dib == 12:
        w, h = struct.unpack_from("<HH", b, 18)
    else:
        w, h = struct.unpack_from("<ii", b, 18)
    return abs(w), abs(h)


def _gif(read: Reader):
    b = read(0, 10)
    w, h = struct.unpack_from("<HH", b, 6)
    return w, h


def _webp(read: Reader):
    b = read(0, 30)
    kind = b[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack_from("<HH", b, 26)
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L":
        bits = struct.unpack_from("<I", b, 21)[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8X":
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    return None


def _tiff(read: Reader):
    b = read(0, 16)
    end = "<" if b[:2] == b"II" else ">"
    big = struct.unpack_from(end + "H", b, 2)[0] == 43
    offset = struct.unpack_from(end + ("Q" if big else "I"), b, 8 if big else 4)[0]
    best = None
    for _page in range(8):  # the first pages; OpenCV decodes the first
        if not offset or offset > 1 << 40:
            break
        count_size, entry_size = (8, 20) if big else (2, 12)
        n = struct.unpack(end + ("Q" if big else "H"), read(offset, count_size))[0]
        n = min(n, 4096)
        entries = read(offset + count_size, n * entry_size + (8 if big else 4))
        w = h = None
        for i in range(n):
            e = entries[i * entry_size:(i + 1) * entry_size]
            if len(e) < entry_size:
                break
            tag, typ = struct.unpack_from(end + "HH", e, 0)
            if tag not in (256, 257):
                continue
            value_at = 12 if big else 8
            if typ == 3:
                v = struct.unpack_from(end + "H", e, value_at)[0]
            elif typ == 4:
                v = struct.unpack_from(end + "I", e, value_at)[0]
            elif typ == 16:
                v = struct.unpack_from(end + "Q", e, value_at)[0]
            else:
                continue
            if tag == 256:
                w = v
            else:
                h = v
        if w is not None and h is not None:
            best = (w, h) if best is None else (max(w, best[0]), max(h, best[1]))
        tail = entries[n * entry_size:]
        offset = struct.unpack_from(end + ("Q" if big else "I"), tail, 0)[0] if len(tail) >= (8 if big else 4) else 0
    return best


_PNM_TOKENS = re.compile(rb"(?:\s|#[^\n]*\n)*(\d+)")


def _pnm(read: Reader):
    b = read(0, 4096)
    if b[:2] == b"P7":
        w = re.search(rb"\nWIDTH\s+(\d+)", b)
        h = re.search(rb"\nHEIGHT\s+(\d+)", b)
        return (int(w.group(1)), int(h.group(1))) if w and h else None
    pos, values = 2, []
    for _ in range(2):
        m = _PNM_TOKENS.match(b, pos)
        if not m:
            return None
        values.append(int(m.group(1)))
        pos = m.end()
    return values[0], values[1]


def _sun(read: Reader):
    return struct.unpack_from(">II", read(0, 12), 4)


def _hdr(read: Reader):
    b = read(0, 8192)
    m = re.search(rb"\n\s*[-+]([XY])\s+(\d+)\s+[-+]([XY])\s+(\d+)", b)
    if not m:
        return None
    first, second = int(m.group(2)), int(m.group(4))
    return (second, first) if m.group(1) == b"Y" else (first, second)


def _jp2(read: Reader):
    b = read(0, 4096)
    if b[:4] == b"\xff\x4f\xff\x51":  # raw codestream: SIZ right after SOC
        xs, ys, xo, yo = struct.unpack_from(">IIII", b, 8)
        return xs - xo, ys - yo
    i = b.find(b"ihdr")
    if i < 0:
        return None
    h, w = struct.unpack_from(">II", b, i + 4)
    return w, h


def _exr(read: Reader):
    b = read(0, 65536)
    i = b.find(b"dataWindow\x00box2i\x00")
    if i < 0:
        return None
    j = i + len(b"dataWindow\x00box2i\x00") + 4
    x0, y0, x1, y1 = struct.unpack_from("<iiii", b, j)
    return x1 - x0 + 1, y1 - y0 + 1


def _heif(read: Reader):
    b = read(0, 65536)
    best, i = None, b.find(b"ispe")
    while i >= 0:
        w, h = struct.unpack_from(">II", b, i + 8)
        best = (w, h) if best is None else (max(w, best[0]), max(h, best[1]))
        i = b.find(b"ispe", i + 4)
    return best


_PARSERS: list[tuple[Callable[[bytes], bool], Callable[[Reader], tuple[int, int] | None]]] = [
    (lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", _png),
    (lambda h: h[:2] == b"\xff\xd8", _jpeg),
    (lambda h: h[:2] == b"BM", _bmp),
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), _gif),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", _webp),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _tiff),
    (lambda h: len(h) > 2 and h[:1] == b"P" and h[1:2] in b"1234567" and h[2:3].isspace(), _pnm),
    (lambda h: h[:2] in (b"PF", b"Pf") and h[2:3].isspace(), _pnm),
    (lambda h: h[:4] == b"\x59\xa6\x6a\x95", _sun),
    (lambda h: h[:10] == b"#?RADIANCE" or h[:6] == b"#?RGBE", _hdr),
    (lambda h: h[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or h[:4] == b"\xff\x4f\xff\x51", _jp2),
    (lambda h: h[:4] == b"\x76\x2f\x31\x01", _exr),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"), _heif),
]

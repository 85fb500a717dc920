"""Issue 10 cause 5: decompression bombs are refused from the header, one line each, and the batch goes on."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from conftest import MODEL, ROOT
from livehelpers import read_code

from livemask.core.errors import InputImageError
from livemask.core.images import DEFAULT_MAX_PIXELS, read_image, set_max_pixels
from livemask.core.imagesize import header_size
from livemask.engine.capture import Capture
from livemask.engine.sources import FolderSource

RSS_LIMIT_MB = 1536


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(w: int, h: int) -> bytes:
    """A real, valid grey PNG of w x h zero pixels: a few MB that decode to w*h bytes."""
    comp = zlib.compressobj(1)
    block = bytes((w + 1) * 256)  # 256 rows: filter byte 0 + zeros
    parts = [comp.compress(block) for _ in range(h // 256)]
    parts += [comp.compress(bytes((w + 1) * (h % 256))), comp.flush()]
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def jpeg_with_late_sof(w: int, h: int, app_bytes: int = 5 << 20) -> bytes:
    """A real JPEG claiming w x h whose frame header comes after more APP data than livemask's
    header scan reads, so only OpenCV's own pixel limit (which livemask sets to the same value)
    can refuse it."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((16, 24, 3), np.uint8))[1].tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    app = b"\xff\xe1" + struct.pack(">H", 65535) + bytes(65533)
    return bytes(data[:2]) + app * (app_bytes // len(app) + 1) + bytes(data[2:])


def livemask_measured(*args, env=None, timeout=300):
    """Run the CLI under a small wrapper that reports the child's peak RSS (MB) as its last stdout line."""
    wrapper = ("import resource, subprocess, sys\n"
               "p = subprocess.run([sys.executable, '-m', 'livemask', *sys.argv[1:]], stdin=subprocess.DEVNULL)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
               "sys.exit(p.returncode)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)
    *out, rss = proc.stdout.splitlines()
    return proc, "\n".join(out), int(rss)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("livemask: error:")]


def test_png_bomb_and_a_file_over_opencvs_limit_are_refused_and_the_batch_goes_on(tmp_path, astronaut_bgr):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(30000, 30000))
    assert bomb.stat().st_size < 4 << 20  # a few MB that would decode to 900 MB (2.7 GB as BGR)
    late = tmp_path / "late.jpg"
    late.write_bytes(jpeg_with_late_sof(60000, 60000))
    assert header_size(lambda o, n: late.read_bytes()[o:o + n]) is None  # beyond livemask's header scan
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), astronaut_bgr)
    proc, stdout, rss_mb = livemask_measured("image", bomb, late, good, "--json", "--out", tmp_path / "o",
                                             "--set", f"classifier.model_path={MODEL}")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _errors(proc.stderr) == [
        f"livemask: error: {bomb}: 30000x30000 is 900.0 megapixels, over the limit of 50 (images.max_pixels in "
        "the config, or LIVEMASK_MAX_PIXELS); not decoded",
        f"livemask: error: {late}: over the pixel limit of 50 megapixels (checked by OpenCV); not decoded",
    ]
    assert [json.loads(line)["path"] for line in stdout.splitlines()] == [str(good)]
    assert rss_mb <= RSS_LIMIT_MB, f"peak RSS {rss_mb} MB"


def test_pixel_limit_from_the_environment_and_from_set(tmp_path, astronaut_bgr):
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), astronaut_bgr)
    env = dict(os.environ, LIVEMASK_MAX_PIXELS="100000")  # astronaut is 512x512 = 262144 pixels
    proc, _out, _rss = livemask_measured("image", good, "--out", tmp_path / "o", "--set",
                                         f"classifier.model_path={MODEL}", env=env)
    assert proc.returncode == 1 and _errors(proc.stderr) == [
        f"livemask: error: {good}: 512x512 is 0.3 megapixels, over the limit of 0.1 (images.max_pixels in the "
        "config, or LIVEMASK_MAX_PIXELS); not decoded"]
    # --set wins over the environment
    proc, _out, _rss = livemask_measured("image", good, "--out", tmp_path / "o", "--set",
                                         f"classifier.model_path={MODEL}", "--set", "images.max_pixels=300000",
                                         env=env)
    assert proc.returncode == 0, proc.stderr
    proc, _out, _rss = livemask_measured("image", good, "--out", tmp_path / "o", "--set", "images.max_pixels=-5")
    assert proc.returncode == 2 and _errors(proc.stderr) == [
        "livemask: error: images.max_pixels must be a positive integer, got -5"]


def _patched(ext: str, w: int, h: int) -> bytes:
    """A small real image of format ``ext`` whose header is rewritten to claim w x h."""
    img = np.zeros((16, 24, 3), np.uint8)
    data = bytearray(cv2.imencode(ext, img)[1].tobytes())
    if ext == ".png":
        data[16:24] = struct.pack(">II", w, h)
    elif ext == ".jpg":
        i = data.index(b"\xff\xc0")
        data[i + 5:i + 9] = struct.pack(">HH", h, w)
    elif ext == ".bmp":
        data[18:26] = struct.pack("<ii", w, -h)  # top-down BMP: negative height
    elif ext == ".gif":
        data[6:10] = struct.pack("<HH", w, h)
    elif ext == ".webp":
        if data[12:16] == b"VP8L":  # lossless: 14-bit (size - 1) fields after the 0x2f signature
            bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)
            data[21:25] = struct.pack("<I", bits | (w - 1) | ((h - 1) << 14))
        else:
            data[26:30] = struct.pack("<HH", w, h)
    elif ext == ".tiff":
        data[:] = _tiff_header(w, h)
    elif ext == ".ppm":
        data[:] = f"P6\n# comment\n{w} {h}\n255\n".encode() + bytes(30)
    return bytes(data)


def _tiff_header(w: int, h: int) -> bytes:
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".gif", ".webp", ".tiff", ".ppm"])
def test_bomb_headers_of_every_format_are_refused_before_decoding(tmp_path, ext):
    path = tmp_path / f"big{ext}"
    w, h = (16000, 16000) if ext == ".webp" else (60000, 60000) if ext in (".gif", ".jpg") else (100000, 90000)
    path.write_bytes(_patched(ext, w, h))
    with pytest.raises(InputImageError, match=rf"{w}x{h} is .* megapixels, over the limit of 50 .*not decoded"):
        read_image(path)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm", ".pgm", ".pfm", ".ras", ".hdr",
                                 ".jp2", ".gif", ".avif", ".pam"])
def test_header_size_matches_what_opencv_decodes(ext):
    img = np.random.default_rng(0).integers(0, 255, (123, 457, 3), dtype=np.uint8)
    src = img[:, :, 0] if ext == ".pgm" else img.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else img
    try:
        ok, buf = cv2.imencode(ext, src)
        assert ok
    except cv2.error:
        pytest.skip(f"this OpenCV build cannot write {ext}")
    data = buf.tobytes()
    assert header_size(lambda o, n: data[o:o + n]) == (457, 123)


def test_limit_is_exact_and_configurable(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((100, 200, 3), np.uint8))
    try:
        set_max_pixels(20000)
        assert read_image(path).shape == (100, 200, 3)
        set_max_pixels(19999)
        with pytest.raises(InputImageError, match="200x100 is 0.0 megapixels, over the limit"):
            read_image(path)
    finally:
        set_max_pixels(DEFAULT_MAX_PIXELS)


def test_folder_source_skips_a_bomb_and_reads_the_rest(tmp_path):
    for i in range(3):
        img = np.zeros((240, 320, 3), np.uint8)
        from livehelpers import draw_code

        draw_code(img, i)
        cv2.imwrite(str(tmp_path / f"img_{i}.png"), img)
    (tmp_path / "img_0b.png").write_bytes(_patched(".png", 30000, 30000))  # between the first two
    capture = Capture(FolderSource(tmp_path)).start()
    frames = list(capture)
    capture.stop()
    assert [read_code(f.image) for f in frames] == [0, 1, 2] and capture.stats.skipped == 1

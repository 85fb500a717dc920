"""Test helpers for several cameras: H.264 clips made with ffmpeg and a real RTSP server (tests/rtsp_server.py).

The server runs as its own process under Debian's ``/usr/bin/python3`` (GStreamer's GObject bindings
are not importable from the virtualenv); it is skipped with a reason when missing, a failure on CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"
GST_PACKAGES = ("gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
                "gstreamer1.0-plugins-ugly gstreamer1.0-libav")


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; the Makefile's APT_PACKAGES must install it")
    pytest.skip(what)


def require_rtsp_server() -> None:
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer")
    if not Path(SYSTEM_PYTHON).is_file() or subprocess.run([SYSTEM_PYTHON, "-c", probe],
                                                          capture_output=True).returncode != 0:
        _missing(f"GStreamer's RTSP server is not installed for {SYSTEM_PYTHON} (apt-get install {GST_PACKAGES})")
    if shutil.which("ffmpeg") is None:
        _missing("ffmpeg is not installed (apt-get install ffmpeg)")


def make_clip(source: Path, path: Path, seconds: float, fps: float = 15, size: tuple[int, int] = (640, 480)) -> Path:
    """``source`` looped to ``seconds``, letterboxed to ``size`` at ``fps``, H.264 with a key frame every second."""
    w, h = size
    scale = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
             f"fps={fps},format=yuv420p")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", str(seconds),
                    "-vf", scale, "-c:v", "libx264", "-preset", "ultrafast", "-g", str(int(fps)), "-an", str(path)],
                   check=True, timeout=120)
    return path


@contextmanager
def rtsp_server(clip: Path, port: int = 0, timeout: float = 20.0):
    """A running server for ``clip``; yields (process, url). Stopped (SIGTERM, then killed) on exit."""
    proc = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(clip), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()  # the READY line, or nothing when it died
        if not line.startswith("READY ") or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"RTSP server did not start: {line!r} {proc.stderr.read()[-500:]!r}")
        yield proc, line.split()[1]
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])

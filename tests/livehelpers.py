"""Helpers for the video tests: test clips built from skimage's astronaut, a real MJPEG server,
reading videos back, and running the CLI in a subprocess."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("LIVEMASK_TEST_MODEL", ROOT / "models" / "mask_classifier.keras"))

CODE_BITS = 10
CODE_CELL = 16


def astronaut_bgr() -> np.ndarray:
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def draw_code(image: np.ndarray, value: int) -> None:
    """Write ``value`` as CODE_BITS black/white cells along the bottom-right edge."""
    h, w = image.shape[:2]
    for bit in range(CODE_BITS):
        x = w - (bit + 1) * CODE_CELL
        on = (value >> bit) & 1
        image[h - CODE_CELL:h, x:x + CODE_CELL] = 255 if on else 0


def read_code(image: np.ndarray) -> int:
    h, w = image.shape[:2]
    value = 0
    for bit in range(CODE_BITS):
        x = w - (bit + 1) * CODE_CELL
        cell = image[h - CODE_CELL + 4:h - 4, x + 4:x + CODE_CELL - 4]
        value |= int(cell.mean() > 127) << bit
    return value


def clip_frame(base: np.ndarray, i: int, size=(320, 240)) -> np.ndarray:
    """Frame ``i``: a window sliding slowly over the astronaut (the face stays in view), code drawn in."""
    w, h = size
    scaled = cv2.resize(base, (int(base.shape[1] * 0.9), int(base.shape[0] * 0.9)))
    max_x = scaled.shape[1] - w
    x = int(max_x * (0.5 + 0.5 * np.sin(i / 25.0))) if max_x > 0 else 0
    y = 0
    frame = np.zeros((h, w, 3), np.uint8)
    patch = scaled[y:y + h, x:x + w]
    frame[: patch.shape[0], : patch.shape[1]] = patch
    draw_code(frame, i)
    return frame


def write_clip(path: Path, frames: int, fps: float = 30.0, size=(320, 240)) -> Path:
    suffix = path.suffix.lower()
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened(), f"cannot write {path}"
    base = astronaut_bgr()
    for i in range(frames):
        writer.write(clip_frame(base, i, size))
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not a playable video"
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def video_info(path: Path) -> tuple[int, int, float]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not a playable video"
    info = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return info


def read_events(path: Path) -> tuple[list[dict], dict | None]:
    """The frame lines and the summary of an event log (alert lines: :func:`read_alerts`)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    summary = lines[-1]["summary"] if lines and "summary" in lines[-1] else None
    return [x for x in lines if "summary" not in x and "alert" not in x], summary


def read_alerts(path: Path) -> list[dict]:
    """The ``{"alert": ...}`` records of an event log, in order."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [x["alert"] for x in lines if "alert" in x]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "livemask", "run", "--set", f"classifier.model_path={MODEL}", *args]


def run_cli(*args: str, timeout: float = 240, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


class MjpegServer:
    """A real MJPEG-over-HTTP server on 127.0.0.1 (multipart/x-mixed-replace), stoppable and restartable
    on the same port. Frames are the astronaut clip at ``fps``."""

    def __init__(self, fps: float = 30.0, size=(320, 240)):
        self.fps = fps
        self.size = size
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None
        self.stopping = threading.Event()
        self.sent = 0
        self.base = astronaut_bgr()

    def _handler(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                while not owner.stopping.is_set():
                    _ok, buf = cv2.imencode(".jpg", clip_frame(owner.base, owner.sent, owner.size))
                    part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(buf)
                            + buf.tobytes() + b"\r\n")
                    try:
                        self.wfile.write(part)
                        self.wfile.flush()
                    except OSError:
                        return
                    owner.sent += 1
                    time.sleep(1.0 / owner.fps)

        return Handler

    def start(self) -> MjpegServer:
        self.stopping.clear()
        server_cls = type("Server", (http.server.ThreadingHTTPServer,), {"daemon_threads": True,
                                                                         "allow_reuse_address": True})
        self.server = server_cls(("127.0.0.1", self.port), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """End every open stream and stop listening (connections are refused until start())."""
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


# -- X windows under Xvfb (xdotool) ---------------------------------------------------------------------------
def window_ids(env: dict, name: str, pid: int | None = None) -> list[str]:
    """X ids of the windows named exactly ``name`` (of process ``pid`` if given), oldest first."""
    args = ["xdotool", "search", "--all", *(["--pid", str(pid)] if pid else []), "--name", f"^{name}$"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=20).stdout.split()


def find_window(env: dict, proc: subprocess.Popen, name: str = "livemask", timeout: float = 120) -> str:
    """The newest window of ``proc`` named ``name``; fails if the process exits or none shows in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"livemask exited early ({proc.returncode}): {proc.communicate()[1]}")
        ids = window_ids(env, name, proc.pid)
        if ids:
            return ids[-1]
        time.sleep(0.2)
    raise AssertionError(f"no window named {name!r} within {timeout} s")


def send_keys(env: dict, proc: subprocess.Popen, name: str, *keys: str, timeout: float = 10.0) -> None:
    """Send ``keys`` to the window of process ``proc`` named ``name``.

    Qt replaces a window's X id at times (when it takes the size of its first frame, or when another
    of its windows opens), so the window is looked up again at every try, newest first, until one
    takes the keys or ``timeout`` passes. A key that ends the process may be reported as failed (its
    window went away under xdotool): once the process has exited, this returns, and the caller checks
    how it ended."""
    deadline, error = time.monotonic() + timeout, "no such window"
    while True:
        for wid in reversed(window_ids(env, name, proc.pid)):
            sent = subprocess.run(["xdotool", "key", "--window", wid, *keys], env=env, capture_output=True,
                                  text=True, timeout=20)
            if sent.returncode == 0:
                return
            error = (sent.stderr.strip().splitlines() or [f"exit {sent.returncode}"])[-1]
        if proc.poll() is not None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"xdotool key {' '.join(keys)} to {name!r} failed for {timeout} s: {error}")
        time.sleep(0.2)


SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)/")


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """A private Xvfb (1280x800x24, no TCP) and its display (":N", a free number it picks itself).
    ``-noreset``: a server that resets when its last client leaves refuses connections meanwhile
    (docs/known-issues.md)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        display = fh.readline().strip()
    return proc, f":{display}"


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``; its exit status."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def start_serve(*args: str, env: dict | None = None, cwd: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """``livemask serve --port 0 ARGS`` (without ``LIVEMASK_TOKEN`` unless ``env`` has it) and its base URL
    once it listens; a server that does not start is stopped and the check fails with its last words."""
    env = env if env is not None else {k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    line = proc.stdout.readline()
    m = SERVING.search(line)
    if not m:
        stop_process(proc)
        raise AssertionError(f"serve did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, m.group(1)

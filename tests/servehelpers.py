"""Helpers for the ``serve`` tests: a real uvicorn server in a thread, images as upload bytes,
a real Chromium through Playwright, and screenshots of page states when an assertion fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LIVEMASK_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("LIVEMASK_SCREENSHOT_DIR", ROOT / "out" / "test-screenshots"))


def encode(image: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class ServerThread:
    """uvicorn serving ``app`` on a free port of ``host`` in a background thread (``config``: a
    ``uvicorn.Config`` of ``app`` to use instead of the default one).

    ``url`` always points at 127.0.0.1: traffic never leaves the machine even when the
    server is bound to 0.0.0.0 (only done to check the token rule).
    """

    def __init__(self, app, host: str = "127.0.0.1", config=None):
        import uvicorn

        self.sock = listening_socket(host)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = config or uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # not the main thread (older uvicorn)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


def masked_photos(data_dir: Path, detector, limit: int = 6) -> list[tuple[str, bytes]]:
    """(name, bytes) of val-split masked photos in which the detector finds a face."""
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders

    out = []
    for item in [f for f in load_face_folders(data_dir / "faces", split="val") if f.label == "with_mask"][::12]:
        if len(detector.detect(read_image(item.path))):
            out.append((item.path.name, item.path.read_bytes()))
        if len(out) == limit:
            break
    return out


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} missing: make system-deps installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return CHROMIUM


@contextlib.contextmanager
def page_state(page, name: str):
    """Save a screenshot of the page as ``SCREENSHOTS/<name>.png`` when the block fails
    (or always, when LIVEMASK_SCREENSHOT_ALWAYS=1), then re-raise."""
    try:
        yield
    except BaseException:
        _shot(page, name + "-FAILED")
        raise
    if os.environ.get("LIVEMASK_SCREENSHOT_ALWAYS") == "1":
        _shot(page, name)


def _shot(page, name: str) -> None:
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    except Exception as err:  # a screenshot must never hide the real failure
        print(f"screenshot {name} failed: {err}")

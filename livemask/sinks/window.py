"""The live OpenCV window: showing results, the key map, snapshots and the explanation hook.

Keys: ``q`` quit; ``Esc`` closes the explanation window if it is open, else quits;
``space`` pause/resume; ``s`` save a snapshot PNG (and the explanation panel, if open);
``g`` Grad-CAM, ``o`` occlusion, ``e`` both, for the faces of the frame on screen.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.types import FrameResult
from livemask.engine.pipeline import Percentiles
from livemask.engine.sink import RunInfo
from livemask.sinks.render import Renderer
from livemask.sinks.winwatch import ClosedWatch

log = logging.getLogger(__name__)

ESC = 27
KEYMAP = {
    ord("q"): "quit",
    ESC: "escape",
    ord(" "): "pause",
    ord("s"): "snapshot",
    ord("g"): "gradcam",
    ord("o"): "occlusion",
    ord("e"): "all",
}


def check_display() -> None:
    """Refuse early, with one line, when no window can be opened (Qt would abort the process)."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return
    if os.environ.get("WAYLAND_DISPLAY"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise LivemaskError("no display to open a window on (DISPLAY is not set); use --headless")
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
        raise LivemaskError(f"no X server at DISPLAY={display}; use --headless")


class LiveWindow:
    """One OpenCV window, the engine's display sink (main thread); :meth:`handle_key` turns keys into actions.

    ``explain``: a function that makes the explanation session on the first g / o / e key
    (an ImportError there is shown as "explanations unavailable"); None: no explanations.
    ``renderer``: draws a result (:class:`~livemask.sinks.render.Renderer`).
    In a live run a result older than ``max_display_age_ms`` is not shown (counted as stale).
    """

    threaded = False

    def __init__(self, name: str, snapshot_dir: str | Path, explain: Callable[[], object] | None = None,
                 renderer: Renderer | None = None, max_display_age_ms: float = 100.0):
        self.title = name
        self.name = "window"
        self.explain_factory = explain
        self.snapshot_dir = Path(snapshot_dir)
        self.renderer = renderer or Renderer()
        self.max_display_age_ms = float(max_display_age_ms)
        self.live = False
        self.stale = 0
        self.shown_latency = Percentiles()
        self.paused = False
        self.session = None  # ExplainSession, created on the first explanation key
        self._watch = ClosedWatch(name, after_s=1.0)
        self._explain_missing: str | None = None
        self._message: tuple[str, float] | None = None  # (text, expiry)
        self.shown: np.ndarray | None = None  # last annotated image on screen
        self.result: FrameResult | None = None  # the result it shows

    # -- the sink side (engine) ------------------------------------------------------------
    def open(self, info: RunInfo | None = None) -> None:
        self.live = bool(info is not None and info.live)
        check_display()
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar
        except cv2.error as err:
            raise LivemaskError(f"cannot open a window ({str(err).strip().splitlines()[-1]}); use --headless") from None
        self._start_session()  # the explainer builds and compiles in the background, before the first key

    def _start_session(self) -> bool:
        """Create the explanation session once; False (with the reason kept) when explanations are unavailable."""
        if self.session is not None:
            return True
        if self.explain_factory is None and self._explain_missing is None:
            self._explain_missing = "explanations unavailable in this run"
        if self._explain_missing is not None:
            return False
        try:
            self.session = self.explain_factory()
        except ImportError as err:
            self._explain_missing = f"explanations unavailable ({err})"
            return False
        return True

    def write(self, result: FrameResult) -> None:
        """Draw and show ``result`` (in a live run, unless it is already too old to be worth showing)."""
        if self.live and (time.monotonic() - result.frame.timestamp) * 1000.0 > self.max_display_age_ms:
            self.stale += 1
            return
        self.show(self.renderer.render(result, self.overlay_lines()), result)
        self.shown_latency.add((time.monotonic() - result.frame.timestamp) * 1000.0)

    def poll(self, wait_ms: int) -> bool:
        """Keys, the paused overlay and the explanation window; False when the user ends the run."""
        key = self.wait_key(wait_ms)
        if key != -1 and self.handle_key(key) == "quit":
            return False
        if self.paused and self.result is not None:  # keep the overlay (PAUSED, explain status) current
            self.show(self.renderer.render(self.result, self.overlay_lines(), tick=False), self.result)
        if self.closed_by_user():
            log.info("window closed")
            return False
        self.update()
        return True

    def stats(self) -> dict:
        return {"stale_not_shown": self.stale, "capture_to_display_ms": self.shown_latency.summary()}

    def show(self, image: np.ndarray, result: FrameResult) -> None:
        self.shown, self.result = image, result
        cv2.imshow(self.title, image)

    def wait_key(self, ms: int) -> int:
        key = cv2.waitKey(max(int(ms), 1))
        return -1 if key == -1 else key & 0xFF

    def closed_by_user(self) -> bool:
        """True when the window was closed with its title-bar button."""
        return self._watch.closed()

    def say(self, text: str, seconds: float = 3.0) -> None:
        log.info("%s", text)
        self._message = (text, time.monotonic() + seconds)

    def overlay_lines(self) -> list[str]:
        lines = []
        if self.paused:
            lines.append("PAUSED (space to resume)")
        if self.session is not None and getattr(self.session, "status", None):
            lines.append(str(self.session.status))
        if self._message and time.monotonic() < self._message[1]:
            lines.append(self._message[0])
        return lines

    # -- keys -----------------------------------------------------------------------------
    def handle_key(self, key: int) -> str | None:
        """Do what ``key`` asks; returns "quit" when the loop should end, "pause" on toggling."""
        action = KEYMAP.get(key)
        if action is None:
            return None
        if action == "quit":
            return "quit"
        if action == "escape":
            if self.session is not None and self.session.is_open:
                self.session.close()
                return None
            return "quit"
        if action == "pause":
            self.paused = not self.paused
            self.say("paused" if self.paused else "resumed", 1.0)
            return "pause"
        if action == "snapshot":
            self.snapshot()
            return None
        self.explain(action)
        return None

    def snapshot(self) -> Path | None:
        if self.shown is None:
            self.say("nothing to save yet")
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        frame_id = self.result.frame.frame_id if self.result is not None else 0
        path = self.snapshot_dir / f"livemask-{stamp}-f{frame_id:06d}.png"
        if not cv2.imwrite(str(path), self.renderer.for_snapshot(self.shown, self.result)):  # privacy: blurred faces
            self.say(f"could not write {path}")
            return None
        saved = [str(path)]
        if self.session is not None and self.session.is_open:
            panel = self.session.save(self.snapshot_dir)
            if panel is not None:
                saved.append(str(panel))
        self.say("saved " + ", ".join(saved))
        return path

    def explain(self, method: str) -> None:
        if self.result is None:
            self.say("no frame to explain yet")
            return
        if not self._start_session():
            self.say(self._explain_missing)
            return
        self.say(self.session.request(self.result, method))

    def update(self) -> None:
        """Once per loop: let the explanation session refresh its window.

        A failed explanation is shown and logged; the live view goes on.
        """
        if self.session is not None:
            try:
                self.session.update()
            except LivemaskError as err:
                log.error("explanation failed: %s", err)
                self.say(f"explanation failed: {err}", 6.0)

    def close(self, summary: dict | None = None) -> None:
        if self.session is not None:
            try:
                self.session.shutdown()
            except Exception as err:  # closing must not hide the run's result
                log.warning("explanation session did not shut down cleanly: %s", err)
        try:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        except cv2.error:
            pass

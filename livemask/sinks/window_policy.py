"""The live window's policy: when a window counts as closed, where the explanation panel goes, and how
snapshots are named. X access itself is :mod:`livemask.sinks.x11`.

Everything here that touches OpenCV's windows runs on the display (main) thread.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import cv2

from livemask.sinks.x11 import XWindows, screen_size

GAP = 8  # pixels between the live view and the explanation panel
X_CHECK_S = 0.1  # how often ClosedWatch asks the X server whether the window still exists


class ClosedWatch:
    """Tells when the user closed an OpenCV window (its title-bar button, the window manager, xdotool).

    Once the window has been seen, it counts as closed
    * at once when OpenCV no longer knows it (a window manager's close: Qt deleted it, and
      ``getWindowProperty`` raises);
    * at once when its X window is gone (destroyed by another client, ``xdotool windowclose``: Qt goes
      on reporting it as visible; checked through :class:`XWindows` when X is the display);
    * after ``after_s`` when it stays invisible (Qt under X reports a window as not visible before the
      window system has mapped it and, for a moment, while another window of the process comes or
      goes; neither is a close).
    """

    def __init__(self, name: str, after_s: float = 0.3):
        self.name = name
        self.after_s = after_s
        self._x: XWindows | None = None
        self._x_checked = 0.0
        self.reset()

    def reset(self) -> None:
        """Forget the window's history (call when it is created again)."""
        self._seen = False
        self._hidden_since: float | None = None
        if self._x is not None:
            self._x.forget()

    def closed(self) -> bool:
        try:
            visible = cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # OpenCV has no window of that name any more
            return self._seen
        if visible:
            self._seen = True
            self._hidden_since = None
            if self._x is None and os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
                self._x = XWindows(self.name)
            now = time.monotonic()
            if self._x is None or now - self._x_checked < X_CHECK_S:  # one X round trip per X_CHECK_S at most
                return False
            self._x_checked = now
            return self._x.gone()
        if not self._seen:
            return False
        now = time.monotonic()
        if self._hidden_since is None:
            self._hidden_since = now
        return now - self._hidden_since >= self.after_s

    def close(self) -> None:
        """Drop the X connection of the check (the window is gone for good)."""
        if self._x is not None:
            self._x.close()
            self._x = None


def snapshot_base(frame_id: int) -> str:
    """The one naming scheme of the live window's snapshots: ``livemask-YYYYmmdd-HHMMSS-f000123``
    (the frame snapshot adds ``.png``, the explanation panel ``-explain.png``)."""
    return f"livemask-{time.strftime('%Y%m%d-%H%M%S')}-f{int(frame_id):06d}"


@dataclass(frozen=True)
class Area:
    """Where a panel may go: its top-left corner and the most it may cover (0: no limit). ``corner``:
    no free space beside the live view, so the panel goes into the bottom-right corner of this area."""

    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    corner: bool = False

    def origin(self, size: tuple[int, int]) -> tuple[int, int]:
        """The top-left corner for a panel of ``size`` (width, height)."""
        if not self.corner:
            return self.x, self.y
        return max(0, self.x + self.width - size[0]), max(0, self.y + self.height - size[1])


def panel_area(beside: str | None, min_size: tuple[int, int] = (400, 240)) -> Area:
    """The space for the explanation panel next to the window named ``beside``: to its right when at
    least ``min_size`` fits there on the screen, else below it, else over the bottom-right part of the
    screen (the live view's status lines are at its top left). ``Area()`` when the screen is unknown."""
    screen = screen_size()
    if beside is None or screen is None:
        return Area()
    sw, sh = screen
    try:
        x, y, w, h = cv2.getWindowImageRect(beside)
    except cv2.error:
        x = y = w = h = 0
    x, y = max(0, x), max(0, y)
    right = sw - (x + w) - GAP
    below = sh - (y + h) - GAP
    if right >= min_size[0]:
        return Area(x + w + GAP, y, right, sh - y)
    if below >= min_size[1]:
        return Area(x, y + h + GAP, sw - x, below)
    return Area(sw // 3, sh // 3, sw - sw // 3, sh - sh // 3, corner=True)

"""Telling when the user closed an OpenCV window with its title-bar button."""

from __future__ import annotations

import time

import cv2


class ClosedWatch:
    """A window counts as closed once it has been visible and then stays invisible for ``after_s``.

    Qt under X reports a window as not visible before the window system has mapped it and,
    for a moment, while another window of the process comes or goes; neither is a close.
    """

    def __init__(self, name: str, after_s: float = 0.3):
        self.name = name
        self.after_s = after_s
        self.reset()

    def reset(self) -> None:
        """Forget the window's history (call when it is created again)."""
        self._seen = False
        self._hidden_since: float | None = None

    def closed(self) -> bool:
        try:
            visible = cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        if visible:
            self._seen = True
            self._hidden_since = None
            return False
        if not self._seen:
            return False
        now = time.monotonic()
        if self._hidden_since is None:
            self._hidden_since = now
        return now - self._hidden_since >= self.after_s

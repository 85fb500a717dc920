"""The live window's policy: when a window counts as closed and how snapshots are named. X access itself
is :mod:`livemask.sinks.x11`.

Everything here that touches OpenCV's windows runs on the display (main) thread.
"""

from __future__ import annotations

import os
import time

import cv2

from livemask.sinks.x11 import XWindows

X_CHECK_S = 0.1  # how often ClosedWatch asks the X server whether the window still exists


class ClosedWatch:
    """Tells when the user closed an OpenCV window (its title-bar button, the window manager, xdotool).

    Once the window has been seen, it counts as closed
    * at once when OpenCV no longer knows it (a window manager's close: Qt deleted it, and
      ``getWindowProperty`` raises);
    * at once when its X window is gone (destroyed by another client, ``xdotool windowclose``: Qt goes
      on reporting it as visible; checked through :class:`XWindows` when X is the display);
    * after ``after_s`` when it stays invisible (Qt under X reports a window as not visible before the
      window system has mapped it, and for a moment while it is resized; neither is a close).
    """

    def __init__(self, name: str, after_s: float = 1.0):
        self.name = name
        self.after_s = after_s
        self._x: XWindows | None = None
        self._x_checked = 0.0
        self._seen = False
        self._hidden_since: float | None = None

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



class PaintCheck:
    """Tells whether the X server shows an OpenCV window's picture, and maps the window again when it does not.

    On a busy X server without a window manager, Qt (xcb) sometimes handles no ``MapNotify`` for a new
    window, so it never paints it (docs/known-issues.md). :meth:`check` is called once per display loop
    with the picture last sent; ``after_s`` after the first call, and again that long after each remap,
    it reads the window's pixels (one ``GetImage``). A window all of one colour while the picture is not
    counts as unpainted: it is unmapped and mapped again (:meth:`XWindows.remap`), at most ``tries``
    times. Once the window shows its picture, nothing more is checked. ``state``: "waiting", "painted",
    "remapped" (waiting to see whether that cured it), "gave up", or "off" (no X connection).
    """

    def __init__(self, name: str, after_s: float = 1.0, tries: int = 2):
        self.name = name
        self.after_s = after_s
        self.tries = tries
        self.remaps = 0
        self.state = "waiting"
        self._x: XWindows | None = None
        self._due: float | None = None

    def check(self, shown) -> str:
        if self.state in ("painted", "gave up", "off") or shown is None:
            return self.state
        now = time.monotonic()
        if self._due is None:
            self._due = now + self.after_s
            return self.state
        if now < self._due:
            return self.state
        if self._x is None:
            if not os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
                self.state = "off"
                return self.state
            self._x = XWindows(self.name)
        height, width = shown.shape[:2]
        pixels = self._x.pixels(width, height)
        self._due = now + self.after_s
        if pixels is None:  # no window of that size yet (Qt resizes it to the first frame): look again later
            return self.state
        if pixels.std() >= 1.0 or shown.std() < 5.0:
            self.state = "painted"
            self.close()
        elif self.remaps >= self.tries:
            self.state = "gave up"
            self.close()
        elif self._x.remap():
            self.remaps += 1
            self.state = "remapped"
        return self.state

    def check_logged(self, shown, what: str, log) -> str:
        """:meth:`check`, with what it did told to ``log`` as a warning about ``what`` ("the window")."""
        before = self.state
        state = self.check(shown)
        if state == before:
            return state
        if state == "remapped":
            log.warning("%s is not painted (all one colour on the X server): mapped again (%d/%d)",
                        what, self.remaps, self.tries)
        elif state == "painted" and self.remaps:
            log.warning("%s is painted after %d remap(s)", what, self.remaps)
        elif state == "gave up":
            log.warning("%s is still not painted after %d remap(s) (docs/known-issues.md)", what, self.remaps)
        return state

    def close(self) -> None:
        if self._x is not None:
            self._x.close()
            self._x = None

"""The live OpenCV window: showing results, the key map, snapshots and the explanation hook.

Keys: ``q`` quits; ``Esc`` closes or cancels the explanation (open, computing or waiting) and
quits only when no explanation was asked for since the last Esc (see :meth:`LiveWindow.escape`);
``space`` pause/resume; ``s`` saves a snapshot PNG (and the explanation panel, when one is shown);
``g`` Grad-CAM, ``o`` occlusion, ``e`` both, for the faces of the frame on screen; ``]`` / ``[``
the next / previous page of faces in the explanation panel.

The explanation panel is shown **inside this window**, in place of the live view, with footer lines
under it (the keys; the status lines: computing, paused, messages); Esc brings the live view back. No
second window is ever created: a new Qt window could stay unpainted on a busy X server
(docs/known-issues.md). The run goes on behind the panel (every sink gets every result); the newest
frame waits for the panel to close. The panel's space is the live view's size, at least
:data:`MIN_PANEL` (within the screen) so that a small frame still gets a readable panel.
The window of several cameras (:mod:`livemask.sinks.site_window`) shows the panel the same way, in place
of its tiles.

The window closed by its title-bar button or the window manager ends the run like ``q``.
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

from livemask.core.errors import DisplayError, LivemaskError, exception_line
from livemask.core.output_paths import write_image
from livemask.core.types import FrameResult
from livemask.engine.pipeline import Percentiles
from livemask.engine.sink import RunInfo
from livemask.sinks.draw import FONT, fit_lines
from livemask.sinks.render import Renderer
from livemask.sinks.window_policy import ClosedWatch, PaintCheck, snapshot_base
from livemask.sinks.x11 import on_lost_connection, probe_x_display, screen_size

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
    ord("]"): "next_page",
    ord("["): "previous_page",
}
EXPLAIN_ACTIONS = ("gradcam", "occlusion", "all")
GAP = 4  # pixels around the explanation panel (and between the tiles of several cameras)
FOOTER_LINES = 3  # under the panel (and the tiles): the keys, then the status / message lines (wrapped)
LINE_H = 22
PANEL_BG = 18  # the grey around the panel and behind the footer
MIN_PANEL = (800, 600)  # the least space (width, height) the panel gets, screen permitting
SCREEN_MARGIN = (40, 80)  # room left on the screen around the window (title bar, panels' edge)
PANEL_KEYS = "EXPLANATION - Esc: back to the live view   ] [ pages   s save   q quit"


def check_display() -> None:
    """Refuse early, with one line, when no window can be opened (Qt would abort the process, exit 134).

    With ``DISPLAY`` set, the X server is asked for a connection as Qt will ask (libxcb): a refused or
    missing server is one line here, never Qt's abort."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return
    if os.environ.get("WAYLAND_DISPLAY"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise DisplayError("no display to open a window on (DISPLAY is not set); use --headless")
    try:
        checked = probe_x_display(display)
    except ConnectionError as err:
        raise DisplayError(f"cannot connect to the X server at DISPLAY={display} ({err}); use --headless") from None
    if checked is None:  # no libxcb to ask with: at least the local socket must be there
        local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
        if local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
            raise DisplayError(f"no X server at DISPLAY={display}; use --headless")


def panel_origin(shape: tuple[int, ...], size: tuple[int, int]) -> tuple[int, int]:
    """Where the explanation panel of ``shape`` (height, width, ...) goes in an area of ``size`` (width,
    height): centred across, at the top, within the outer gap."""
    return max(0, (size[0] - shape[1]) // 2), min(GAP, max(0, size[1] - shape[0]))


class LiveWindow:
    """One OpenCV window, the engine's display sink (main thread); :meth:`handle_key` turns keys into actions.

    ``explain``: a function that makes the explanation session on the first g / o / e key
    (an ImportError there is shown as "explanations unavailable"); None: no explanations.
    ``renderer``: draws a result (:class:`~livemask.sinks.render.Renderer`).
    In a live run a result older than ``max_display_age_ms`` is not shown (counted as stale).
    ``keys``: a key policy replacing the key map (kiosk mode: :class:`~livemask.sinks.kiosk.QuitSequence`),
    called with each key, returning "quit" to end the run or None. ``fullscreen``: the window fills the
    screen (the image is scaled to fit, keeping its aspect ratio; a renderer with ``fit_screen(size)``
    is told the screen's size).
    ``snapshot_overlay``: snapshots include the status and message lines shown on screen
    (default: the annotated frame as the recording has it, without them).
    """

    threaded = False

    def __init__(self, name: str, snapshot_dir: str | Path, explain: Callable[[], object] | None = None,
                 renderer: Renderer | None = None, max_display_age_ms: float = 100.0,
                 keys: Callable[[int], str | None] | None = None, fullscreen: bool = False,
                 snapshot_overlay: bool = False):
        self.title = name
        self.keys = keys
        self.fullscreen = bool(fullscreen)
        self.name = "window"
        self.explain_factory = explain
        self.snapshot_dir = Path(snapshot_dir)
        self.renderer = renderer or Renderer()
        self.max_display_age_ms = float(max_display_age_ms)
        self.snapshot_overlay = bool(snapshot_overlay)
        self.live = False
        self.stale = 0
        self.shown_latency = Percentiles()
        self.paused = False
        self.ended_by: str | None = None  # why poll() ended the run: "user" (q, Esc) or "window closed"
        self.session = None  # ExplainSession, created when the window opens (or on the first explanation key)
        self._explained = False  # an explanation key was pressed since the last Esc
        self._lost: Callable[[], int] | None = None
        self._disarm: Callable[[], None] = lambda: None
        self._watch = ClosedWatch(name, after_s=1.0)
        self._paint = PaintCheck(name)  # a window X never painted is mapped again (docs/known-issues.md)
        self._on_screen: np.ndarray | None = None  # the picture last sent to the window
        self._explain_missing: str | None = None
        self._message: tuple[str, float] | None = None  # (text, expiry)
        self.shown: np.ndarray | None = None  # last annotated image on screen
        self.result: FrameResult | None = None  # the result it shows (the newest, while a panel is shown)
        self._panel_space: tuple[int, int] | None = None  # the panel's space, fixed at each explanation key
        self._panel_look: tuple | None = None  # the panel and footer on screen (None: the live view)

    def when_lost(self, callback: Callable[[], int]) -> None:
        """Call ``callback`` if the X connection is lost while the window is open (see
        :func:`~livemask.sinks.x11.on_lost_connection`; the process then exits with its return value)."""
        self._lost = callback

    # -- the sink side (engine) ------------------------------------------------------------
    def open(self, info: RunInfo | None = None) -> None:
        self.live = bool(info is not None and info.live)
        check_display()
        try:
            if self.fullscreen:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
                cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
                size = screen_size()  # without a window manager the property alone does not resize it
                if size is not None:
                    cv2.moveWindow(self.title, 0, 0)
                    cv2.resizeWindow(self.title, *size)
                    if hasattr(self.renderer, "fit_screen"):  # the kiosk screen is drawn at the screen's size
                        self.renderer.fit_screen(size)
            else:
                cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar
        except cv2.error as err:
            raise DisplayError(f"cannot open a window ({exception_line(err, last=True, with_type=False)}); "
                               "use --headless") from None
        self._start_session()  # the explainer builds and compiles in the background, before the first key
        if self._lost is not None:  # after Qt's X11 plugin is loaded: this handler runs before Qt's own
            self._disarm = on_lost_connection(self._lost)

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
        if self.panel is not None:  # the panel is on screen: the newest frame waits behind it (g explains it)
            self.result = result
            return
        self.show(self.renderer.render(result, self.overlay_lines()), result)
        self.shown_latency.add((time.monotonic() - result.frame.timestamp) * 1000.0)

    def poll(self, wait_ms: int) -> bool:
        """Keys, the paused overlay and the explanation panel; False when the user ends the run
        (``q``, Esc, or the window closed), checked before anything is shown again."""
        key = self.wait_key(wait_ms)
        if key != -1 and self.handle_key(key) == "quit":
            self.ended_by = "user"
            return False
        if self.closed_by_user():  # before the next imshow, which would create the window again
            log.info("window closed")
            self.ended_by = "window closed"
            return False
        self.update()
        self.refresh()
        self.check_paint()
        return True

    def refresh(self) -> None:
        """Show the panel while one is open (again only when it or its footer changed), the live view again
        as soon as it closes (a paused or ended source sends no new frame), and keep the paused overlay
        (PAUSED, explain status) current."""
        panel = self.panel
        if panel is not None:
            look = (id(panel), tuple(self.footer_lines()))
            if look != self._panel_look:
                self._panel_look = look
                self.imshow(self.panel_screen(panel))
            return
        if (self._panel_look is not None or self.paused) and self.result is not None:
            self.show(self.renderer.render(self.result, self.overlay_lines(), tick=False), self.result)
        self._panel_look = None

    def _farewell(self) -> None:
        """A renderer with an end screen (the kiosk's) shows it for its hold time when a file has played
        to its end, instead of a window that just vanishes; the key policy's quit still ends it at once."""
        end_screen = getattr(self.renderer, "end_screen", None)
        if end_screen is None or self.closed_by_user():
            return
        from livemask.sinks.kiosk import END_HOLD_S

        log.info("the video has ended")
        try:
            self.imshow(end_screen())
            deadline = time.monotonic() + END_HOLD_S
            while time.monotonic() < deadline and not self.closed_by_user():
                key = self.wait_key(50)
                if key != -1 and self.handle_key(key) == "quit":
                    break
        except cv2.error:
            pass

    def stats(self) -> dict:
        return {"stale_not_shown": self.stale, "capture_to_display_ms": self.shown_latency.summary()}

    # -- the explanation panel, in place of the live view -------------------------------------------
    @property
    def panel(self) -> np.ndarray | None:
        """The explanation panel shown in place of the live view (or the tiles), or None."""
        return getattr(self.session, "panel", None) if self.session is not None else None

    def panel_size(self) -> tuple[int, int]:
        """The panel's space (width, height): the live view's size, at least :data:`MIN_PANEL`, and with its
        footer within the screen (when its size is known), less the outer gap."""
        h, w = self.shown.shape[:2] if self.shown is not None else (0, 0)
        width, height = max(w, MIN_PANEL[0]), max(h, MIN_PANEL[1])
        screen = screen_size()
        if screen is not None:
            width = min(width, screen[0] - SCREEN_MARGIN[0])
            height = min(height, screen[1] - SCREEN_MARGIN[1] - FOOTER_LINES * LINE_H)
        return width - 2 * GAP, height - 2 * GAP

    def panel_screen(self, panel: np.ndarray) -> np.ndarray:
        """The window's picture while ``panel`` is shown: the panel's space and its outer gap, the panel
        centred across at the top, the footer (:meth:`footer_lines`) under it."""
        width, height = self._panel_space or self.panel_size()
        width, height = width + 2 * GAP, height + 2 * GAP
        canvas = np.full((height + FOOTER_LINES * LINE_H, width, 3), PANEL_BG, np.uint8)
        x, y = panel_origin(panel.shape, (width, height))
        ph, pw = min(panel.shape[0], height - y), min(panel.shape[1], width - x)
        canvas[y:y + ph, x:x + pw] = panel[:ph, :pw]
        self._footer(canvas, height)
        return canvas

    def footer_lines(self) -> list[str]:
        """The lines under the panel: the keys, then the status and message lines."""
        return [PANEL_KEYS, "; ".join(self.overlay_lines())]

    def _footer(self, canvas: np.ndarray, top: int) -> None:
        """:meth:`footer_lines` under ``top``, each wrapped to the canvas's width, :data:`FOOTER_LINES` rows at
        most (a "saved ..." message with two paths takes the last two)."""
        width = canvas.shape[1]
        rows = [row for text in self.footer_lines() for row in fit_lines([text], width - 12, 0.5)]
        for k, text in enumerate(rows[:FOOTER_LINES]):
            cv2.putText(canvas, text, (6, top + (k + 1) * LINE_H - 6), FONT, 0.5, (230, 230, 230), 1, cv2.LINE_AA)

    def show(self, image: np.ndarray, result: FrameResult) -> None:
        self.shown, self.result = image, result
        self.imshow(image)

    def imshow(self, image: np.ndarray) -> None:
        """Send ``image`` to the window (kept for :meth:`check_paint`)."""
        self._on_screen = image
        cv2.imshow(self.title, image)

    def check_paint(self) -> None:
        """Once per loop until the window is seen painted: a window the X server shows all of one colour is
        mapped again (:class:`~livemask.sinks.window_policy.PaintCheck`); what it did is logged."""
        self._paint.check_logged(self._on_screen, "the window", log)

    def wait_key(self, ms: int) -> int:
        key = cv2.waitKey(max(int(ms), 1))
        return -1 if key == -1 else key & 0xFF

    def closed_by_user(self) -> bool:
        """True when the window was closed with its title-bar button or by the window manager."""
        return self._watch.closed()

    def say(self, text: str, seconds: float = 3.0) -> None:
        """A message on screen for ``seconds`` (and in the log); a newer message replaces it."""
        log.info("%s", text)
        self._message = (text, time.monotonic() + seconds)

    def overlay_lines(self) -> list[str]:
        """The lines shown over the live view now: paused, the explanation's state, an unexpired message."""
        lines = []
        if self.paused:
            lines.append("PAUSED (space to resume)")
        status = getattr(self.session, "status", None) if self.session is not None else None
        if status:
            lines.append(str(status))
        if self._message and time.monotonic() < self._message[1]:
            lines.append(self._message[0])
        elif self._message:
            self._message = None
        return lines

    # -- keys -----------------------------------------------------------------------------
    def handle_key(self, key: int) -> str | None:
        """Do what ``key`` asks; returns "quit" when the loop should end, "pause" on toggling."""
        if self.keys is not None:  # a key policy of its own (kiosk mode): no other key does anything
            return self.keys(key)
        action = KEYMAP.get(key)
        if action is None:
            return None
        if action == "quit":
            return "quit"
        if action == "escape":
            return self.escape()
        if action == "pause":
            self.paused = not self.paused
            self.say("paused" if self.paused else "resumed", 1.0)
            return "pause"
        if action == "snapshot":
            self.snapshot()
            return None
        if action in ("next_page", "previous_page"):
            if self.session is not None:
                self.session.page(1 if action == "next_page" else -1)
            return None
        self.explain(action)
        return None

    def escape(self) -> str | None:
        """Esc: when an explanation was asked for (g, o, e) since the last Esc, close or cancel it (the panel
        on screen, the one computing, the one waiting; also when none is left, as after a refused or failed
        request) and stay, the live view back at once; otherwise "quit"."""
        explained, self._explained = self._explained, False
        active = self.session is not None and self.session.close()
        if explained or active:
            self.say("explanation closed (Esc again or q quits)" if active else "Esc again or q quits", 2.0)
            return None
        return "quit"

    def snapshot(self) -> Path | None:
        """Save the frame on screen as ``livemask-<time>-f<frame id>.png``, annotated as the recording has it
        (with the status lines only with ``snapshot_overlay``). When an explanation panel is shown, save the
        frame it explains and the panel instead, under one name (``...-f<id>.png``, ``...-f<id>-explain.png``)."""
        panel_result = getattr(self.session, "shown_result", None) if self.session is not None else None
        result = panel_result or self.result
        if result is None:
            self.say("nothing to save yet")
            return None
        extra = self.overlay_lines() if self.snapshot_overlay else []
        if result is self.result and self.snapshot_overlay and self.shown is not None:
            image = self.shown
        else:
            image = self.renderer.render(result, extra, tick=False)
        image = self.renderer.for_snapshot(image, result)  # privacy: faces blurred when asked
        base = snapshot_base(result.frame.frame_id)
        path = self.snapshot_dir / f"{base}.png"
        try:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            write_image(path, image)
            saved = [str(path)]
            if panel_result is not None:
                panel = self.session.save(self.snapshot_dir, base)
                if panel is not None:
                    saved.append(str(panel))
        except (OSError, LivemaskError) as err:
            self.say(f"could not save the snapshot: {err}", 6.0)
            return None
        self.say("saved " + ", ".join(saved))
        return path

    def explain(self, method: str, label: str | None = None) -> None:
        """Explain the frame on screen (the newest one, while a panel is shown) with ``method``; ``label``
        (a camera's name) starts the panel's title."""
        self._explained = True
        if self.result is None:
            self.say(f"{label}: no frame to explain yet" if label else "no frame to explain yet")
            return
        if not self._start_session():
            self.say(self._explain_missing)
            return
        self._panel_space = self.panel_size()
        self.session.show_inside(self._panel_space)
        reply = self.session.request(self.result, method, label=label)
        if not reply.accepted:  # accepted requests show as the session's status line while it is true
            self.say(reply.text)

    def update(self) -> None:
        """Once per loop: let the explanation session take a finished panel (shown by :meth:`refresh`).

        A failed explanation is shown and logged; the live view goes on.
        """
        if self.session is not None:
            try:
                self.session.update()
            except LivemaskError as err:
                log.error("explanation failed: %s", err)
                self.say(f"explanation failed: {err}", 6.0)

    def close(self, summary: dict | None = None) -> None:
        if summary is not None and summary.get("ended") == "end of source":
            self._farewell()
        if self.session is not None:
            try:
                self.session.shutdown()
            except Exception as err:  # closing must not hide the run's result
                log.warning("explanation session did not shut down cleanly: %s", err)
        self._watch.close()
        self._paint.close()
        try:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        except cv2.error:
            pass
        self._disarm()  # no window call after this one: a lost X connection can no longer end the process

"""Kiosk mode: a full-screen verdict for the person in front of the camera, in words.

:class:`KioskRenderer` replaces the live window's :class:`~livemask.sinks.render.Renderer`. For each
result it picks the person in front (:meth:`KioskRenderer.decide`) and draws the camera view above a
large solid banner (:meth:`KioskRenderer.draw`), at the screen's size when the window knows it:

* ``verdict``: the face of the person in front is at least ``min_face_px`` (shorter box side, frame
  pixels). Its label is the tracker's vote (``FrameResult.predictions`` are already voted), so it does
  not flicker; while that track stays in front (above 80% of ``min_face_px`` and at least half the
  area of the largest near face) it keeps the banner, so the banner does not jump between two people.
  Otherwise the largest near face wins, weighted towards the centre of the frame.
* ``closer``: faces, but none big enough ("Step closer").
* ``idle``: nobody there.

A state gives way to a lower one (verdict > closer > idle) only after ``idle_after_s`` without it, so
a face the detector misses for a few frames keeps its banner. Times are the frames' capture times.
The banner text is at least 6% of the canvas height (two lines when one does not fit), anti-aliased,
on a solid band; no engineering line, no track ids, no class names in snake_case, and no smaller line
under the banner repeating the class (the banner says it in words).

Two screens frame a run (:meth:`KioskRenderer.message_screen`): ``Starting...`` (:data:`STARTING`),
shown by :class:`StartScreen` within half a second of launch while the models load, and, when a file
has played to its end, :data:`ENDED` for :data:`END_HOLD_S` seconds before the window closes.

:class:`QuitSequence` is the kiosk's key policy: every key is ignored (``q`` and Esc too) except the
configured sequence typed within ``quit_within_s``, which ends the run. SIGTERM ends it as always.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np

from livemask.core.labels import display_name
from livemask.core.params import Range, Text, check_fields
from livemask.core.types import FrameResult

log = logging.getLogger(__name__)

BannerText = Annotated[str, Text(1, 48, ascii_printable=True)]

# BGR: dark enough for white text (contrast >= 4.5:1), amber carries dark text
BANNER_COLOURS = {"mask": (46, 139, 34), "no_mask": (40, 40, 200), "mask_incorrect": (0, 170, 255)}
OTHER_BANNER = (90, 90, 90)  # a class the kiosk has no verdict colour for
CLOSER_BANNER = (190, 100, 30)
IDLE_BANNER = (60, 48, 36)
DARK_TEXT_ON = {"mask_incorrect"}
WHITE, DARK = (255, 255, 255), (20, 20, 20)
FONT = cv2.FONT_HERSHEY_DUPLEX
STATES = ("idle", "closer", "verdict")  # in rank order
STARTING = "Starting..."  # the kiosk's screen while the models load
ENDED = "The video has ended"  # the kiosk's screen when a file has played to its end
END_HOLD_S = 3.0  # how long the end screen stays before the window closes


@dataclass(frozen=True)
class KioskOptions:
    """The ``kiosk`` section of config.yaml (see there for each key)."""

    enabled: bool = False
    min_face_px: Annotated[int, Range(8, 4096)] = 60
    idle_after_s: Annotated[float, Range(0, 600)] = 1.5
    quit_keys: Annotated[str, Text(2, 32, ascii_printable=True, no_spaces=True)] = "kioskquit"
    quit_within_s: Annotated[float, Range(0.5, 60)] = 5.0
    record: bool = False
    fullscreen: bool = True
    width: Annotated[int, Range(320, 7680)] = 1280
    height: Annotated[int, Range(240, 4320)] = 720
    text_mask: BannerText = "Thank you"
    text_no_mask: BannerText = "Please wear a mask"
    text_mask_incorrect: BannerText = "Please cover your nose"
    text_closer: BannerText = "Step closer"
    text_idle: BannerText = "Please step up to the screen"

    def __post_init__(self) -> None:
        check_fields(self)

    def verdict_text(self, label: str) -> str:
        """The banner for a class; a class without a configured text shows its name in words."""
        return {"mask": self.text_mask, "no_mask": self.text_no_mask,
                "mask_incorrect": self.text_mask_incorrect}.get(label, display_name(label))


@dataclass(frozen=True)
class KioskView:
    """What the kiosk shows for one result: the state, and for a verdict the label, track and face index
    (``index`` -1 when the verdict is held over frames where that face was not found)."""

    state: str
    label: str | None = None
    track_id: int | None = None
    index: int = -1

    @property
    def rank(self) -> int:
        return STATES.index(self.state)


IDLE = KioskView("idle")


class KioskRenderer:
    """Draws the kiosk screen for a result (the live window's renderer in kiosk mode)."""

    def __init__(self, options: KioskOptions | None = None):
        self.options = options or KioskOptions()
        self.size = (self.options.width, self.options.height)  # the screen drawn: (width, height)
        self.view = IDLE
        self._since: float | None = None  # capture time the current state was last confirmed

    # -- who is in front ------------------------------------------------------------------------
    def decide(self, result: FrameResult) -> KioskView:
        """The view for ``result``, remembering the person in front and the hold between states."""
        now = result.frame.timestamp
        new = self._candidate(result)
        held = self._since is not None and now - self._since < self.options.idle_after_s
        if new.rank >= self.view.rank or not held:
            self.view, self._since = new, now
        elif self.view.index != -1:  # held, but that face is not in this frame
            self.view = KioskView(self.view.state, self.view.label, self.view.track_id)
        return self.view

    def _candidate(self, result: FrameResult) -> KioskView:
        det = result.detections
        if not len(det):
            return IDLE
        sizes, areas = det.sizes, det.areas
        minimum = self.options.min_face_px
        near = sizes >= minimum
        ids = result.track_ids
        largest = float(areas[near].max()) if near.any() else 0.0
        if ids is not None and self.view.track_id is not None:
            same = np.flatnonzero(ids == self.view.track_id)
            if len(same):
                i = int(same[0])
                if sizes[i] >= 0.8 * minimum and areas[i] >= 0.5 * largest:
                    return self._verdict(result, i)
        if not near.any():
            return KioskView("closer")
        h, w = result.frame.image.shape[:2]
        centres = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2.0
        offset = np.hypot((centres[:, 0] - w / 2) / (w / 2), (centres[:, 1] - h / 2) / (h / 2)) / np.sqrt(2)
        score = np.where(near, areas * (1.0 - 0.5 * np.clip(offset, 0, 1)), -1.0)
        return self._verdict(result, int(np.argmax(score)))

    @staticmethod
    def _verdict(result: FrameResult, i: int) -> KioskView:
        track = int(result.track_ids[i]) if result.track_ids is not None else None
        return KioskView("verdict", result.predictions.labels[i], track, i)

    # -- drawing --------------------------------------------------------------------------------
    def fit_screen(self, size: tuple[int, int]) -> None:
        """Draw at the screen's own size (the full-screen window knows it): sharp text, no bars."""
        w, h = (int(v) for v in size)
        if w >= 320 and h >= 240:
            self.size = (w, h)

    def render(self, result: FrameResult, extra: list[str] = (), tick: bool = True) -> np.ndarray:
        """The kiosk screen for ``result`` (``extra`` status lines are not shown in kiosk mode)."""
        view = self.decide(result) if tick else self.view
        return self.draw(result, view)

    def banner(self, view: KioskView) -> tuple[str, str, tuple[int, int, int], tuple[int, int, int]]:
        """(main text, smaller line, band colour, text colour) for a view."""
        o = self.options
        if view.state == "verdict":
            colour = BANNER_COLOURS.get(view.label, OTHER_BANNER)
            ink = DARK if view.label in DARK_TEXT_ON else WHITE
            return o.verdict_text(view.label), "", colour, ink  # the banner's words say the class already
        if view.state == "closer":
            return o.text_closer, "", CLOSER_BANNER, WHITE
        return o.text_idle, "", IDLE_BANNER, WHITE

    def band_rect(self) -> tuple[int, int, int, int]:
        """The banner band on the canvas: x1, y1, x2, y2 (the bottom 28%)."""
        w, h = self.size
        return 0, h - round(0.28 * h), w, h

    def placement(self, frame_w: int, frame_h: int) -> tuple[float, int, int]:
        """Where the camera view goes: (scale, x0, y0), fitted and centred above the band, so the band
        never covers a face."""
        w, band_top = self.size[0], self.band_rect()[1]
        scale = min(w / frame_w, band_top / frame_h)
        return scale, (w - max(1, round(frame_w * scale))) // 2, (band_top - max(1, round(frame_h * scale))) // 2

    def draw(self, result: FrameResult, view: KioskView) -> np.ndarray:
        w, h = self.size
        canvas = np.zeros((h, w, 3), np.uint8)
        image = result.frame.image
        ih, iw = image.shape[:2]
        scale, x0, y0 = self.placement(iw, ih)
        sw, sh = max(1, round(iw * scale)), max(1, round(ih * scale))
        if (sw, sh) == (iw, ih):
            fitted = image
        else:
            fitted = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if view.state == "idle":
            fitted = cv2.convertScaleAbs(fitted, alpha=0.4)  # the camera view dimmed
        canvas[y0:y0 + sh, x0:x0 + sw] = fitted
        text, sub, colour, ink = self.banner(view)
        line = max(3, round(h * 0.008))
        boxes = result.detections.boxes * scale + np.array([x0, y0, x0, y0], np.float32)
        for i, box in enumerate(boxes):
            x1, y1, x2, y2 = (round(float(v)) for v in box)
            if view.state == "verdict" and i == view.index:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2 * line, cv2.LINE_AA)
            elif view.state == "closer":
                cv2.rectangle(canvas, (x1, y1), (x2, y2), CLOSER_BANNER, line, cv2.LINE_AA)
        bx1, by1, bx2, by2 = self.band_rect()
        canvas[by1:by2, bx1:bx2] = colour
        sub_h = round(0.035 * h) if sub else 0
        gap = round(0.02 * h) if sub else 0
        lines, size = fit_text(text, w * 0.92, 0.085 * h, 0.06 * h)
        size = min(size, (0.92 * (by2 - by1) - gap - sub_h) / (1.45 * len(lines)))  # two lines stay in the band
        block = len(lines) * size * 1.45 + gap + sub_h
        top = by1 + ((by2 - by1) - block) / 2
        for k, part in enumerate(lines):
            baseline = top + size * (1.45 * k + 1.2)
            put_centred(canvas, part, round(baseline), size, ink)
        if sub:
            put_centred(canvas, sub, round(top + len(lines) * size * 1.45 + gap + sub_h), sub_h, ink)
        return canvas


    def message_screen(self, text: str, colour=IDLE_BANNER) -> np.ndarray:
        """A screen without a camera view: black above, ``text`` on the banner band in the kiosk's style
        (the start and end screens)."""
        w, h = self.size
        canvas = np.zeros((h, w, 3), np.uint8)
        bx1, by1, bx2, by2 = self.band_rect()
        canvas[by1:by2, bx1:bx2] = colour
        lines, size = fit_text(text, w * 0.92, 0.085 * h, 0.06 * h)
        size = min(size, 0.92 * (by2 - by1) / (1.45 * len(lines)))
        top = by1 + ((by2 - by1) - len(lines) * size * 1.45) / 2
        for k, part in enumerate(lines):
            put_centred(canvas, part, round(top + size * (1.45 * k + 1.2)), size, WHITE)
        return canvas

    def end_screen(self) -> np.ndarray:
        return self.message_screen(ENDED)


def text_scale(height_px: float) -> float:
    """Font scale whose capital letters are ``height_px`` tall."""
    (_, cap), _ = cv2.getTextSize("H", FONT, 1.0, 1)
    return height_px / cap


def text_width(text: str, height_px: float) -> int:
    scale = text_scale(height_px)
    return cv2.getTextSize(text, FONT, scale, thickness(height_px))[0][0]


def thickness(height_px: float) -> int:
    return max(1, round(height_px / 14))


def fit_text(text: str, max_width: float, want: float, least: float) -> tuple[list[str], float]:
    """Lines and cap height for ``text``: one line at ``want`` if it fits, else smaller down to ``least``,
    else two lines (split at the space nearest the middle, or in the middle of a word without spaces),
    each as large as fits."""
    size = min(want, want * max_width / max(text_width(text, want), 1))
    if size >= least or len(text) < 2:
        return [text], max(size, 1.0)
    words = text.split()
    if len(words) > 1:
        cut = min(range(1, len(words)), key=lambda k: abs(len(" ".join(words[:k])) - len(" ".join(words[k:]))))
        lines = [" ".join(words[:cut]), " ".join(words[cut:])]
    else:
        lines = [text[:len(text) // 2], text[len(text) // 2:]]
    widest = max(text_width(part, want) for part in lines)
    return lines, min(want, want * max_width / max(widest, 1))


def put_centred(image: np.ndarray, text: str, baseline: int, cap_px: float, colour) -> None:
    scale, thick = text_scale(cap_px), thickness(cap_px)
    (tw, _), _ = cv2.getTextSize(text, FONT, scale, thick)
    x = (image.shape[1] - tw) // 2
    cv2.putText(image, text, (x, baseline), FONT, scale, colour, thick, cv2.LINE_AA)


class QuitSequence:
    """The kiosk's key policy for :class:`~livemask.sinks.window.LiveWindow`: "quit" once ``sequence``
    has been typed with at most ``within_s`` seconds from its first to its last key; every other key
    (``q``, Esc, space, ``s``, ...) does nothing."""

    def __init__(self, sequence: str, within_s: float = 5.0, clock=time.monotonic):
        self.sequence = sequence
        self.within_s = float(within_s)
        self.clock = clock
        self._typed: list[tuple[str, float]] = []

    def __call__(self, key: int) -> str | None:
        if key < 0:
            return None
        now = self.clock()
        self._typed.append((chr(key & 0xFF), now))
        self._typed = self._typed[-len(self.sequence):]
        typed = "".join(c for c, _ in self._typed)
        if typed == self.sequence and now - self._typed[0][1] <= self.within_s:
            self._typed.clear()
            return "quit"
        return None


class StartScreen:
    """The kiosk's start screen, shown before the models load: the full-screen window ``title`` (the one
    the live window then reuses) with :data:`STARTING`. :meth:`wait_for` runs the slow set-up on a helper
    thread while this (the window's) thread keeps the screen painted; its error is raised here. As the live
    window's, its paint is checked (:class:`~livemask.sinks.window_policy.PaintCheck`): a window X shows all
    black is mapped again, so the start screen is seen on a busy X server too (docs/known-issues.md)."""

    def __init__(self, title: str, options: KioskOptions):
        from livemask.sinks.window_policy import PaintCheck
        from livemask.sinks.x11 import screen_size

        self.title = title
        self.paint = PaintCheck(title, after_s=0.5)
        self.renderer = KioskRenderer(options)
        size = screen_size()
        if size is not None:
            self.renderer.fit_screen(size)
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        if options.fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
            if size is not None:  # without a window manager the property alone does not resize it
                cv2.moveWindow(title, 0, 0)
                cv2.resizeWindow(title, *size)
        self.image = self.renderer.message_screen(STARTING)
        cv2.imshow(title, self.image)
        cv2.waitKey(1)

    def wait_for(self, work):
        """``work()``'s result, computed on a helper thread while the start screen stays on screen."""
        import threading

        box: dict = {}

        def run():
            try:
                box["value"] = work()
            except BaseException as err:  # handed to the window's thread below
                box["error"] = err

        thread = threading.Thread(target=run, name="livemask-kiosk-start", daemon=True)
        thread.start()
        while thread.is_alive():
            cv2.imshow(self.title, self.image)
            cv2.waitKey(40)  # keys do nothing here: the quit sequence works once the kiosk runs
            self.paint.check_logged(self.image, "the start screen", log)
            thread.join(timeout=0.01)
        self.paint.close()  # its X connection; the next wait_for opens it again if the paint is still unseen
        if "error" in box:
            self.close()
            raise box["error"]
        return box["value"]

    def close(self) -> None:
        self.paint.close()
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)

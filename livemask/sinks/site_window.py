"""The window of a run with several cameras: one tile per camera in a grid, one focused tile.

Each camera's engine hands its results to a :class:`TileFeed` (a sink, called on the camera's own thread):
a bounded channel that keeps the newest results and counts what it drops, so a slow window never holds a
camera back. The :class:`SiteWindow` (the display, on the main thread) takes the newest result of every
camera, draws each one (the camera's own :class:`~livemask.sinks.render.Renderer`: boxes, labels, status
lines), fits it into its tile, labels the tile with the camera's number, name and state, and highlights
the focused tile. A camera that is not live says so on its tile ("reconnecting 2/10", "failed: reason",
"ended"), over its last frame dimmed, or over a dark tile when it never gave one.

Keys: ``Tab`` focuses the next tile, ``1``-``9`` the tile of that number; ``q`` quits; every other key of
the single-camera window (:mod:`livemask.sinks.window`) acts on the focused camera: ``g`` / ``o`` / ``e``
explain its frame on screen, ``space`` pauses its tile (a paced file holds where it is; a camera keeps
running and its tile stays on the frozen frame), ``s`` saves its frame under ``run.snapshot_dir/<camera>/``,
``]`` / ``[`` page the panel, ``Esc`` closes the panel or quits.

The explanation panel is shown **inside this window**, in place of the tiles, as the window of one camera
shows it in place of its live view (:class:`~livemask.sinks.window.LiveWindow`: the panel's drawing and
footer are its own): its title names the camera, the footer says that Esc, or a focus key, brings the
tiles back. The cameras keep running while it is shown; their tiles are up to date when it closes.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livemask.core.types import FrameResult
from livemask.engine.channel import BufferPolicy, Channel
from livemask.engine.sink import RunInfo
from livemask.sinks.draw import FONT, fit_lines
from livemask.sinks.render import Renderer
from livemask.sinks.window import FOOTER_LINES, GAP, LINE_H, PANEL_BG, SCREEN_MARGIN, LiveWindow

TAB = 9
FOCUS_COLOUR = (0, 215, 255)  # BGR amber: the focused tile's border and label
LABEL_BG = (40, 40, 40)
BORDER = 3  # the focused tile's border (drawn over the tile's edge)
LABEL_H = 26  # the label bar at the top of each tile
MAX_TILE_W = 640


@dataclass(frozen=True)
class Grid:
    """Where the tiles go: ``cols`` x ``rows`` tiles of ``tile`` (width, height) pixels each."""

    cols: int
    rows: int
    tile: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the tiles' area."""
        return (self.cols * self.tile[0] + (self.cols + 1) * GAP, self.rows * self.tile[1] + (self.rows + 1) * GAP)

    def origin(self, index: int) -> tuple[int, int]:
        row, col = divmod(index, self.cols)
        return GAP + col * (self.tile[0] + GAP), GAP + row * (self.tile[1] + GAP)


def grid_for(count: int, screen: tuple[int, int] | None, aspect: float = 4 / 3, max_tile_w: int = MAX_TILE_W) -> Grid:
    """The grid for ``count`` tiles: as square as it gets (3 cameras: 2 x 2), each tile at most
    ``max_tile_w`` wide, the whole window (with its footer) within the screen when its size is known."""
    count = max(int(count), 1)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    tile_w = float(max_tile_w)
    if screen is not None:
        room_w = screen[0] - SCREEN_MARGIN[0] - (cols + 1) * GAP
        room_h = screen[1] - SCREEN_MARGIN[1] - (rows + 1) * GAP - FOOTER_LINES * LINE_H
        tile_w = min(tile_w, room_w / cols, room_h / rows * aspect)
    tile_w = max(int(tile_w), 96)
    return Grid(cols, rows, (tile_w, max(round(tile_w / aspect), 72)))


def fit_into(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height), aspect kept, centred on black."""
    tw, th = size
    h, w = image.shape[:2]
    scale = min(tw / w, th / h)
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.zeros((th, tw, 3), np.uint8)
    x, y = (tw - nw) // 2, (th - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=interpolation)
    return out


def tile_label(index: int, name: str, state: str, width: int, focused: bool) -> np.ndarray:
    """The bar at the top of a tile: the camera's number (its key), name and state; amber when focused."""
    label = np.full((LABEL_H, width, 3), LABEL_BG, np.uint8)
    text = fit_lines([f"{index + 1} {name}  {state}"], width - 10, 0.6)[0]
    colour = FOCUS_COLOUR if focused else (235, 235, 235)
    cv2.putText(label, text, (6, LABEL_H - 8), FONT, 0.6, colour, 1, cv2.LINE_AA)
    return label


class TileFeed:
    """One camera's results for its tile: a sink that never blocks the camera (a bounded channel dropping
    the oldest result, every drop counted: ``summary["tile"]``)."""

    name = "tile"
    threaded = False

    def __init__(self, camera: str, queue_size: int = 2):
        self.camera = camera
        self.channel: Channel[FrameResult] = Channel(queue_size, BufferPolicy.DROP_OLDEST, name=f"tile {camera}")
        self.received = 0
        self.taken = 0
        self.info: RunInfo | None = None

    def open(self, info: RunInfo) -> None:
        self.info = info

    def write(self, result: FrameResult) -> None:
        self.received += 1
        self.channel.put(result)

    def newest(self) -> FrameResult | None:
        """The newest result waiting (older ones still waiting count as dropped), or None."""
        newest = None
        while True:
            try:
                item = self.channel.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            if newest is not None:
                self.channel.dropped += 1  # replaced before it was shown
            newest = item
        if newest is not None:
            self.taken += 1
        return newest

    def close(self, summary: dict | None = None) -> None:
        pass

    def stats(self) -> dict:
        return {"tile": {"received": self.received, "shown": self.taken, "dropped": self.channel.dropped}}


class SiteWindow(LiveWindow):
    """The display of a run with several cameras (main thread); see the module's docstring for the keys.

    ``feeds`` and ``renderers``: one per camera, in tile order. The :class:`~livemask.engine.cameras.Site`
    hands it the cameras' states (:meth:`set_states`) and a way to hold a paced file (``hold(name, on)``).
    """

    def __init__(self, name: str, snapshot_dir: str | Path, feeds: dict[str, TileFeed],
                 renderers: dict[str, Renderer], explain: Callable[[], object] | None = None):
        if not feeds or set(feeds) != set(renderers):
            raise ValueError("SiteWindow needs one feed and one renderer per camera")
        super().__init__(name, snapshot_dir, explain, next(iter(renderers.values())))
        self.names = list(feeds)
        self.feeds = feeds
        self.renderers = renderers
        self.base_snapshot_dir = Path(snapshot_dir)
        self.focus = 0
        self.latest: dict[str, FrameResult | None] = dict.fromkeys(self.names)
        self.states: dict[str, str] = dict.fromkeys(self.names, "connecting")
        self.paused_cameras: set[str] = set()
        self.hold: Callable[[str, bool], None] = lambda name, on: None
        self.grid: Grid | None = None
        self._tiles: dict[str, np.ndarray] = {}
        self._stamp: dict[str, tuple] = {}
        self._look: tuple | None = None
        self._focus_camera(0)

    def panel_size(self) -> tuple[int, int]:
        """The space of the explanation panel: the tiles' area within its outer gap."""
        width, height = (self.grid or grid_for(len(self.names), None)).size
        return width - 2 * GAP, height - 2 * GAP

    def sinks_for(self, name: str) -> list[TileFeed]:
        """The sinks the window needs in camera ``name``'s engine: its tile feed."""
        return [self.feeds[name]]

    # -- state -----------------------------------------------------------------------------------
    @property
    def focused(self) -> str:
        return self.names[self.focus]

    @property
    def paused(self) -> bool:
        """The focused camera's tile is paused (the keys and status lines of the single window use this)."""
        return self.focused in getattr(self, "paused_cameras", ())

    @paused.setter
    def paused(self, value: bool) -> None:  # LiveWindow's constructor sets it; pausing goes through toggle_pause
        pass

    def set_states(self, states: dict[str, str]) -> None:
        self.states.update(states)

    def _focus_camera(self, index: int) -> None:
        self.focus = index % len(self.names)
        name = self.focused
        self.renderer = self.renderers[name]
        self.result = self.latest[name]
        self.snapshot_dir = self.base_snapshot_dir / name

    # -- the sink side --------------------------------------------------------------------------
    def open(self, info: RunInfo | None = None) -> None:
        from livemask.sinks.x11 import screen_size

        self.grid = grid_for(len(self.names), screen_size())  # 4:3 tiles; other frames are letterboxed
        super().open(RunInfo("cameras", 30.0, None, None, True, ()))
        self.show(self.compose(), None)

    def write(self, result: FrameResult) -> None:  # the cameras' results come through their feeds
        pass

    def poll(self, wait_ms: int) -> bool:
        """Take every camera's newest result, show the grid, then read keys as the single window does;
        False when the user ends the run (q, Esc, or the window closed)."""
        for name in self.names:
            if name in self.paused_cameras:
                continue
            newest = self.feeds[name].newest()
            if newest is not None:
                self.latest[name] = newest
        self.result = self.latest[self.focused]
        panel = self.panel
        tiles = None if panel is not None else (tuple(id(self.latest[n]) for n in self.names),
                                                tuple(self.states.get(n) for n in self.names))
        look = (tiles, id(panel), self.focus, frozenset(self.paused_cameras), self.footer_lines())
        if look != self._look:  # nothing new: the window keeps what it shows (no redraw, no imshow)
            self._look = look
            self.show(self.compose(), self.result)
        key = self.wait_key(wait_ms)
        if key != -1 and self.handle_key(key) == "quit":
            self.ended_by = "user"
            return False
        if self.closed_by_user():  # before the next imshow, which would create the window again
            self.ended_by = "window closed"
            return False
        self.update()
        self.check_paint()
        return True

    # -- keys ------------------------------------------------------------------------------------
    def handle_key(self, key: int) -> str | None:
        if key == TAB:
            self._back_to_tiles()
            self._focus_camera(self.focus + 1)
            return "focus"
        if ord("1") <= key <= ord("9"):
            index = key - ord("1")
            if index < len(self.names):
                self._back_to_tiles()
                self._focus_camera(index)
                return "focus"
            self.say(f"no camera {index + 1} ({len(self.names)} cameras)", 2.0)
            return None
        if key == ord(" "):
            self.toggle_pause(self.focused)
            return "pause"
        return super().handle_key(key)

    def _back_to_tiles(self) -> None:
        """A focus key while the panel is shown closes it (as Esc does): the tiles come back."""
        if self.panel is not None:
            self.session.close()

    def toggle_pause(self, name: str) -> None:
        on = name not in self.paused_cameras
        if on:
            self.paused_cameras.add(name)
        else:
            self.paused_cameras.discard(name)
        self.hold(name, on)
        self._tiles.pop(name, None)
        self.say(f"{name} paused" if on else f"{name} resumed", 1.0)

    def explain(self, method: str, label: str | None = None) -> None:
        """Explain the focused camera's frame on screen; the panel's title names the camera."""
        self.result = self.latest[self.focused]
        super().explain(method, label=self.focused)

    # -- drawing ---------------------------------------------------------------------------------
    def compose(self) -> np.ndarray:
        """The whole window: every camera's tile, the focused one highlighted, the footer below."""
        panel = self.panel
        if panel is not None:  # the explanation in place of the tiles, until Esc or a focus key
            return self.panel_screen(panel)
        grid = self.grid or grid_for(len(self.names), None)
        width, height = grid.size
        canvas = np.full((height + FOOTER_LINES * LINE_H, width, 3), PANEL_BG, np.uint8)
        for i, name in enumerate(self.names):
            x, y = grid.origin(i)
            tw, th = grid.tile
            canvas[y:y + th, x:x + tw] = self._tile(i, name, grid.tile)
            if i == self.focus:
                cv2.rectangle(canvas, (x + 1, y + 1), (x + tw - 2, y + th - 2), FOCUS_COLOUR, BORDER)  # inside the tile
        self._footer(canvas, height)
        return canvas

    def _tile(self, index: int, name: str, size: tuple[int, int]) -> np.ndarray:
        result, state = self.latest[name], self.states.get(name, "connecting")
        focused, paused = index == self.focus, name in self.paused_cameras
        stamp = (id(result), state, focused, paused)
        if self._stamp.get(name) == stamp and name in self._tiles:
            return self._tiles[name]
        tw, th = size
        if result is not None:
            tile = fit_into(self.renderers[name].render(result, tick=not paused), (tw, th - LABEL_H))
        else:
            tile = np.full((th - LABEL_H, tw, 3), 32, np.uint8)
        if state != "live":
            if result is not None:
                tile = (tile * 0.35).astype(np.uint8)
            self._centre_text(tile, state)
        elif paused:
            self._centre_text(tile, "PAUSED (space resumes)")
        tile = np.vstack([tile_label(index, name, state, tw, focused), tile])
        self._tiles[name], self._stamp[name] = tile, stamp
        return tile

    @staticmethod
    def _centre_text(tile: np.ndarray, text: str) -> None:
        h, w = tile.shape[:2]
        lines = fit_lines([text], w - 20, 0.7)[:3]
        top = h // 2 - len(lines) * 14
        for k, line in enumerate(lines):
            (lw, _lh), _ = cv2.getTextSize(line, FONT, 0.7, 2)
            org = ((w - lw) // 2, top + (k + 1) * 28)
            cv2.putText(tile, line, org, FONT, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
            cv2.putText(tile, line, org, FONT, 0.7, (255, 255, 255), 2, cv2.LINE_AA)

    def footer_lines(self) -> list[str]:
        """The lines under the tiles: the keys, then the focused camera with the status or message line."""
        status = "; ".join(self.overlay_lines())
        if self.panel is not None:
            return ["EXPLANATION - Esc or Tab / 1-9: back to the cameras   ] [ pages   s save   q quit",
                    f"[{self.focus + 1} {self.focused}] {status}".rstrip()]
        return ["Tab / 1-9 focus   g o e explain   space pause   s snapshot   q quit",
                f"[{self.focus + 1} {self.focused}] {status}".rstrip()]

    def overlay_lines(self) -> list[str]:
        lines = super().overlay_lines()
        return [line for line in lines if not line.startswith("PAUSED")]

    def show(self, image: np.ndarray, result: FrameResult | None) -> None:
        self.shown = image
        if result is not None:
            self.result = result
        self.imshow(image)

    def stats(self) -> dict:
        return {"tiles": {name: feed.stats()["tile"] for name, feed in self.feeds.items()}}

"""The window of several cameras without a display: the grid, the tile feeds (never blocking, drops
counted), the focus keys, and the keys that act on the focused camera (no cv2 window calls)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.sinks.render import Renderer
from livemask.sinks.site_window import GAP, TAB, SiteWindow, TileFeed, fit_into, grid_for
from livemask.sinks.window import FOOTER_LINES, LINE_H


def result(frame_id: int, value: int = 90, size=(64, 48)) -> FrameResult:
    frame = Frame(frame_id, 0.0, np.full((size[1], size[0], 3), value, np.uint8), "test")
    return FrameResult(frame, Detections.empty(), Predictions.empty(("mask", "no_mask")))


@pytest.mark.parametrize(("count", "cols", "rows"), [(1, 1, 1), (2, 2, 1), (3, 2, 2), (4, 2, 2), (5, 3, 2),
                                                     (9, 3, 3), (10, 4, 3)])
def test_the_grid_is_as_square_as_it_gets_and_fits_the_screen(count, cols, rows):
    grid = grid_for(count, (1280, 800))
    assert (grid.cols, grid.rows) == (cols, rows)
    width, height = grid.size
    assert width <= 1280 and height + FOOTER_LINES * LINE_H <= 800  # the footer too
    assert grid.tile[0] <= 640
    last = grid.origin(count - 1)
    assert last[0] + grid.tile[0] + GAP <= width and last[1] + grid.tile[1] + GAP <= height


def test_fit_into_keeps_the_aspect_and_centres():
    image = np.full((100, 400, 3), 200, np.uint8)
    out = fit_into(image, (200, 150))
    assert out.shape == (150, 200, 3)
    rows = np.flatnonzero(out[:, 100, 0] > 0)
    assert rows[0] == 50 and rows[-1] == 99  # 200x50, centred vertically
    assert out[0, 0].max() == 0


def test_a_tile_feed_never_blocks_and_counts_what_it_drops():
    feed = TileFeed("front", queue_size=2)
    done = threading.Event()

    def camera():
        for i in range(500):
            feed.write(result(i))
        done.set()

    threading.Thread(target=camera, daemon=True).start()
    assert done.wait(5), "the camera's thread was held back by its tile"
    newest = feed.newest()
    assert newest.frame.frame_id == 499
    stats = feed.stats()["tile"]
    assert stats == {"received": 500, "shown": 1, "dropped": 499}
    assert feed.newest() is None


@pytest.fixture
def window(tmp_path):
    names = ["front", "back", "side"]
    feeds = {n: TileFeed(n) for n in names}
    w = SiteWindow("site-test", tmp_path / "snaps", feeds, {n: Renderer() for n in names}, explain=None)
    w.grid = grid_for(3, (1280, 800))
    return w


def take(window: SiteWindow) -> None:
    """What poll does before showing: every camera's newest result."""
    for name in window.names:
        newest = window.feeds[name].newest()
        if newest is not None:
            window.latest[name] = newest
    window.result = window.latest[window.focused]


def test_focus_keys_move_the_focus_and_what_the_keys_act_on(window, tmp_path):
    for k, name in enumerate(window.names):
        window.feeds[name].write(result(10 + k, value=40 * (k + 1)))
    take(window)
    assert window.focused == "front" and window.result.frame.frame_id == 10
    assert window.handle_key(TAB) == "focus" and window.focused == "back"
    assert window.result.frame.frame_id == 11
    assert window.handle_key(ord("3")) == "focus" and window.focused == "side"
    assert window.handle_key(TAB) == "focus" and window.focused == "front"  # wraps
    assert window.handle_key(ord("9")) is None and window.focused == "front"
    assert "no camera 9" in window.overlay_lines()[-1]
    window.handle_key(ord("2"))
    path = window.snapshot()
    assert path is not None and path.parent == tmp_path / "snaps" / "back"  # the focused camera's snapshot
    assert window.handle_key(ord("q")) == "quit"


def test_pause_holds_the_focused_camera_only(window):
    held = []
    window.hold = lambda name, on: held.append((name, on))
    window.handle_key(ord("2"))
    assert window.handle_key(ord(" ")) == "pause"
    assert window.paused and window.paused_cameras == {"back"} and held == [("back", True)]
    window.handle_key(ord("1"))
    assert not window.paused  # the focused camera (front) is not paused
    window.handle_key(ord("2"))
    window.handle_key(ord(" "))
    assert held[-1] == ("back", False) and not window.paused_cameras


def test_the_grid_shows_each_tile_and_highlights_the_focused_one(window):
    for k, name in enumerate(window.names):
        window.feeds[name].write(result(k, value=150, size=(320, 240)))
    take(window)
    window.set_states({"front": "live", "back": "live", "side": "reconnecting 2/10"})
    image = window.compose()
    grid = window.grid
    assert image.shape[:2] == (grid.size[1] + FOOTER_LINES * LINE_H, grid.size[0])

    def border(i):
        x, y = grid.origin(i)
        return image[y + grid.tile[1] // 2, x + 1]

    assert tuple(border(0)) == (0, 215, 255) and tuple(border(1)) != (0, 215, 255)
    window.handle_key(TAB)
    image = window.compose()  # border() reads the new image
    assert tuple(border(1)) == (0, 215, 255) and tuple(border(0)) != (0, 215, 255)
    # the reconnecting camera's tile is dimmed under its state; the live ones are not
    x, y = grid.origin(2)
    side = image[y + 30:y + grid.tile[1], x:x + grid.tile[0]]
    x, y = grid.origin(0)
    front = image[y + 30:y + grid.tile[1], x:x + grid.tile[0]]
    assert np.median(front) == 150 and np.median(side) < 150 * 0.5


def test_the_panel_is_drawn_in_place_of_the_tiles_without_a_window_of_its_own(tmp_path, monkeypatch, classifier,
                                                                               detector, astronaut_bgr):
    """A real explanation session (the Keras model) in the window of several cameras: the panel replaces the
    tiles in the window's one image, no cv2 window call is made for it, Esc and a focus key bring the tiles back."""
    import time

    import cv2

    from livemask.apps.compose import apply_overrides, explain_session_factory, load_config
    from livemask.sinks.window import panel_origin

    def no_window(*args, **kwargs):
        raise AssertionError(f"a cv2 window call for the panel: {args}")

    for call in ("namedWindow", "imshow", "moveWindow", "destroyWindow", "getWindowImageRect"):
        monkeypatch.setattr(cv2, call, no_window)
    config = apply_overrides(load_config(), {"classifier.model_path": classifier.model_path})
    names = ["front", "back", "side"]
    feeds = {n: TileFeed(n) for n in names}
    w = SiteWindow("site-test", tmp_path / "snaps", feeds, {n: Renderer() for n in names},
                   explain=explain_session_factory(config, classifier))
    w.grid = grid_for(3, (1280, 800))
    image = cv2.resize(astronaut_bgr, (320, 240))
    detections = detector.detect(image)
    assert len(detections) >= 1
    for k, name in enumerate(names):
        feeds[name].write(FrameResult(Frame(k, time.monotonic(), image, name), detections,
                                      classifier.classify(image, detections)))
    take(w)
    w.set_states(dict.fromkeys(names, "live"))
    tiles = w.compose()
    w.handle_key(ord("2"))
    try:
        assert w.handle_key(ord("g")) is None
        deadline = time.monotonic() + 120
        while w.panel is None and time.monotonic() < deadline:
            w.update()
            time.sleep(0.02)
        panel = w.panel
        assert panel is not None, w.overlay_lines()
        width, height = w.grid.size
        assert panel.shape[1] <= width - 2 * GAP and panel.shape[0] <= height - 2 * GAP
        shown = w.compose()
        assert shown.shape == tiles.shape  # the window keeps its size
        x, y = panel_origin(panel.shape, w.grid.size)
        assert np.array_equal(shown[y:y + panel.shape[0], x:x + panel.shape[1]], panel)
        assert w.footer_lines()[0].startswith("EXPLANATION - Esc")
        assert "back" in w.footer_lines()[1] and "Esc closes" in w.footer_lines()[1]
        saved = w.snapshot()  # the frame and the panel, under back/
        assert saved is not None and saved.parent.name == "back"
        assert np.array_equal(cv2.imread(str(saved.with_name(saved.stem + "-explain.png"))), panel)
        assert w.handle_key(27) is None and w.panel is None  # Esc: the tiles again, the run goes on
        x, y = w.grid.origin(1)
        assert tuple(w.compose()[y + w.grid.tile[1] // 2, x + 1]) == (0, 215, 255)  # back's tile, focused
        assert w.handle_key(ord("g")) is None
        deadline = time.monotonic() + 60
        while w.panel is None and time.monotonic() < deadline:
            w.update()
            time.sleep(0.02)
        assert w.panel is not None
        assert w.handle_key(TAB) == "focus" and w.panel is None and w.focused == "side"  # a focus key: the tiles
    finally:
        w.session.shutdown()

"""The live window's key map and explanation hook, without a display (no cv2 window calls)."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from livemask.apps.compose import explain_session_factory
from livemask.core.errors import LivemaskError
from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.sinks.window import ESC, LiveWindow, check_display


class FakeSession:
    """Stands in for ExplainSession (its display-thread API) without a display or a model."""

    def __init__(self):
        self.state = "idle"
        self.requests = []
        self.saved = []
        self.pages = []
        self.fail_next_update = False
        self.shown_result = None
        self.space = None

    @property
    def is_open(self):
        return self.state == "shown"

    @property
    def status(self):
        return None if self.state == "idle" else f"explain: {self.state}"

    def show_inside(self, size):
        self.space = size

    def request(self, result, method, label=None):
        self.requests.append((result.frame.frame_id, method))
        if self.state == "queued":
            return SimpleNamespace(accepted=False, text=f"{method}: refused, busy")
        self.state = "queued" if self.state == "computing" else "computing"
        return SimpleNamespace(accepted=True, text=f"{method}: accepted")

    def update(self):
        if self.fail_next_update:
            self.fail_next_update = False
            raise LivemaskError("worker broke")

    def page(self, step):
        self.pages.append(step)
        return True

    def save(self, out_dir, base=None):
        path = out_dir / f"{base}-explain.png"
        cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
        self.saved.append(path)
        return path

    def close(self):
        was, self.state = self.state != "idle", "idle"
        return was

    def shutdown(self):
        pass


def result(frame_id: int = 7) -> FrameResult:
    frame = Frame(frame_id, 0.0, np.zeros((48, 64, 3), np.uint8), "test")
    return FrameResult(frame, Detections.empty(), Predictions.empty(("mask", "no_mask")))


@pytest.fixture
def window(tmp_path):
    # the run's own factory: it imports livemask.explain.frozen_frame only when the first explanation key comes
    w = LiveWindow("livemask-test", tmp_path / "snaps", explain=explain_session_factory(None, None))
    w.shown, w.result = np.full((48, 64, 3), 90, np.uint8), result()
    return w


def test_quit_pause_and_unknown_keys(window):
    assert window.handle_key(ord("q")) == "quit"
    assert window.handle_key(ESC) == "quit"  # no explanation asked for
    assert window.handle_key(ord(" ")) == "pause" and window.paused
    assert "PAUSED" in window.overlay_lines()[0]
    assert window.handle_key(ord(" ")) == "pause" and not window.paused
    assert window.handle_key(ord("x")) is None


def test_explanation_keys_request_the_frame_on_screen(window):
    session = FakeSession()
    window.session = session
    window.handle_key(ord("g"))
    window.handle_key(ord("o"))
    assert session.requests == [(7, "gradcam"), (7, "occlusion")]
    assert window.overlay_lines() == ["explain: queued"]  # accepted requests: the state line, no message
    window.handle_key(ord("e"))
    assert session.requests[-1] == (7, "all")
    assert window.overlay_lines() == ["explain: queued", "all: refused, busy"]  # a refusal is a message
    # Esc cancels everything pending and stays; the state line goes with the state
    assert window.handle_key(ESC) is None and session.state == "idle"
    assert window.overlay_lines()[0] != "explain: queued"
    assert window.handle_key(ESC) == "quit"


@pytest.mark.parametrize("state", ["computing", "queued", "shown", "idle"])
def test_esc_after_an_explanation_key_never_quits(window, state):
    """idle: the request was refused or failed before Esc."""
    session = FakeSession()
    window.session = session
    window.handle_key(ord("g"))
    session.state = state
    assert window.handle_key(ESC) is None and session.state == "idle"
    assert window.handle_key(ESC) == "quit"  # nothing asked for since the last Esc


def test_esc_after_an_explanation_key_without_a_session_does_not_quit(window, monkeypatch):
    monkeypatch.setitem(sys.modules, "livemask.explain.frozen_frame", None)  # explanations unavailable
    window.handle_key(ord("g"))
    assert window.handle_key(ESC) is None
    assert window.handle_key(ESC) == "quit"


def test_page_keys_go_to_the_session(window):
    session = FakeSession()
    window.session = session
    window.handle_key(ord("]"))
    window.handle_key(ord("["))
    assert session.pages == [1, -1]


def test_messages_expire(window, monkeypatch):
    window.say("saved x.png", 0.05)
    assert window.overlay_lines() == ["saved x.png"]
    time.sleep(0.1)
    assert window.overlay_lines() == []


def test_missing_explanation_module_is_a_visible_message(window, monkeypatch):
    monkeypatch.setitem(sys.modules, "livemask.explain.frozen_frame", None)  # import fails
    assert window.handle_key(ord("g")) is None
    assert any("explanations unavailable" in line for line in window.overlay_lines())
    assert window.session is None


def test_snapshot_saves_the_frame_without_status_lines_and_the_shown_panel(window, tmp_path):
    session = FakeSession()
    window.session = session
    window.paused = True  # "PAUSED" is on screen ...
    window.say("a message")
    window.handle_key(ord("s"))
    snaps = sorted((tmp_path / "snaps").glob("livemask-*.png"))
    assert len(snaps) == 1 and snaps[0].name.endswith("-f000007.png")
    saved = cv2.imread(str(snaps[0]))
    # ... but the snapshot is the frame as the recording has it: the renderer's lines, no PAUSED or message
    expected = window.renderer.render(window.result, [], tick=False)
    assert saved.shape == (48, 64, 3) and np.array_equal(saved, expected)
    assert session.saved == []  # no panel shown: no panel file
    # a panel on screen: the frame it explains and the panel, under one name and frame id
    session.state = "shown"
    session.shown_result = result(3)
    window.handle_key(ord("s"))
    files = sorted(p.name for p in (tmp_path / "snaps").glob("*-f000003*.png"))
    frame = [n for n in files if not n.endswith("-explain.png")]
    assert len(files) == 2 and len(frame) == 1 and frame[0].replace(".png", "-explain.png") in files


def test_snapshot_overlay_keeps_the_lines_on_screen(tmp_path):
    w = LiveWindow("livemask-test", tmp_path / "snaps", snapshot_overlay=True)
    frame = Frame(5, 0.0, np.full((240, 320, 3), 90, np.uint8), "test")
    w.result = FrameResult(frame, Detections.empty(), Predictions.empty(("mask", "no_mask")))
    w.paused = True
    w.shown = w.renderer.render(w.result, w.overlay_lines(), tick=False)
    path = w.snapshot()
    assert np.array_equal(cv2.imread(str(path)), w.shown)
    assert not np.array_equal(w.shown, w.renderer.render(w.result, [], tick=False))


def test_explanation_failure_is_shown_not_fatal(window):
    session = FakeSession()
    session.fail_next_update = True
    window.session = session
    window.update()
    assert any("explanation failed: worker broke" in line for line in window.overlay_lines())


def test_check_display(monkeypatch):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(LivemaskError, match="use --headless"):
        check_display()
    monkeypatch.setenv("DISPLAY", ":987")
    with pytest.raises(LivemaskError, match="DISPLAY=:987.*use --headless"):
        check_display()


def test_the_panel_takes_the_live_views_place_at_a_readable_size(window, monkeypatch):
    from livemask.sinks import window as window_module

    monkeypatch.setattr(window_module, "screen_size", lambda: (1280, 800))
    session = FakeSession()
    window.session = session
    window.handle_key(ord("g"))
    # a 64x48 frame is too small to read a panel in: the panel gets MIN_PANEL, less the outer gap
    w, h = window_module.MIN_PANEL
    assert session.space == (w - 2 * window_module.GAP, h - 2 * window_module.GAP)
    panel = np.random.default_rng(1).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    session.panel, session.state = panel, "shown"
    screen = window.panel_screen(panel)
    assert screen.shape == (h + window_module.FOOTER_LINES * window_module.LINE_H, w, 3)
    x, y = window_module.panel_origin(panel.shape, (w, h))
    assert np.array_equal(screen[y:y + 300, x:x + 500], panel)
    assert screen[h:].std() > 0  # the footer's two lines are written
    # the newest frame waits behind the panel: it is the one the next key explains
    newer = result(9)
    window.write(newer)
    assert window.result is newer and window.shown.shape == (48, 64, 3)
    monkeypatch.setattr(window_module, "screen_size", lambda: (640, 480))  # a small screen: the panel within it
    footer = window_module.FOOTER_LINES * window_module.LINE_H
    assert window.panel_size() == (640 - 40 - 8, 480 - 80 - footer - 8)

"""The live window's key map and explanation hook, without a display (no cv2 window calls)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from livemask.apps.compose import explain_session_factory
from livemask.core.errors import LivemaskError
from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.sinks.window import ESC, LiveWindow, check_display


class FakeSession:
    def __init__(self):
        self.is_open = False
        self.status = None
        self.requests = []
        self.saved = []
        self.fail_next_update = False

    def request(self, result, method):
        self.requests.append((result.frame.frame_id, method))
        self.is_open = True
        self.status = f"computing {method}"
        return f"{method}: accepted"

    def update(self):
        if self.fail_next_update:
            self.fail_next_update = False
            raise LivemaskError("worker broke")

    def save(self, out_dir):
        path = out_dir / "panel.png"
        cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
        self.saved.append(path)
        return path

    def close(self):
        self.is_open = False

    def shutdown(self):
        pass


def result(frame_id: int = 7) -> FrameResult:
    frame = Frame(frame_id, 0.0, np.zeros((48, 64, 3), np.uint8), "test")
    return FrameResult(frame, Detections.empty(), Predictions.empty(("mask", "no_mask")))


@pytest.fixture
def window(tmp_path):
    # the run's own factory: it imports livemask.explain.live only when the first explanation key comes
    w = LiveWindow("livemask-test", tmp_path / "snaps", explain=explain_session_factory(None, None))
    w.shown, w.result = np.full((48, 64, 3), 90, np.uint8), result()
    return w


def test_quit_pause_and_unknown_keys(window):
    assert window.handle_key(ord("q")) == "quit"
    assert window.handle_key(ESC) == "quit"  # no explanation window open
    assert window.handle_key(ord(" ")) == "pause" and window.paused
    assert "PAUSED" in window.overlay_lines()[0]
    assert window.handle_key(ord(" ")) == "pause" and not window.paused
    assert window.handle_key(ord("x")) is None


def test_explanation_keys_request_the_frame_on_screen(window):
    session = FakeSession()
    window.session = session
    window.handle_key(ord("g"))
    window.handle_key(ord("o"))
    window.handle_key(ord("e"))
    assert session.requests == [(7, "gradcam"), (7, "occlusion"), (7, "all")]
    assert "computing all" in window.overlay_lines()
    # Esc closes the explanation window first, then quits
    assert window.handle_key(ESC) is None and not session.is_open
    assert window.handle_key(ESC) == "quit"


def test_missing_explanation_module_is_a_visible_message(window, monkeypatch):
    monkeypatch.setitem(sys.modules, "livemask.explain.live", None)  # import fails
    assert window.handle_key(ord("g")) is None
    assert any("explanations unavailable" in line for line in window.overlay_lines())
    assert window.session is None


def test_snapshot_saves_png_and_the_open_panel(window, tmp_path):
    session = FakeSession()
    window.session = session
    window.handle_key(ord("s"))
    snaps = sorted((tmp_path / "snaps").glob("livemask-*.png"))
    assert len(snaps) == 1 and cv2.imread(str(snaps[0])).shape == (48, 64, 3)
    assert session.saved == []  # explanation window not open: no panel
    session.is_open = True
    window.handle_key(ord("s"))
    assert len(session.saved) == 1 and "panel.png" in window.overlay_lines()[-1]


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
    with pytest.raises(LivemaskError, match="no X server at DISPLAY=:987"):
        check_display()

"""Shared fixtures: real data folders (skipped with a reason when absent) and a real X server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LIVEMASK_DATA", ROOT.parent / "shared" / "data"))
SHARED_MODELS = Path(os.environ.get("LIVEMASK_SHARED_MODELS", ROOT.parent / "shared" / "models"))
MODEL = ROOT / "models" / "mask_classifier.keras"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "faces").is_dir():
        pytest.skip(f"real data folder not found at {DATA} (set LIVEMASK_DATA)")
    return DATA


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"optional detector files not found at {SHARED_MODELS}")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def astronaut_bgr():
    import cv2
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def detector():
    from face_detector import CenterFaceDetector

    return CenterFaceDetector()


@pytest.fixture(scope="session")
def classifier():
    from livemask.models.backends.keras_model import MaskClassifier

    return MaskClassifier(str(MODEL))


@pytest.fixture(scope="session")
def xvfb():
    """A private Xvfb server for the session; yields the environment that points at it.

    On CI (CI=true) a missing Xvfb is a failure, elsewhere a skip. A display given in
    LIVEMASK_TEST_DISPLAY (set by .ci/run, which starts its own Xvfb) is used as it is.
    """
    given = os.environ.get("LIVEMASK_TEST_DISPLAY")
    if given:
        yield _display_env(given)
        return
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Xvfb is not installed; .ci/run must install xvfb")
        pytest.skip("Xvfb is not installed (apt-get install xvfb xdotool)")
    from livehelpers import start_xvfb

    proc, display = start_xvfb()
    yield _display_env(display)
    proc.terminate()
    proc.wait(timeout=10)


def _display_env(display: str) -> dict[str, str]:
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    if fonts.is_dir():
        env["QT_QPA_FONTDIR"] = str(fonts)
    return env

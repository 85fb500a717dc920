"""Kiosk start-up as a person sees it: seconds from launching ``livemask run --kiosk`` to its window on
screen with the start screen, and to the first camera view (models loaded), on an X display.

Each repeat launches the command on a short generated clip (``--realtime``, an event log, nothing
else), polls ``xdotool search --onlyvisible`` every 20 ms until the window is mapped, then takes
screenshots (ImageMagick ``import``) until the screen shows a camera view above the band. The start
screen is checked once, on the first screenshot (it must be the kiosk's own "Starting..." screen).
Needs DISPLAY (an Xvfb is fine: ``Xvfb :97 -screen 0 1280x800x24 &``), xdotool and ImageMagick.

Usage: DISPLAY=:97 python benchmarks/bench_kiosk_start.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from livehelpers import write_clip  # noqa: E402

from livemask.sinks.kiosk import STARTING, KioskOptions, KioskRenderer  # noqa: E402


def screenshot() -> np.ndarray:
    png = subprocess.run(["import", "-window", "root", "png:-"], capture_output=True, timeout=30).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def is_start_screen(shot: np.ndarray) -> bool:
    renderer = KioskRenderer(KioskOptions())
    renderer.fit_screen((shot.shape[1], shot.shape[0]))
    expected = renderer.message_screen(STARTING)
    return float((np.abs(shot.astype(int) - expected).max(axis=2) > 60).mean()) < 0.003


def one_run(clip: Path, folder: Path) -> tuple[float, bool, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "run", "--source", str(clip), "--realtime", "--kiosk",
                             "--events", str(folder / "e.jsonl")], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        mapped = None
        while mapped is None and proc.poll() is None and time.monotonic() - t0 < 120:
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(proc.pid), "--name", "livemask"],
                                   capture_output=True, text=True).stdout.split()
            if found:
                mapped = time.monotonic() - t0
            else:
                time.sleep(0.02)
        starting = is_start_screen(screenshot())
        view = None
        while view is None and proc.poll() is None and time.monotonic() - t0 < 180:
            shot = screenshot()
            h = shot.shape[0]  # bright above the band, the band painted (not a window Qt has yet to paint)
            if shot[: int(0.6 * h)].max() > 60 and shot[int(0.8 * h):].max(axis=2).mean() > 30:
                view = time.monotonic() - t0
        return mapped or float("nan"), starting, view or float("nan")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = write_clip(folder / "clip.avi", 600)
        rows = [one_run(clip, folder) for _ in range(args.repeats)]
    print("| run | window with start screen (s) | start screen seen | first camera view (s) |")
    print("|---|---|---|---|")
    for i, (mapped, starting, view) in enumerate(rows, 1):
        print(f"| {i} | {mapped:.2f} | {'yes' if starting else 'no'} | {view:.2f} |")
    print(f"| median | {statistics.median(r[0] for r in rows):.2f} | | {statistics.median(r[2] for r in rows):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Kiosk start-up as a person sees it: seconds from launching ``livemask run --kiosk`` to its window on
screen with the start screen, and to the first camera view (models loaded), on an X display.

Each repeat launches the command on a short generated clip (``--realtime``, an event log, nothing
else), polls ``xdotool search --onlyvisible`` every 20 ms until the window is mapped, then takes
screenshots (ImageMagick ``import``, PPM, about 0.05-0.3 s each; the time is the end of the grab) until one
shows the kiosk's own "Starting..." screen, then until the screen shows a camera view above the band.
Needs DISPLAY (an Xvfb is fine: ``Xvfb :97 -screen 0 1280x800x24 -noreset &``), xdotool and ImageMagick.

Usage: DISPLAY=:97 python benchmarks/bench_kiosk_start.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import functools
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
    # PPM: no compression, the grab is most of the call
    ppm = subprocess.run(["import", "-window", "root", "ppm:-"], capture_output=True, timeout=30).stdout
    return cv2.imdecode(np.frombuffer(ppm, np.uint8), cv2.IMREAD_COLOR) if ppm else None


@functools.lru_cache(maxsize=4)
def start_screen(width: int, height: int) -> np.ndarray:
    renderer = KioskRenderer(KioskOptions())
    renderer.fit_screen((width, height))
    return renderer.message_screen(STARTING)


def is_start_screen(shot: np.ndarray) -> bool:
    expected = start_screen(shot.shape[1], shot.shape[0])
    return float((np.abs(shot.astype(int) - expected).max(axis=2) > 60).mean()) < 0.003


def one_run(clip: Path, folder: Path) -> tuple[float, float, float]:
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
        # the end of the first screenshot that shows the start screen (an upper bound: the screen was painted
        # before the grab; each grab takes about 0.05-0.3 s), not counting the comparison
        starting = None
        while starting is None and proc.poll() is None and time.monotonic() - t0 < 60:
            shot = screenshot()
            grabbed = time.monotonic() - t0
            if shot is not None and is_start_screen(shot):
                starting = grabbed
        view = None
        while view is None and proc.poll() is None and time.monotonic() - t0 < 180:
            shot = screenshot()
            grabbed = time.monotonic() - t0
            if shot is None:
                continue
            h = shot.shape[0]  # bright above the band, the band painted (not a window Qt has yet to paint)
            if shot[: int(0.6 * h)].max() > 60 and shot[int(0.8 * h):].max(axis=2).mean() > 30:
                view = grabbed
        return mapped or float("nan"), starting or float("nan"), view or float("nan")
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
    print("| run | window mapped (s) | start screen on screen (s) | first camera view (s) |")
    print("|---|---|---|---|")
    for i, (mapped, starting, view) in enumerate(rows, 1):
        print(f"| {i} | {mapped:.2f} | {starting:.2f} | {view:.2f} |")
    print("| median | " + " | ".join(f"{statistics.median(r[k] for r in rows):.2f}" for k in range(3)) + " |")
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

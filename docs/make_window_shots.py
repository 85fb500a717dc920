"""Make the docs' screenshots of the window: several cameras (docs/window-cameras.png, -explain.png, for
docs/cameras.md) and one camera with its explanation panel (docs/window-explain.png, for docs/video.md).

    .venv/bin/python docs/make_window_shots.py [--data ../shared/data] [--out docs]

What is photographed is the real program: ``livemask run --camera ...`` started as a command (the committed
model, config.yaml) on a private Xvfb server (1280x800, no window manager), with four cameras: three are the
real clips of ``videos/`` (looped to 60 s, letterboxed to 640x480 at 15 fps, played with ``--realtime``) and
the fourth, ``garage``, is a file that does not exist, so its tile shows a failed camera. Once every working
camera is live (``site.jsonl``) and has had a few seconds, the key ``2`` moves the focus to the second tile
and the window's own pixels are read with ImageMagick's ``import``; then ``g`` explains the focused camera's
frame, and once its panel has taken the tiles' place the window is read again; then ``q`` ends the run.
Then one camera: ``livemask run --source`` on the first clip (looped and letterboxed the same way), and
once the window has shown it for a few seconds, ``g``; when the panel has taken the live view's place
(the window changes to the panel's size) the window is read half a second later, and ``q`` ends the run.
The clips are only read; every output goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

NAMES = ("entrance", "lobby", "yard")


def xvfb() -> tuple[subprocess.Popen, dict]:
    from livehelpers import start_xvfb

    proc, display = start_xvfb()
    return proc, dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")


def live(site: Path, names) -> bool:
    if not site.is_file():
        return False
    states: dict[str, str] = {}
    for line in site.read_text().splitlines():
        record = json.loads(line)
        if "state" in record:
            states[record["camera"]] = record["state"]
    return all(states.get(n) == "live" for n in names)


def wait_for_panel(env: dict, proc: subprocess.Popen, tiles: Path, target: Path, timeout: float = 120) -> bool:
    """Read the window until the explanation panel has replaced the tiles (the key line under them, which
    the shot ``tiles`` shows, has changed), then once more half a second later into ``target``."""
    import cv2
    import numpy as np
    from livehelpers import find_window

    from livemask.sinks.site_window import LINE_H, grid_for

    top = grid_for(len(NAMES) + 1, (1280, 800)).size[1]
    before = cv2.imread(str(tiles))[top:top + LINE_H].astype(int)
    probe = target.with_suffix(".probe.png")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            subprocess.run(["import", "-window", find_window(env, proc), str(probe)], env=env, check=True, timeout=30)
            line = cv2.imread(str(probe))[top:top + LINE_H].astype(int)
            if line.shape == before.shape and (np.abs(line - before).max(axis=2) > 60).mean() > 0.02:
                time.sleep(0.5)
                subprocess.run(["import", "-window", find_window(env, proc), str(target)], env=env, check=True,
                               timeout=30)
                return True
            time.sleep(0.5)
        return False
    finally:
        probe.unlink(missing_ok=True)


def single_camera_shot(env: dict, clip: Path, tmp: Path, target: Path) -> None:
    """One camera's window after ``g``: the explanation panel in place of the live view."""
    import cv2
    from livehelpers import find_window, send_keys

    proc = subprocess.Popen([sys.executable, "-m", "livemask", "run", "--source", str(clip), "--realtime",
                             "--set", f"run.snapshot_dir={tmp / 'snaps1'}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    probe = target.with_suffix(".probe.png")
    try:
        find_window(env, proc)
        time.sleep(8)  # the models loaded, a few seconds of tracking
        subprocess.run(["import", "-window", find_window(env, proc), str(probe)], env=env, check=True, timeout=30)
        live_shape = cv2.imread(str(probe)).shape
        send_keys(env, proc, "livemask", "g")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            subprocess.run(["import", "-window", find_window(env, proc), str(probe)], env=env, check=True,
                           timeout=30)
            if cv2.imread(str(probe)).shape != live_shape:
                time.sleep(0.5)
                subprocess.run(["import", "-window", find_window(env, proc), str(target)], env=env, check=True,
                               timeout=30)
                break
            time.sleep(0.5)
        else:
            raise SystemExit("the explanation panel did not show within 120 s")
        send_keys(env, proc, "livemask", "q")
        proc.wait(timeout=60)
    finally:
        probe.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from livehelpers import find_window, send_keys
    from rtsphelpers import make_clip

    clips = sorted((args.data / "videos").glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips in {args.data / 'videos'}")
    server, env = xvfb()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            cams, names = [], list(NAMES[:len(clips)])
            for name, src in zip(names, clips, strict=False):
                cams += ["--camera", f"{name}={make_clip(src, tmp / f'{name}.mp4', 60)}"]
            cams += ["--camera", f"garage={tmp / 'garage.mp4'}"]
            out = tmp / "out"
            proc = subprocess.Popen([sys.executable, "-m", "livemask", "run", *cams, "--realtime", "--output-dir",
                                     str(out), "--set", f"run.snapshot_dir={tmp / 'snaps'}"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                wid = find_window(env, proc)
                deadline = time.monotonic() + 180
                while not live(out / "site.jsonl", names):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit(f"the cameras did not all go live (exit status {proc.poll()})")
                    time.sleep(0.5)
                time.sleep(6)  # a few seconds of tracking, so the tiles show people counts
                send_keys(env, proc, "livemask", "2")
                time.sleep(1)
                wid = find_window(env, proc)
                target = args.out / "window-cameras.png"
                subprocess.run(["import", "-window", wid, str(target)], env=env, check=True, timeout=30)
                print(f"wrote {target}")
                send_keys(env, proc, "livemask", "g")
                tiles, target = target, args.out / "window-cameras-explain.png"
                if not wait_for_panel(env, proc, tiles, target):
                    raise SystemExit("the explanation panel did not show within 120 s")
                print(f"wrote {target}")
                send_keys(env, proc, "livemask", "q")
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
            target = args.out / "window-explain.png"
            single_camera_shot(env, tmp / f"{names[0]}.mp4", tmp, target)
            print(f"wrote {target}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

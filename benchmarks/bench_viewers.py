"""Live viewers waiting between frames: the CPU a ``livemask serve`` process spends on them, before / after.

Each side (a baseline checkout and this one) starts ``livemask serve --source CLIP`` as its own process
(``--port 0``, 127.0.0.1 only): a 2 s file of the astronaut drifting, which plays from its first viewer and then
says ``ended`` and keeps its last frame. The server's CPU time (``/proc/PID/stat``, user + system) is read over
``--seconds`` in two phases:

* ``no viewer``: before anyone connects (the file waits for its first viewer): the idle floor;
* ``N viewers, ended``: ``--viewers`` WebSockets on ``/v1/live`` that have all been told ``ended``; nothing more
  is sent, so what the server spends is its viewers' waiting for a frame that does not come.

The sides alternate, ``--repeats`` times each, so that a change of machine load hits both alike.

Usage: python benchmarks/bench_viewers.py --baseline /tmp/lm-before [--viewers 8] [--seconds 10] [--repeats 3]
(make the baseline with ``git worktree add /tmp/lm-before <commit>``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import machine, table
from livehelpers import SERVING, astronaut_bgr, stop_process

ROOT = Path(__file__).resolve().parent.parent


def make_clip(path: Path, seconds: float = 2.0, fps: int = 15) -> Path:
    import cv2
    import numpy as np

    face = cv2.resize(astronaut_bgr(), (360, 360))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        frame = np.full((480, 640, 3), 90, np.uint8)
        x = 40 + 4 * i
        frame[60:420, x:x + 360] = face
        writer.write(frame)
    writer.release()
    return path


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core that ``pid`` used over the next ``seconds``."""
    start, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_s(pid) - start) / (time.monotonic() - t0)


class Viewer(threading.Thread):
    """A ``/v1/live`` WebSocket that reads everything and notes when it is told ``ended``."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.ended, self.stop, self.frames = url, threading.Event(), threading.Event(), 0

    def run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=30, max_size=None) as ws:
            while not self.stop.is_set():
                try:
                    message = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                if isinstance(message, bytes):
                    self.frames += 1
                elif json.loads(message).get("state") == "ended":
                    self.ended.set()


def one_side(checkout: Path, clip: Path, model: str, viewers: int, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"}
    env["PYTHONPATH"] = str(checkout)
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", "--source", str(clip),
                             "--set", f"classifier.model_path={model}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=checkout, env=env)
    try:
        match = SERVING.search(proc.stdout.readline())
        if not match:
            raise SystemExit(f"{checkout}: serve did not start")
        time.sleep(2.0)  # past the start-up's own work
        idle = cpu_share(proc.pid, seconds)
        ws_url = match.group(1).replace("http://", "ws://") + "/v1/live"
        team = [Viewer(ws_url) for _ in range(viewers)]
        for v in team:
            v.start()
        for v in team:
            if not v.ended.wait(120):
                raise SystemExit(f"{checkout}: a viewer was not told 'ended' within 120 s")
        time.sleep(1.0)
        waiting = cpu_share(proc.pid, seconds)
        for v in team:
            v.stop.set()
        for v in team:
            v.join(5)
        return {"idle": idle, "waiting": waiting, "frames": min(v.frames for v in team)}
    finally:
        stop_process(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare against")
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.onnx"))
    parser.add_argument("--viewers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (args.baseline / "livemask" / "__main__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: not a livemask checkout")
    model = str(Path(args.model).resolve())
    if not Path(model).is_file():
        raise SystemExit(f"--model {model}: no such file")
    tmp = Path(tempfile.mkdtemp(prefix="bench_viewers_"))
    clip = make_clip(tmp / "clip.mp4")
    sides = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    got: dict[str, list[dict]] = {name: [] for name in sides}
    load_before = os.getloadavg()
    for r in range(args.repeats):
        for name, checkout in sides.items():
            result = one_side(checkout, clip, model, args.viewers, args.seconds)
            got[name].append(result)
            print(f"# repeat {r + 1}: {name}: no viewer {result['idle']:.1%}, {args.viewers} viewers ended "
                  f"{result['waiting']:.1%} of a core ({result['frames']}+ frames each)", flush=True)
    load_after = os.getloadavg()
    print(f"\nMachine: {machine()}. `livemask serve --source` a 2 s 640x480 clip at 15 fps, model "
          f"{Path(model).name}; CPU of the server process over {args.seconds:g} s per phase, share of one core.")
    print(f"Load average (1/5/15 min) {' / '.join(f'{x:.1f}' for x in load_before)} -> "
          f"{' / '.join(f'{x:.1f}' for x in load_after)}.\n")
    rows = []
    for name, results in got.items():
        idle = [x["idle"] for x in results]
        waiting = [x["waiting"] for x in results]
        rows.append([name, str(sides[name]), f"{statistics.median(idle):.1%}", f"{statistics.median(waiting):.1%}",
                     ", ".join(f"{x:.1%}" for x in waiting)])
    print(table(["code", "checkout", "no viewer (median)", f"{args.viewers} viewers, ended (median)",
                 "runs (interleaved)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

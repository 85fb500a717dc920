"""The Site page in Chromium with several cameras: how often every tile updates in the grid, the rate of an opened
camera's Live view, and what the cameras process meanwhile, all in one run of one ``livemask serve`` process.

Every camera is a real clip of ../shared/data/videos (looped, letterboxed to 640x480, H.264 at ``--fps``)
given as ``--camera cN=CLIP``: a file camera, paced at its frame rate like a camera, playing from its first
viewer. Four phases, each ``--seconds`` long, in this order, after a warm-up:

* ``api only``: no browser; the benchmark polls ``/v1/cameras`` (the cameras' processed fps without a page);
* ``grid``: Debian's Chromium shows ``/site`` (a tile per camera; the frames come as one mosaic JPEG per update
  over ``WS /v1/cameras/tiles``);
* ``grid + live view``: the grid stays open and a second tab shows camera c0's Live view (``/?mode=live&camera=c0``);
* ``c0's tile clicked``: the second tab closed, the grid's tile of c0 is clicked, as a person opens a camera: the
  page becomes c0's Live view (the grid is gone).

Per phase: each tile's updates per second in the grid (the tile's ``data-loaded`` count: new frames drawn), the Live
view's frames per second (``window.liveStats.frames``), each camera's processed fps (the frames its page hub
rendered, from ``/v1/cameras``), the server's and the browser's CPU share (all of Chromium's processes, in
cores: 100% = one core) and the load average. Medians and minimums over the cameras.

Usage: python benchmarks/bench_site_page.py [--cameras 10] [--seconds 30] [--fps 15] [--warmup 10] [--serve-arg=ARG ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import machine, process_rss_mb, table  # noqa: E402
from livehelpers import stop_process  # noqa: E402

ROOT = HERE.parent
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CHROMIUM = "/usr/bin/chromium"
TILE_LOADS = """() => Object.fromEntries([...document.querySelectorAll('.tile')].map(
    t => [t.dataset.camera, Number(t.dataset.loaded || 0)]))"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc's parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def browser_cpu_seconds(marker: str) -> float:
    """CPU seconds of this benchmark's Chromium: the process launched with ``marker`` and all below it."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            for p in descendants(int(entry.name)):
                total += cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            continue
        return total
    return 0.0


def make_clips(folder: Path, n: int, seconds: float, fps: float) -> list[Path]:
    from rtsphelpers import make_clip

    sources = sorted(VIDEOS.glob("*.mp4"))
    if not sources:
        sys.exit(f"no clips in {VIDEOS}")
    made = [make_clip(src, folder / f"clip{i}.mp4", seconds, fps) for i, src in enumerate(sources)]
    return [made[i % len(made)] for i in range(n)]


def measure(url: str, pid: int, seconds: float, grid=None, live=None, marker: str = "") -> dict:
    """One phase: per-camera processed fps and tile rates, the Live view's fps, the server's and the browser's
    CPU share."""
    def frames() -> dict[str, int]:
        return {c["name"]: c["frames"] for c in get_json(url + "/v1/cameras")["cameras"]}

    f0, cpu0, browser0, t0 = frames(), cpu_seconds(pid), browser_cpu_seconds(marker), time.monotonic()
    tiles0 = grid.evaluate(TILE_LOADS) if grid is not None else None
    live0 = live.evaluate("window.liveStats.frames") if live is not None else None
    end = t0 + seconds
    while time.monotonic() < end:
        frames()  # the page's own poll goes on too; this one keeps the file cameras watched without a page
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    f1, cpu1, browser1 = frames(), cpu_seconds(pid), browser_cpu_seconds(marker)
    out = {"processed": {n: (f1[n] - f0[n]) / elapsed for n in f0}, "cpu": (cpu1 - cpu0) / elapsed,
           "browser_cpu": (browser1 - browser0) / elapsed, "rss": process_rss_mb(pid), "load": os.getloadavg()[0]}
    if grid is not None:
        tiles1 = grid.evaluate(TILE_LOADS)
        out["tiles"] = {n: (tiles1[n] - tiles0[n]) / elapsed for n in tiles0}
    if live is not None:
        out["live"] = (live.evaluate("window.liveStats.frames") - live0) / elapsed
    return out


def row(label: str, m: dict) -> list[object]:
    processed = list(m["processed"].values())
    tiles = list(m.get("tiles", {}).values())
    return [label, f"{statistics.median(processed):.1f}", f"{min(processed):.1f}",
            f"{statistics.median(tiles):.1f}" if tiles else "-", f"{min(tiles):.1f}" if tiles else "-",
            f"{m['live']:.1f}" if "live" in m else "-", f"{100 * m['cpu']:.0f}%",
            f"{100 * m['browser_cpu']:.0f}%" if "tiles" in m or "live" in m else "-", f"{m['rss']:.0f}",
            f"{m['load']:.1f}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="one more argument for serve (repeatable), e.g. --serve-arg=--worker-nice --serve-arg=0")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    clip_seconds = args.warmup * 3 + args.seconds * 4 + 60  # every camera plays through the four phases
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), args.cameras, clip_seconds, args.fps)
        command = [sys.executable, "-m", "livemask", "serve", "--port", "0", *args.serve_arg]
        for i, clip in enumerate(clips):
            command += ["--camera", f"c{i}={clip}"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        try:
            match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/site", proc.stdout.readline())
            if not match:
                sys.exit("the server did not start")
            url = match.group(1)
            deadline = time.monotonic() + 120
            while min(c["frames"] for c in get_json(url + "/v1/cameras")["cameras"]) < 10:
                if time.monotonic() > deadline:
                    sys.exit("the cameras did not start")
                time.sleep(0.5)
            time.sleep(args.warmup)
            phases = [("api only", measure(url, proc.pid, args.seconds))]
            marker = f"--livemask-bench-site-page={os.getpid()}"  # finds this benchmark's Chromium in /proc
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[marker])
                grid = browser.new_page(viewport={"width": 1600, "height": 1000})
                grid.goto(url + "/site")
                grid.wait_for_function(f"document.querySelectorAll('.tile[data-loaded]').length === {args.cameras}",
                                       timeout=60_000)
                time.sleep(args.warmup / 2)
                phases.append(("grid", measure(url, proc.pid, args.seconds, grid, marker=marker)))
                live = browser.new_page(viewport={"width": 1280, "height": 900})
                live.goto(url + "/?mode=live&camera=c0")
                live.wait_for_function("window.liveStats.frames > 5", timeout=60_000)
                time.sleep(args.warmup / 2)
                phases.append(("grid + live view of c0", measure(url, proc.pid, args.seconds, grid, live, marker)))
                live.close()
                grid.click('.tile[data-camera="c0"]')  # what a person does: the grid page becomes c0's Live view
                grid.wait_for_url("**/?mode=live&camera=c0*", timeout=30_000)
                grid.wait_for_function("window.liveStats.frames > 5", timeout=60_000)
                time.sleep(args.warmup / 2)
                phases.append(("c0's tile clicked: its live view", measure(url, proc.pid, args.seconds, None, grid,
                                                                          marker)))
                browser.close()
        finally:
            stop_process(proc)
    print(f"Site page, {args.cameras} file cameras of 640x480 at {args.fps:g} fps, {args.seconds:g} s per phase; "
          f"{machine()}")
    print(table(["phase", "processed fps (median)", "processed fps (min)", "tile updates/s (median)",
                 "tile updates/s (min)", "live view fps", "server CPU", "browser CPU", "server RSS MB",
                 "load average at the end"],
                [row(label, m) for label, m in phases]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

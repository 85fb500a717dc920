"""``livemask serve``: API latency at 4 concurrent clients, live page fps and latency, browser webcam
round trips, idle memory and startup time, each against a real server process.

* startup: from spawning ``livemask serve`` to the first ``/healthz`` answer (model load,
  warm-up traces included); idle RSS of the server process after start-up.
* ``POST /v1/image``: a 640x480 photo (scikit-image's astronaut on a 640x480 scene), 1 and 4
  concurrent clients (keep-alive connections), for both ways of serialising the model
  (``--serialise worker`` and ``--serialise lock``): p50 / p95 per request, throughput.
* live page: ``serve --source`` a 640x480 clip at 25 fps (paced like a camera); Debian's
  Chromium (Playwright) shows the WebSocket frames; the page stamps each frame when it is
  decoded, against the capture time the server sends (same machine clock): fps received and
  capture-to-browser latency p50 / p95.
* browser webcam: Chromium's fake camera (a .y4m made with ffmpeg) -> WebSocket -> results:
  results/s, round trip p50 / p95, frames the server dropped as stale.

Usage: python benchmarks/bench_serve.py [--requests 200] [--seconds 12] [--photo-sizes 480,320] [--api-only]
The machine load (``uptime``) is printed with the figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, process_rss_mb, table

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LIVEMASK_CHROMIUM", "/usr/bin/chromium")
FPS = 25


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def scene() -> np.ndarray:
    import skimage.data

    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (512, 480))
    return frame


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


class Server:
    """``livemask serve --port 0 ...`` in a subprocess; ``url``, ``startup_s``."""

    def __init__(self, *args: str):
        import httpx

        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                                     env={k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"})
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            raise RuntimeError(f"serve did not start: {line!r}")
        self.url = f"http://127.0.0.1:{m.group(1)}"
        while True:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.startup_s = time.monotonic() - started

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_image(url: str, photo: bytes, clients: int, requests: int) -> dict:
    import httpx

    per_client = requests // clients

    def worker(_):
        times = []
        with httpx.Client(timeout=120) as c:
            for _ in range(per_client):
                t0 = time.perf_counter()
                r = c.post(url + "/v1/image", files={"file": ("p.jpg", photo, "image/jpeg")})
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["faces"], r.text
        return times

    worker(0) if clients == 1 else None  # warm the connection path
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        times = [t for ts in pool.map(worker, range(clients)) for t in ts]
    wall = time.perf_counter() - t0
    return {"p50": pct(times, 50), "p95": pct(times, 95), "rps": len(times) / wall, "n": len(times)}


def make_clip(path: Path, seconds: int) -> None:
    face, empty = scene(), np.full((480, 640, 3), 90, np.uint8)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    for i in range(seconds * FPS):
        f = (empty if (i // FPS) % 4 == 3 else face).copy()
        cv2.putText(f, str(i), (10, 470), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        w.write(f)
    w.release()


def make_y4m(path: Path, tmp: Path) -> None:
    avi = tmp / "cam.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    s = scene()
    for i in range(FPS):
        w.write(np.roll(s, i * 2, axis=1))
    w.release()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(avi), "-pix_fmt", "yuv420p", str(path)], check=True)


def bench_live(playwright, url: str, seconds: float) -> dict:
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    try:
        page = b.new_page()
        page.goto(url + "/?mode=live")
        page.wait_for_function("window.liveStats.frames >= 10", timeout=60_000)
        time.sleep(2)
        f0, n0 = page.evaluate("[window.liveStats.frames, window.liveStats.latencies.length]")
        t0 = time.monotonic()
        time.sleep(seconds)
        f1, lat = page.evaluate("[window.liveStats.frames, window.liveStats.latencies]")
        dt = time.monotonic() - t0
        lat = lat[n0 - len(lat):] if n0 <= len(lat) else lat
        return {"fps": (f1 - f0) / dt, "p50": pct(lat, 50), "p95": pct(lat, 95)}
    finally:
        b.close()


def bench_webcam(playwright, url: str, y4m: Path, seconds: float) -> dict:
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    try:
        page = b.new_page()
        page.goto(url + "/?mode=webcam")
        page.wait_for_selector("body[data-ready='1']")
        page.click("#cam-start")
        page.wait_for_function("window.camStats.results >= 10", timeout=60_000)
        time.sleep(1)
        r0, n0, d0 = page.evaluate("[window.camStats.results, window.camStats.rtts.length, window.camStats.dropped]")
        t0 = time.monotonic()
        time.sleep(seconds)
        r1, rtts, d1 = page.evaluate("[window.camStats.results, window.camStats.rtts, window.camStats.dropped]")
        dt = time.monotonic() - t0
        rtts = rtts[n0:] if n0 < len(rtts) else rtts
        return {"rate": (r1 - r0) / dt, "p50": pct(rtts, 50), "p95": pct(rtts, 95), "dropped": d1 - d0}
    finally:
        b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--seconds", type=float, default=12.0, help="measuring time for the live page and webcam")
    parser.add_argument("--photo-sizes", default="",
                        help="extra detector input sizes for the photo API rows (e.g. 480,320: "
                             "--set detector.input_long_side=N, worker mode)")
    parser.add_argument("--api-only", action="store_true", help="only the photo API rows")
    parser.add_argument("--opencv", action="store_true",
                        help="one more photo API setup: the worker with the detector on OpenCV's DNN module "
                             "(--set detector.runtime=opencv) instead of the default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one more photo API setup per use: the worker with this config override")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    _, buf = cv2.imencode(".jpg", scene(), [cv2.IMWRITE_JPEG_QUALITY, 90])
    photo = buf.tobytes()
    load_before = uptime()
    print(f"machine: {machine()}\nload before: {load_before}\n", flush=True)
    rows, other = [], []
    sizes = [int(v) for v in args.photo_sizes.split(",") if v.strip()]
    setups = [("worker", "worker", ()), ("lock", "lock", ())]  # (row label, serialise mode, --set)
    if args.opencv:
        setups.append(("worker, detector on OpenCV DNN", "worker", ("--set", "detector.runtime=opencv")))
    setups += [(f"worker, detector {n} px", "worker", ("--set", f"detector.input_long_side={n}")) for n in sizes]
    setups += [(f"worker, {kv}", "worker", ("--set", kv)) for kv in args.set]
    for label, mode, extra in setups:
        srv = Server("--serialise", mode, *extra)
        try:
            if label == "worker":
                time.sleep(2)
                other.append(["startup (spawn to first /healthz)", f"{srv.startup_s:.1f} s"])
                other.append(["idle RSS after start-up", f"{process_rss_mb(srv.proc.pid):.0f} MB"])
            for clients in (1, 4):
                r = bench_image(srv.url, photo, clients, args.requests if clients > 1 else args.requests // 4)
                rows.append([label, clients, r["n"], f"{r['p50']:.0f}", f"{r['p95']:.0f}", f"{r['rps']:.1f}"])
                print(table(["serialise", "clients", "requests", "p50 ms", "p95 ms", "req/s"], rows[-1:]), flush=True)
        finally:
            srv.close()
    if args.api_only:
        print("\n## POST /v1/image, 640x480 photo\n")
        print(table(["serialise", "clients", "requests", "p50 ms", "p95 ms", "req/s"], rows))
        print("\n" + table(["measure", "value"], other))
        print(f"\nload before: {load_before}\nload after:  {uptime()}")
        return
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        clip = tmp / "clip.mp4"
        make_clip(clip, int(args.seconds) + 30)
        srv = Server("--source", str(clip))
        try:
            live = bench_live(p, srv.url, args.seconds)
        finally:
            srv.close()
        y4m = tmp / "cam.y4m"
        make_y4m(y4m, tmp)
        srv = Server()
        try:
            cam = bench_webcam(p, srv.url, y4m, args.seconds)
        finally:
            srv.close()
    other += [["live page: fps in the browser (25 fps file source, 640x480)", f"{live['fps']:.1f}"],
              ["live page: capture-to-browser latency p50 / p95", f"{live['p50']:.0f} / {live['p95']:.0f} ms"],
              ["webcam: results/s", f"{cam['rate']:.1f}"],
              ["webcam: round trip p50 / p95", f"{cam['p50']:.0f} / {cam['p95']:.0f} ms"],
              ["webcam: frames dropped as stale (server)", str(cam["dropped"])]]
    print("\n## POST /v1/image, 640x480 photo\n")
    print(table(["serialise", "clients", "requests", "p50 ms", "p95 ms", "req/s"], rows))
    print("\n## live page, webcam, start-up\n")
    print(table(["measure", "value"], other))
    print(f"\nload before: {load_before}\nload after:  {uptime()}")


if __name__ == "__main__":
    main()

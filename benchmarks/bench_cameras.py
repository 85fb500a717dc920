"""Several cameras: one ``livemask run --camera ...`` process against one process per camera, same run, same clips.

Every camera is a real clip of ../shared/data/videos (looped, letterboxed to 640x480, re-encoded
H.264 at ``--fps``), fed in real time (``--realtime``, so it behaves like a camera: frames the
process cannot take are dropped and counted). No video is written; each camera's event log is.

* one process: ``livemask run --realtime --headless --camera c0=CLIP ... --output-dir D``;
* baseline: one ``livemask run --realtime --headless --source CLIP --events D/cN.jsonl`` process per camera,
  all at once.

Per camera: processed fps (frames processed / seconds), dropped share of the frames read,
capture-to-result p95; for the run: peak RSS (the sum of the processes' peaks for the baseline) and CPU
seconds per camera-second. ``--capacity 8,10,12`` also runs one process with each number of cameras
(at ``--fps`` and at ``--slow-fps``) and says which held every camera at <= 3% dropped and p95 <= 150 ms.
``--dead`` serves camera 0 from a real RTSP server (tests/rtsp_server.py) killed for 20 s, and compares
the other cameras' processed fps while it is down with before.

Usage: python benchmarks/bench_cameras.py [--cameras 10] [--seconds 120] [--fps 15] [--baseline/--no-baseline]
       [--capacity 8,10,12] [--slow-fps 5] [--dead]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from common import machine, table  # noqa: E402

ROOT = HERE.parent
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
MAX_DROP, MAX_P95 = 3.0, 150.0


def make_clips(folder: Path, seconds: float, fps: float) -> list[Path]:
    from rtsphelpers import make_clip

    sources = sorted(VIDEOS.glob("*.mp4"))
    if not sources:
        sys.exit(f"no clips in {VIDEOS}")
    return [make_clip(src, folder / f"clip{i}_{fps:g}.mp4", seconds, fps) for i, src in enumerate(sources)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "livemask", "run", "--realtime", *args]


class Rss:
    """Samples the processes' resident memory (VmRSS) every 0.5 s; keeps each one's peak; and their CPU time."""

    def __init__(self, procs: list[subprocess.Popen]):
        self.procs = procs
        self.peak = {p.pid: 0 for p in procs}
        self.cpu = {p.pid: 0.0 for p in procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(0.5):
            for p in self.procs:
                try:
                    for line in open(f"/proc/{p.pid}/status"):
                        if line.startswith("VmRSS:"):
                            self.peak[p.pid] = max(self.peak[p.pid], int(line.split()[1]) * 1024)
                    fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
                    self.cpu[p.pid] = (int(fields[11]) + int(fields[12])) / tick
                except (OSError, IndexError, ValueError):
                    pass

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return sum(self.peak.values()) / 2**20, sum(self.cpu.values())


def camera_rows(summaries: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for name, s in summaries.items():
        read = s.get("frames_read") or 0
        out[name] = {"fps": s["frames_processed"] / s["duration_s"] if s.get("duration_s") else 0.0,
                     "drop": 100.0 * s.get("dropped", 0) / read if read else 100.0,
                     "p95": (s.get("capture_to_result_ms") or {}).get("p95") or float("inf")}
    return out


def one_process(clips: list[Path], n: int, seconds: float, fps: float, out: Path, dead=None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cams = []
    for i in range(n):
        cams += ["--camera", f"c{i}={clips[i % len(clips)]}"]
    if dead is not None:
        cams[1] = f"c0={dead.url}"
    args = cli("--headless", *cams, "--output-dir", str(out), "--max-frames", str(int(seconds * fps)),
               "--set", "source.reconnect_tries=100", "--set", "source.reconnect_max_delay_s=1",
               "--set", "source.timeout_s=3")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss = Rss([proc])
    if dead is not None:
        dead.run(out / "c1.jsonl", proc)
    _out, err = proc.communicate(timeout=seconds * 3 + 600)
    mb, cpu = rss.stop()
    lines = [json.loads(x) for x in (out / "site.jsonl").read_text().splitlines() if x.strip()]
    site = lines[-1]["summary"]
    summaries = {k: v["summary"] for k, v in site["cameras"].items() if v["summary"]}
    if proc.returncode != 0:
        print(f"one process (n={n}) exit {proc.returncode}: {err.strip().splitlines()[-1:]}", file=sys.stderr)
    return {"cams": camera_rows(summaries), "rss_mb": mb, "cpu_s": cpu, "n": n, "dir": out}


def baseline(clips: list[Path], n: int, seconds: float, fps: float, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen(cli("--headless", "--source", str(clips[i % len(clips)]), "--events",
                                  str(out / f"c{i}.jsonl"), "--max-frames", str(int(seconds * fps))),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]
    rss = Rss(procs)
    for p in procs:
        p.wait(timeout=seconds * 3 + 600)
    mb, cpu = rss.stop()
    summaries = {}
    for i in range(n):
        last = (out / f"c{i}.jsonl").read_text().strip().splitlines()[-1]
        summaries[f"c{i}"] = json.loads(last)["summary"]
    return {"cams": camera_rows(summaries), "rss_mb": mb, "cpu_s": cpu, "n": n, "dir": out}


def describe(label: str, run: dict, seconds: float) -> list[object]:
    cams = run["cams"].values()
    fps = [c["fps"] for c in cams]
    drop = [c["drop"] for c in cams]
    p95 = [c["p95"] for c in cams]
    ok = all(d <= MAX_DROP for d in drop) and all(p <= MAX_P95 for p in p95) and len(fps) == run["n"]
    return [label, run["n"], f"{min(fps):.1f} / {statistics.median(fps):.1f}", f"{max(drop):.1f}",
            f"{max(p95):.0f}", f"{run['rss_mb']:.0f}", f"{run['cpu_s'] / (run['n'] * seconds):.3f}",
            "yes" if ok else "no"]


class DeadCamera:
    """Camera 0 from a real RTSP server, killed ``down_s`` after ``after_s`` of the run and then restarted."""

    def __init__(self, clip: Path, after_s: float = 30.0, down_s: float = 20.0):
        from rtsphelpers import require_rtsp_server, rtsp_server

        require_rtsp_server()
        self.clip, self.after_s, self.down_s = clip, after_s, down_s
        self._server = rtsp_server(clip)
        self.proc, self.url = self._server.__enter__()
        self.window: tuple[float, float] | None = None

    def run(self, probe: Path, run: subprocess.Popen) -> None:
        from rtsphelpers import rtsp_server, stop, url_port

        while not probe.is_file() or probe.stat().st_size == 0:  # camera 1 is processing: the run is going
            if run.poll() is not None:
                return
            time.sleep(0.2)
        time.sleep(self.after_s)
        stop(self.proc)
        killed = time.time()
        time.sleep(self.down_s)
        self.window = (killed, time.time())
        self._server.__exit__(None, None, None)
        self._server = rtsp_server(self.clip, url_port(self.url))
        self.proc, _url = self._server.__enter__()

    def close(self) -> None:
        self._server.__exit__(None, None, None)


def fps_around(path: Path, window: tuple[float, float]) -> tuple[float, float]:
    """A camera's processed fps in the ``window`` (wall clock) and in as long a time before it."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    times = [x["timestamp"] for x in lines if "faces" in x and x.get("timestamp") is not None]  # frame lines
    span = window[1] - window[0]
    before = sum(window[0] - span <= t < window[0] for t in times) / span
    during = sum(window[0] <= t < window[1] for t in times) / span
    return before, during


def shared_classifier(threads: int, seconds: float) -> list[list[object]]:
    """The shared classifier alone, in this process: ``threads`` callers (one per camera) classifying the faces
    of a real frame in a loop, with the lock against batched across callers (same frames, same model)."""
    import cv2
    import numpy as np

    from face_detector import CenterFaceDetector
    from livemask.core.quiet import import_tensorflow_quietly
    from livemask.engine.cameras import SharedClassifier
    from livemask.models.backends import open_classifier

    import_tensorflow_quietly()
    clf = open_classifier(str(ROOT / "models" / "mask_classifier.keras"))
    clf.warmup()
    det = CenterFaceDetector(input_long_side=320, coarse_long_side=0)
    frames = []
    for path in sorted(VIDEOS.glob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        ok, image = cap.read()
        cap.release()
        if ok:
            frames.append((image, det.detect(image)))
    rows = []
    for batch in (False, True):
        shared = SharedClassifier(clf, batch=batch)
        waits: list[float] = []
        done = [0]
        end = time.monotonic() + seconds

        def caller(i: int, shared=shared, waits=waits, done=done, end=end) -> None:
            image, dets = frames[i % len(frames)]
            while time.monotonic() < end:
                t0 = time.perf_counter()
                shared.classify(image, dets)
                waits.append((time.perf_counter() - t0) * 1000.0)
                done[0] += 1

        workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        shared.close()
        rows.append([f"shared classifier, {'batched' if batch else 'lock'}", threads, f"{done[0] / seconds:.0f}",
                     f"{np.percentile(waits, 50):.1f}", f"{np.percentile(waits, 95):.1f}",
                     f"{shared.calls / max(shared.requests, 1):.2f}"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--capacity", default="", help="comma-separated camera counts for the capacity search")
    parser.add_argument("--slow-fps", type=float, default=5.0)
    parser.add_argument("--dead", action="store_true", help="camera 0 from an RTSP server killed for 20 s")
    parser.add_argument("--classifier-only", action="store_true",
                        help="only the shared classifier, lock against batched, in this process")
    args = parser.parse_args()
    if args.classifier_only:
        print(f"machine: {machine()}; load average {open('/proc/loadavg').read().split()[:3]}")
        print(table(["run", "callers", "frames classified / s", "call p50 ms", "call p95 ms",
                     "classifier calls per frame"], shared_classifier(args.cameras, args.seconds)))
        return 0
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    print(f"machine: {machine()}; load average {open('/proc/loadavg').read().split()[:3]}")
    headers = ["run", "cameras", "processed fps min / median", "dropped % max", "capture-to-result p95 ms max",
               "peak RSS MB", "CPU s per camera-s", f"<= {MAX_DROP:g}% and <= {MAX_P95:g} ms"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = make_clips(tmp, args.seconds + 40, args.fps)
        rows.append(describe(f"one process, {args.fps:g} fps", one_process(clips, args.cameras, args.seconds,
                                                                               args.fps, tmp / "one"), args.seconds))
        if args.baseline:
            rows.append(describe(f"one process per camera, {args.fps:g} fps",
                                 baseline(clips, args.cameras, args.seconds, args.fps, tmp / "base"), args.seconds))
        for rate in ([args.fps, args.slow_fps] if args.capacity else []):
            rate_clips = clips if rate == args.fps else make_clips(tmp, args.seconds + 40, rate)
            for n in (int(x) for x in args.capacity.split(",")):
                run = one_process(rate_clips, n, args.seconds, rate, tmp / f"cap{n}_{rate:g}")
                rows.append(describe(f"capacity, one process, {rate:g} fps", run, args.seconds))
        print(table(headers, rows))
        if args.dead:
            dead = DeadCamera(clips[0])
            try:
                run = one_process(clips, args.cameras, args.seconds, args.fps, tmp / "dead", dead)
            finally:
                dead.close()
            if dead.window is None:
                print("dead camera: the run ended before the outage")
                return 1
            changes = []
            for i in range(1, args.cameras):
                before, during = fps_around(run["dir"] / f"c{i}.jsonl", dead.window)
                changes.append(100.0 * (during - before) / before if before else float("nan"))
            print(f"\ncamera c0 (RTSP) down for {dead.window[1] - dead.window[0]:.0f} s: the other "
                  f"{args.cameras - 1} cameras' processed fps changed by {min(changes):+.1f}% .. "
                  f"{max(changes):+.1f}% (during vs the as long time before)")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())

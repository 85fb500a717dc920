"""``livemask serve`` under a flood of worst-case uploads: server RSS and ``/healthz`` latency.

A worst-case upload is a small PNG (about 100 KB) of 6300 x 6300 grey pixels: just under the
40-megapixel limit, so it passes the header check and costs 119 MB once decoded. ``--clients``
threads (default 50) each post it ``--rounds`` times at once to ``POST /v1/image`` of a real
``livemask serve`` process (127.0.0.1, port 0). While they run, the server's RSS is sampled every
20 ms (``/proc/PID/status``, peak kept) and ``/healthz`` is asked every 50 ms by another client
(median, p95, max), and 60 times before the flood on the same server (the machine's own noise).
The flood's probe runs twice at once: in the benchmark's own process (it shares the GIL with the 50 uploading
client threads, so its figure includes the client's own waits) and in a process of its own that does nothing
else (the server's latency as a separate client sees it).
Printed per server configuration: idle RSS, peak RSS, peak - idle,
``/healthz`` p50 / max, answers by status.

Configurations, in the same process run: the defaults (decode budget 256 MB, decoding and model threads
10 nice steps below the event loop); with ``--compare``, a budget too large to matter (65536 MB, as before
the budget existed; needs several GB of free memory); with ``--compare-nice``, every thread at the event
loop's priority (``--worker-nice 0``, as before it existed); with ``--compare-tree DIR``, the defaults
of the code checked out in DIR (e.g. ``git worktree add /tmp/old COMMIT``), its servers alternating with
these. ``--repeats N`` floods N fresh servers per
configuration, in rotated order, and pools their probes (RSS: the largest peak - idle).
Target (issue 23): peak RSS <= idle + 1 GB and ``/healthz`` p95 <= 100 ms at 50 clients.

Usage: python benchmarks/bench_upload_flood.py [--clients 50] [--rounds 2] [--compare] [--compare-nice]
       [--compare-tree DIR] [--repeats 1]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, process_rss_mb, rotated, table

ROOT = Path(__file__).resolve().parent.parent
SIDE = 6300


def worst_png() -> bytes:
    ok, buf = cv2.imencode(".png", np.full((SIDE, SIDE, 3), 128, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return buf.tobytes()


def serve(*args: str, tree: Path = ROOT) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tree, env=env)
    line = proc.stdout.readline()
    m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"serve did not start: {line!r}")
    return proc, m.group(1)


PROBE = """
import sys, threading, time, json, httpx
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
out = []
with httpx.Client(timeout=30) as c:
    c.get(sys.argv[1] + "/healthz")
    print("ready", flush=True)
    while not stop.wait(0.05):
        t = time.perf_counter()
        c.get(sys.argv[1] + "/healthz")
        out.append((time.perf_counter() - t) * 1000.0)
print(json.dumps(out), flush=True)
"""


def flood(url: str, pid: int, data: bytes, clients: int, rounds: int) -> dict:
    import httpx

    time.sleep(2.0)  # let the warm-up settle
    with httpx.Client() as c:
        for _ in range(3):
            c.get(url + "/healthz")
    idle = process_rss_mb(pid)
    with httpx.Client(timeout=30) as c:  # /healthz without the flood, same server, same moment's machine load
        quiet = []
        for _ in range(60):
            t = time.perf_counter()
            c.get(url + "/healthz")
            quiet.append((time.perf_counter() - t) * 1000.0)
            time.sleep(0.05)
    stop = threading.Event()
    peak = [idle]
    health: list[float] = []

    def sample_rss():
        while not stop.wait(0.02):
            peak[0] = max(peak[0], process_rss_mb(pid))

    def probe_health():
        with httpx.Client(timeout=30) as c:
            while not stop.wait(0.05):
                t = time.perf_counter()
                c.get(url + "/healthz")
                health.append((time.perf_counter() - t) * 1000.0)

    def post(_):
        with httpx.Client(timeout=300) as c:
            return c.post(url + "/v1/image", files={"file": ("worst.png", data, "image/png")}).status_code

    threads = [threading.Thread(target=sample_rss), threading.Thread(target=probe_health)]
    prober = subprocess.Popen([sys.executable, "-c", PROBE, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    prober.stdout.readline()  # "ready"
    for t in threads:
        t.start()
    started = time.perf_counter()
    statuses: Counter = Counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for _ in range(rounds):
            statuses.update(pool.map(post, range(clients)))
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join()
    out, _ = prober.communicate(timeout=60)
    alone = json.loads(out.strip().splitlines()[-1])
    return {"idle": idle, "peak": peak[0], "health": health, "alone": alone, "quiet": quiet, "statuses": statuses,
            "s": elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compare", action="store_true", help="also run with a budget too large to matter")
    ap.add_argument("--compare-nice", action="store_true", help="also run with every thread at the same priority")
    ap.add_argument("--compare-tree", type=Path, help="also run the defaults of the code checked out there")
    ap.add_argument("--repeats", type=int, default=1, help="fresh servers per configuration (probes pooled)")
    args = ap.parse_args()
    data = worst_png()
    configs = {"defaults (budget 256 MB, worker nice 10)": ()}
    if args.compare:
        configs["budget 65536 MB (no bound)"] = ("--decode-budget-mb", "65536")
    if args.compare_nice:
        configs["worker nice 0 (one priority)"] = ("--worker-nice", "0")
    trees = {name: ROOT for name in configs}
    if args.compare_tree:
        old = subprocess.run(["git", "-C", str(args.compare_tree), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        name = f"defaults, the code of {old or args.compare_tree}"
        configs[name], trees[name] = (), args.compare_tree.resolve()
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for name in rotated(list(configs), args.repeats):
        proc, url = serve(*configs[name], tree=trees[name])
        try:
            runs[name].append(flood(url, proc.pid, data, args.clients, args.rounds))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    rows = []
    for name, done in runs.items():
        h = np.asarray([x for r in done for x in r["health"]], np.float64)
        q = np.asarray([x for r in done for x in r["quiet"]], np.float64)
        a = np.asarray([x for r in done for x in r["alone"]], np.float64)
        statuses = sum((r["statuses"] for r in done), Counter())
        grow = max(r["peak"] - r["idle"] for r in done)
        rows.append([name, f"{np.median([r['idle'] for r in done]):.0f}", f"{max(r['peak'] for r in done):.0f}",
                     f"{grow:.0f}", f"{np.median(q):.1f} / {np.percentile(q, 95):.1f} / {q.max():.1f}",
                     f"{np.median(h):.1f} / {np.percentile(h, 95):.1f} / {h.max():.1f}" if len(h) else "-",
                     f"{np.median(a):.1f} / {np.percentile(a, 95):.1f} / {a.max():.1f}" if len(a) else "-",
                     f"{len(h)} / {len(a)}",
                     " ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
                     " ".join(f"{r['s']:.1f}" for r in done)])
    print(f"{args.clients} clients x {args.rounds} rounds, PNG {SIDE}x{SIDE} ({len(data) // 1024} KB) to /v1/image, "
          f"{args.repeats} server(s) per configuration")
    print(table(["server", "idle RSS MB", "peak RSS MB", "peak - idle MB", "/healthz quiet p50/p95/max ms",
                 "/healthz in flood, in-process probe p50/p95/max ms",
                 "/healthz in flood, probe process p50/p95/max ms", "probes", "answers", "flood s"], rows))
    with open("/proc/loadavg") as fh:
        print("load average:", fh.read().strip())
    print(machine())


if __name__ == "__main__":
    main()

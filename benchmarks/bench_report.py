"""``livemask report``: event lines aggregated per minute, peak RSS whatever the size, and a camera-day report's
weight and open time in Chromium.

* Aggregation: event logs of realistic frame lines (two faces, people counts, an alert every 1000 frames;
  tests/eventsmaker.py) of each ``--sizes`` (MB) are aggregated by hour, each in a fresh subprocess so its
  peak RSS (``VmHWM``) is that of one aggregation; ``--repeats`` runs a size, the median reported. With
  ``--polars`` (and polars installed) the same hourly group-by through ``polars.scan_ndjson`` in streaming
  mode is run on the smallest size: the alternative weighed against DuckDB.
* Camera-day report: 24 h of one camera at 2 frames/s (a new person every 50 s, an alert every 5 min, 288
  alerts, each with a real face snapshot) -> the HTML page; its size, the time to make it (aggregation +
  charts + page), and the time Chromium takes from navigation to the load event (median of ``--repeats``).

Usage: python benchmarks/bench_report.py [--sizes 200 1000] [--repeats 2] [--polars]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import machine, table
from eventsmaker import write_big

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT.parent / "shared" / "data" / "faces" / "without_mask"

# peak RSS of this process since its exec (VmHWM); ru_maxrss would carry the parent's peak over the exec
PEAK_MB = """
def PEAK():
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
"""

DUCKDB = PEAK_MB + """
import json, sys, time
t0 = time.perf_counter()
from livemask.report.inputs import event_files
from livemask.report.aggregate import aggregate
a = aggregate(event_files([sys.argv[1]]), "hour", "UTC")
print(json.dumps({"s": time.perf_counter() - t0, "lines": a.lines,
                  "rss_mb": PEAK()}))
"""

POLARS = PEAK_MB + """
import json, sys, time
t0 = time.perf_counter()
import polars as pl
schema = {"timestamp": pl.Float64, "faces": pl.List(pl.Struct({"label": pl.Utf8})),
          "people": pl.Struct({"counted": pl.Int64, "masked": pl.Int64}),
          "alert": pl.Struct({"time": pl.Float64, "label": pl.Utf8})}
out = (pl.scan_ndjson(sys.argv[1], schema=schema, ignore_errors=True)
       .with_columns(t=pl.coalesce(pl.col("timestamp"), pl.col("alert").struct.field("time")))
       .with_columns(slot=(pl.col("t") // 900) * 900)
       .group_by("slot").agg(pl.len(), pl.col("people").struct.field("counted").max(),
                             pl.col("faces").list.eval(pl.element().struct.field("label") == "mask").list.sum().sum())
       .collect(engine="streaming"))
print(json.dumps({"s": time.perf_counter() - t0, "lines": int(out["len"].sum()),
                  "rss_mb": PEAK()}))
"""


def run(code: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def aggregation(tmp: Path, sizes: list[int], repeats: int, polars: bool) -> list[list]:
    rows = []
    for mb in sizes:
        log = tmp / f"events-{mb}mb.jsonl"
        truth = write_big(log, mb * 1_000_000)
        engines = [("duckdb", DUCKDB)] + ([("polars", POLARS)] if polars and mb == min(sizes) else [])
        for name, code in engines:
            runs = [run(code, log) for _ in range(repeats)]
            assert all(r["lines"] >= truth["lines"] - truth["alerts"] for r in runs), (runs, truth)
            s = statistics.median(r["s"] for r in runs)
            rss = max(r["rss_mb"] for r in runs)
            rows.append([name, mb, truth["lines"], f"{s:.1f}", f"{truth['lines'] / s * 60 / 1e6:.1f}", f"{rss:.0f}"])
        log.unlink()
    return rows


def snapshot(tmp: Path) -> str:
    import cv2
    import numpy as np

    path = tmp / "snaps" / "alert.png"
    path.parent.mkdir()
    faces = sorted(FACES.glob("*.jpg"))[:1] if FACES.is_dir() else []
    image = cv2.imread(str(faces[0])) if faces else None
    if image is None:  # no shared data: a noise image of a snapshot's size (does not compress well either)
        image = np.random.default_rng(0).integers(0, 255, (160, 160, 3), np.uint8)
    cv2.imwrite(str(path), image)
    return str(path)


def camera_day(tmp: Path, repeats: int) -> list[list]:
    from playwright.sync_api import sync_playwright

    from livemask.report.aggregate import aggregate
    from livemask.report.inputs import event_files
    from livemask.report.page import render

    log = tmp / "entrance.jsonl"
    fps = 2.0
    write_big(log, int(24 * 3600 * fps * 520), fps=fps, alert_every=600, snapshot=snapshot(tmp))
    t0 = time.perf_counter()
    page = render(aggregate(event_files([log]), "hour", "UTC"))
    make_s = time.perf_counter() - t0
    out = tmp / "report.html"
    out.write_text(page, encoding="utf-8")
    opens = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        for _ in range(repeats + 1):
            context = browser.new_context()
            tab = context.new_page()
            t0 = time.perf_counter()
            tab.goto(out.as_uri(), wait_until="load")
            opens.append(time.perf_counter() - t0)
            context.close()
        browser.close()
    return [["camera-day (24 h, 2 fps, 288 alerts)", f"{out.stat().st_size / 1e6:.2f}", f"{make_s:.1f}",
             f"{statistics.median(opens[1:]):.2f}"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000], help="event log sizes in MB")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--polars", action="store_true", help="also time polars on the smallest size")
    args = parser.parse_args()
    print(machine())
    print(f"load average before: {open('/proc/loadavg').read().split()[0]}")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        rows = aggregation(Path(tmp), args.sizes, args.repeats, args.polars)
        print(table(["engine", "MB", "lines", "median s", "M lines/min", "peak RSS MB"], rows))
        print()
        day = camera_day(Path(tmp), args.repeats)
        print(table(["report", "size MB", "make s", "open in Chromium s (median)"], day))
    print(f"load average after: {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()

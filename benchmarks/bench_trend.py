"""What the Site page's per-camera trend costs the server: reading one hour of kept events, then following them.

The server reads the kept hour once (``MinuteTrend.read``, the first request), then the kept-events writer
hands it every frame's lines (``MinuteTrend.add``) and each request only computes the points
(``MinuteTrend.points``). Printed per size: the read (median of ``--repeats``), the cost of adding the
hour's lines as the writer would (per line and per second of the cameras' lines), and one ``points`` call.

Kept lines as ``serve --camera`` writes them (two tracked faces with every field a frame line has, the people
counts rising, ``camera`` and ``run``), N cameras at F frames/s for the last hour, in the kept files' layout
(one writer: the cameras' lines interleaved, a new file every ``--file-mb``). Each size is read ``--repeats``
times in this process (DuckDB imported once before); the table shows the median.

Usage: PYTHONPATH=. python benchmarks/bench_trend.py [--cameras 1 4] [--fps 25] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, table
from eventsmaker import _face


def write_hour(folder: Path, cameras: int, fps: float, file_mb: float, now: float) -> tuple[int, int]:
    """The last hour of ``cameras`` cameras at ``fps``; returns (lines, bytes)."""
    names = [f"cam{i}" for i in range(cameras)]
    run = f"{now - 3600 - 60:.3f}"
    frames = int(3600 * fps)
    lines = size = part = 0
    out = None
    written = 0
    for k in range(frames):
        t = now - 3600 + k / fps
        counted = 1 + k // int(fps * 20)  # someone new every 20 s
        for name in names:
            if out is None or written >= file_mb * 1024 * 1024:
                if out is not None:
                    out.close()
                part += 1
                out = (folder / f"events-{time.strftime('%Y%m%d', time.gmtime(now))}-{part}.jsonl").open("w")
                written = 0
            line = {"frame_id": k, "timestamp": round(t, 3), "position_s": round(k / fps, 3),
                    "faces": [_face("mask", 2 * k // 500), _face("no_mask", 2 * k // 500 + 1)],
                    "people": {"counted": counted, "masked": counted * 2 // 3, "in_view": 2, "alerts": 0},
                    "camera": name, "run": run}
            text = json.dumps(line, separators=(",", ":")) + "\n"
            out.write(text)
            written += len(text)
            size += len(text)
            lines += 1
    if out is not None:
        out.close()
    return lines, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--file-mb", type=float, default=204.8, help="a kept file's size (max_mb / 10)")
    args = parser.parse_args()
    import duckdb  # noqa: F401  (imported once, as in the server)

    from livemask.report.trend import MinuteTrend, trend
    from livemask.sinks.kept_events import kept_files

    print(f"Machine: {machine()}")
    rows = []
    for cameras in args.cameras:
        with tempfile.TemporaryDirectory(prefix="bench-trend-") as folder:
            now = time.time()
            lines, size = write_hour(Path(folder), cameras, args.fps, args.file_mb, now)
            times, points = [], 0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                got = trend(kept_files(folder), now=now)
                times.append(time.perf_counter() - t0)
                points = sum(len(p) for p in got.values())
            frames = []  # the hour's lines again, one frame's lines a call, as the writer hands them over
            for path in kept_files(folder):
                with open(path) as fh:
                    frames.extend([json.loads(text)] for text in fh)
            follow = MinuteTrend()
            t0 = time.perf_counter()
            for one in frames:
                follow.add(one)
            add_s = time.perf_counter() - t0
            poll = []
            for _ in range(max(args.repeats, 5)):
                t0 = time.perf_counter()
                again = follow.points(now)
                poll.append(time.perf_counter() - t0)
            assert again == got, "following the lines must give the points the read gives"
            per_line_us = add_s / len(frames) * 1e6
            rows.append([cameras, f"{args.fps:g}", f"{lines:,}", f"{size / 1e6:.0f}", f"{statistics.median(times):.2f}",
                         " / ".join(f"{t:.2f}" for t in times), f"{per_line_us:.1f}",
                         f"{per_line_us * cameras * args.fps / 1e4:.3f}", f"{statistics.median(poll) * 1e3:.2f}",
                         points])
    print(table(["cameras", "fps", "lines (1 h)", "MB", "read: median s", "read: runs (s)", "add: us per line",
                 "add: % of a core", "points: ms", "points"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

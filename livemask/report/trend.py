"""The last hour's masked share per camera, minute by minute, from the event lines ``serve`` keeps.

For the Site page's small charts (``GET /v1/cameras/trend``). One DuckDB pass over the kept files written
during the window groups the frame lines by run, camera and minute (the people stage's running totals:
the largest ``people.counted`` of the minute and ``people.masked`` at its last line). A camera's point at a
minute is the share masked among the people it counted from the window's start to the end of that minute,
summed over its runs; a run's starting totals are those of its last line before the window, else (a run
that began before the window whose earlier lines are not in these files) those of its first line in it.
Minutes without frame lines, and minutes before anyone was counted, have no point.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from livemask.report.aggregate import MEMORY_LIMIT

MINUTE_S = 60


def _query(since: float, until: float) -> str:
    return f"""
    SELECT camera, run,
      CASE WHEN timestamp < {since!r} THEN -1 ELSE floor(timestamp / {MINUTE_S}) * {MINUTE_S} END AS minute,
      max(people.counted) AS hi, arg_max(people.masked, timestamp) AS hi_masked,
      min(people.counted) AS lo, arg_min(people.masked, timestamp) AS lo_masked
    FROM read_ndjson($paths, ignore_errors = true, format = 'newline_delimited',
                     columns = {{'camera': 'VARCHAR', 'run': 'VARCHAR', 'timestamp': 'DOUBLE',
                                 'people': 'STRUCT(counted BIGINT, masked BIGINT)'}})
    WHERE timestamp IS NOT NULL AND isfinite(timestamp) AND timestamp < {until!r} AND people.counted IS NOT NULL
      AND camera IS NOT NULL
    GROUP BY ALL
    """


def trend(files: list[Path], window_s: float = 3600.0, now: float | None = None) -> dict[str, list[dict]]:
    """Per camera, the points of the last ``window_s`` seconds, oldest first: ``{"t": the minute's end in Unix
    seconds (now for the current minute), "share": 0..1, "counted": people}``, read from the kept ``files``
    (only those written during the window)."""
    import duckdb

    now = time.time() if now is None else now
    since = now - window_s
    paths = []
    for p in files:
        try:
            if p.stat().st_mtime >= since:
                paths.append(str(Path(p).resolve()))
        except OSError:
            continue  # removed by the trim meanwhile
    if not paths:
        return {}
    with tempfile.TemporaryDirectory(prefix="livemask-trend-") as spill:
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": min(os.cpu_count() or 1, 2),
                                     "temp_directory": spill})
        try:
            con.execute("SET enable_progress_bar = false")
            rows = con.execute(_query(since, now + 1.0), {"paths": paths}).fetchall()
        except duckdb.IOException:
            return {}  # a file removed while being read: the next poll tries again
        finally:
            con.close()
    runs: dict[tuple[str, str], dict[float, tuple]] = {}
    for camera, run, minute, hi, hi_masked, lo, lo_masked in rows:
        runs.setdefault((camera, run or ""), {})[float(minute)] = (int(hi), int(hi_masked or 0), int(lo),
                                                                   int(lo_masked or 0))
    by_camera: dict[str, list[tuple[tuple[int, int], dict[float, tuple]]]] = {}
    for (camera, run), minutes in runs.items():
        before = minutes.pop(-1.0, None)
        if not minutes:
            continue
        if before is not None:
            base = before[0], before[1]
        elif _started(run) >= since:
            base = 0, 0  # the run began inside the window: everyone it counted counts
        else:
            first = minutes[min(minutes)]
            base = first[2], first[3]
        by_camera.setdefault(camera, []).append((base, minutes))
    per_camera: dict[str, dict[float, list[int]]] = {}  # camera -> minute -> [counted, masked] since the window began
    for camera, camera_runs in by_camera.items():
        every = sorted({m for _base, minutes in camera_runs for m in minutes})
        cells = per_camera[camera] = {m: [0, 0] for m in every}
        for base, minutes in camera_runs:
            last = None
            for m in every:  # a run that ended still counts its people in the later minutes
                last = minutes.get(m, last)
                if last is not None:
                    cells[m][0] += max(last[0] - base[0], 0)
                    cells[m][1] += max(last[1] - base[1], 0)
    out: dict[str, list[dict]] = {}
    for camera, cells in sorted(per_camera.items()):
        points = []
        for minute in sorted(cells):
            counted, masked = cells[minute]
            if counted > 0:
                points.append({"t": min(minute + MINUTE_S, now), "share": round(min(masked / counted, 1.0), 4),
                               "counted": counted})
        out[camera] = points
    return out


def _started(run: str) -> float:
    """A kept line's ``run`` is its run's start (Unix seconds as text); unknown runs began long ago."""
    try:
        return float(run)
    except ValueError:
        return float("-inf")

"""The last hour's masked share per camera, minute by minute, from the event lines ``serve`` keeps.

For the Site page's small charts (``GET /v1/cameras/trend``). :class:`MinuteTrend` keeps, per run, camera
and minute, the people stage's running totals (the largest ``people.counted`` of the minute and
``people.masked`` at its last line): a server reads the kept files written during the last hour once (one
DuckDB pass, :meth:`MinuteTrend.read`), then adds each frame's lines as the kept-events writer writes them
(:meth:`MinuteTrend.add`), so a page's poll costs no file read however many cameras there are. A camera's
point at a minute is the share masked among the people it counted from the window's start (the first whole
minute of the last hour) to the end of that minute, summed over its runs; a run's starting totals are those
of its last line before the window, else (a run that began before the window whose earlier lines are not in
these files) those of its first line in it. Minutes without frame lines, and minutes before anyone was
counted, have no point. Adding a line twice changes nothing (the totals are maxima and last values).
"""
from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from pathlib import Path

from livemask.report.aggregate import MEMORY_LIMIT

MINUTE_S = 60


def _query() -> str:
    return f"""
    SELECT camera, run, floor(timestamp / {MINUTE_S}) * {MINUTE_S} AS minute,
      max(people.counted) AS hi, max(timestamp) AS last_t, arg_max(people.masked, timestamp) AS last_masked,
      min(people.counted) AS lo, min(timestamp) AS first_t, arg_min(people.masked, timestamp) AS first_masked
    FROM read_ndjson($paths, ignore_errors = true, format = 'newline_delimited',
                     columns = {{'camera': 'VARCHAR', 'run': 'VARCHAR', 'timestamp': 'DOUBLE',
                                 'people': 'STRUCT(counted BIGINT, masked BIGINT)'}})
    WHERE timestamp IS NOT NULL AND isfinite(timestamp) AND timestamp < $until AND people.counted IS NOT NULL
      AND camera IS NOT NULL
    GROUP BY ALL
    """


# a minute's cell: [most counted, last line's time, masked at the last line, fewest counted, first line's time,
# masked at the first line]
HI, LAST_T, LAST_MASKED, LO, FIRST_T, FIRST_MASKED = range(6)


def _merge(cell: list | None, hi: int, last_t: float, last_masked: int, lo: int, first_t: float,
           first_masked: int) -> list:
    if cell is None:
        return [hi, last_t, last_masked, lo, first_t, first_masked]
    cell[HI] = max(cell[HI], hi)
    if last_t >= cell[LAST_T]:
        cell[LAST_T], cell[LAST_MASKED] = last_t, last_masked
    cell[LO] = min(cell[LO], lo)
    if first_t < cell[FIRST_T]:
        cell[FIRST_T], cell[FIRST_MASKED] = first_t, first_masked
    return cell


class MinuteTrend:
    """The per-minute totals of every (camera, run) seen, kept in memory; thread-safe (the kept-events writer
    adds, the server's route reads). Minutes that leave the window are folded into the run's totals before
    it (times only move forward in a server: a later :meth:`points` with an earlier ``now`` sees them folded)."""

    def __init__(self, window_s: float = 3600.0):
        self.window_s = float(window_s)
        self._lock = threading.Lock()
        self._minutes: dict[tuple[str, str], dict[float, list]] = {}
        self._before: dict[tuple[str, str], list] = {}
        self._start = float("-inf")  # the first minute still in the window, as of the last fold

    def _put(self, key: tuple[str, str], minute: float, values: tuple) -> None:
        if minute < self._start:
            self._before[key] = _merge(self._before.get(key), *values)
        else:
            minutes = self._minutes.setdefault(key, {})
            minutes[minute] = _merge(minutes.get(minute), *values)

    def add(self, lines: list[dict]) -> None:
        """One frame's kept lines (those without a camera, a finite time or people totals are skipped)."""
        with self._lock:
            for line in lines:
                camera, t, people = line.get("camera"), line.get("timestamp"), line.get("people")
                if camera is None or not isinstance(t, (int, float)) or not math.isfinite(t) \
                        or not isinstance(people, dict) or people.get("counted") is None:
                    continue
                counted, masked = int(people["counted"]), int(people.get("masked") or 0)
                self._put((str(camera), str(line.get("run") or "")), math.floor(t / MINUTE_S) * MINUTE_S,
                          (counted, t, masked, counted, t, masked))

    def read(self, files: list[Path], now: float | None = None) -> int:
        """Add the lines of the kept ``files`` written during the window (one DuckDB pass); returns how many
        files were read."""
        import duckdb

        now = time.time() if now is None else now
        since = now - self.window_s
        paths = []
        for p in files:
            try:
                if p.stat().st_mtime >= since:
                    paths.append(str(Path(p).resolve()))
            except OSError:
                continue  # removed by the trim meanwhile
        if not paths:
            return 0
        with tempfile.TemporaryDirectory(prefix="livemask-trend-") as spill:
            con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": min(os.cpu_count() or 1, 2),
                                         "temp_directory": spill})
            try:
                con.execute("SET enable_progress_bar = false")
                rows = con.execute(_query(), {"paths": paths, "until": now + 1.0}).fetchall()
            except duckdb.IOException:
                return 0  # a file removed while being read: the next poll tries again
            finally:
                con.close()
        with self._lock:
            for camera, run, minute, hi, last_t, last_masked, lo, first_t, first_masked in rows:
                self._put((camera, run or ""), float(minute), (int(hi), float(last_t), int(last_masked or 0),
                                                               int(lo), float(first_t), int(first_masked or 0)))
        return len(paths)

    def points(self, now: float | None = None) -> dict[str, list[dict]]:
        """Per camera, the points of the window ending ``now``, oldest first: ``{"t": the minute's end in Unix
        seconds (now for the current minute), "share": 0..1, "counted": people}``."""
        now = time.time() if now is None else now
        since = math.floor((now - self.window_s) / MINUTE_S) * MINUTE_S
        with self._lock:
            if since > self._start:
                self._start = since
                for key, minutes in self._minutes.items():
                    for minute in [m for m in minutes if m < since]:
                        self._before[key] = _merge(self._before.get(key), *minutes.pop(minute))
            runs = {key: ({m: tuple(c) for m, c in minutes.items() if m <= now}, self._before.get(key))
                    for key, minutes in self._minutes.items()}
        return _points(runs, since, now)


def _points(runs: dict[tuple[str, str], tuple[dict[float, tuple], tuple | None]], since: float,
            now: float) -> dict[str, list[dict]]:
    by_camera: dict[str, list[tuple[tuple[int, int], dict[float, tuple]]]] = {}
    for (camera, run), (minutes, before) in runs.items():
        if not minutes:
            continue
        if before is not None:
            base = before[HI], before[LAST_MASKED]
        elif _started(run) >= since:
            base = 0, 0  # the run began inside the window: everyone it counted counts
        else:
            first = minutes[min(minutes)]
            base = first[LO], first[FIRST_MASKED]
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
                    cells[m][0] += max(last[HI] - base[0], 0)
                    cells[m][1] += max(last[LAST_MASKED] - base[1], 0)
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


def trend(files: list[Path], window_s: float = 3600.0, now: float | None = None) -> dict[str, list[dict]]:
    """The points of the last ``window_s`` seconds read from the kept ``files`` alone (only those written during
    the window): :meth:`MinuteTrend.read` then :meth:`MinuteTrend.points`."""
    now = time.time() if now is None else now
    kept = MinuteTrend(window_s)
    kept.read(files, now)
    return kept.points(now)


def _started(run: str) -> float:
    """A kept line's ``run`` is its run's start (Unix seconds as text); unknown runs began long ago."""
    try:
        return float(run)
    except ValueError:
        return float("-inf")

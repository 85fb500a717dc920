"""The Site page's trend follows the kept lines as they are written, and gives what a read of the files gives."""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("duckdb")

from livemask.report.trend import MinuteTrend, trend
from livemask.sinks.kept_events import KeptEventsFile, KeptEventsOptions, kept_files


def frames(now: float, seconds: int, seed: int = 0):
    """Two cameras, three runs (one starting before the hour, one ending inside it), a line every 2 s each."""
    rnd = random.Random(seed)
    runs = {("a", f"{now - 5400:.3f}"): (now - 5400, now - 1500), ("a", f"{now - 1200:.3f}"): (now - 1200, now),
            ("b", f"{now - 4000:.3f}"): (now - 4000, now)}
    totals = {key: [0, 0] for key in runs}
    for t in range(int(now - seconds), int(now), 2):
        lines = []
        for (camera, run), (start, end) in runs.items():
            if start <= t < end:
                counted, masked = totals[(camera, run)]
                if rnd.random() < 0.05:
                    counted += 1
                    masked += rnd.random() < 0.7
                totals[(camera, run)] = [counted, masked]
                lines.append({"frame_id": t, "timestamp": float(t), "faces": [], "camera": camera, "run": run,
                              "people": {"counted": counted, "masked": masked}})
        if lines:
            yield lines


def test_following_the_writer_gives_the_points_of_reading_its_files(tmp_path):
    now = 2_000_000_000.0
    kept = KeptEventsFile(KeptEventsOptions(events_dir=str(tmp_path / "kept")))
    follow = MinuteTrend()
    kept.listeners.append(follow.add)
    kept.open()
    for lines in frames(now, 5400):
        assert kept.write(lines) == len(lines)
    kept.release()
    files = kept_files(tmp_path / "kept")
    for f in files:
        os.utime(f, (now, now))
    read = trend(files, now=now)
    assert set(read) == {"a", "b"} and all(len(read[c]) > 30 for c in read)
    assert follow.points(now) == read
    # half an hour later (no new line): the old minutes fold into the runs' starting totals, as a read then sees
    later = now + 1800
    for f in files:
        os.utime(f, (later, later))
    assert follow.points(later) == trend(files, now=later)
    assert follow.points(later) != read


def test_a_line_added_twice_or_without_totals_changes_nothing():
    now = 2_000_000_000.0
    once, twice = MinuteTrend(), MinuteTrend()
    for lines in frames(now, 3000, seed=3):
        once.add(lines)
        twice.add(lines)
        twice.add(lines + [{"camera": "a", "timestamp": float("nan"), "people": {"counted": 99}},
                           {"camera": "a", "timestamp": now - 10, "people": {"counted": None}},
                           {"timestamp": now - 10, "people": {"counted": 5, "masked": 5}}])
    assert once.points(now) == twice.points(now)
    assert once.points(now)["a"]

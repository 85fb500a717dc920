"""The event lines ``livemask serve`` keeps for its reports: bounded JSONL files under a data folder.

:class:`KeptEvents` is an engine sink (on the engine's loop, like the event log) that appends every frame's
event-log lines (:func:`livemask.core.records.event_lines`, plus ``camera`` and ``run``, which lets a report
follow one run's totals across files) to ``DIR/events-<UTC date>-<n>.jsonl``. With several cameras
(``serve --camera``) every camera's sink writes through one shared :class:`KeptEventsFile`, so the files
hold every camera's lines, each naming its camera. A file is closed and a new one
begun when the UTC date changes or the file reaches a tenth of ``max_mb``; files older than ``keep_days``
are removed, then the oldest ones while all of them together pass ``max_mb``. So the disk used stays under
``max_mb`` (plus one line) whatever the run's length. ``GET /v1/report`` reads these files with
:mod:`livemask.report`. A write that fails (a full disk) stops keeping, counted and logged once; it never
stops the run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from livemask.core.params import Range, Text, check_fields
from livemask.core.records import event_lines

log = logging.getLogger(__name__)

PREFIX = "events-"


@dataclass
class KeptEventsOptions:
    """The ``report`` section of config.yaml (see there for each key)."""

    keep_events: bool = True
    events_dir: str = "data/events"
    keep_days: Annotated[float, Range(0, 3660, lo_open=True)] = 31.0
    max_mb: Annotated[float, Range(1, 1_000_000)] = 2048.0
    camera: Annotated[str, Text(1, 64)] = "live"

    def __post_init__(self) -> None:
        check_fields(self)


def kept_files(folder: str | Path) -> list[Path]:
    """The kept event files, oldest first (names sort by date, then part number)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{PREFIX}*.jsonl"), key=lambda p: (p.stem[len(PREFIX):len(PREFIX) + 8],
                                                                   int(p.stem.rsplit("-", 1)[-1] or 0)))


class KeptEventsFile:
    """The kept files of one process: one writer shared by every camera's :class:`KeptEvents` (a lock around
    each frame's lines), so the lines of several cameras go to the same files, each naming its camera."""

    def __init__(self, options: KeptEventsOptions):
        self.options = options
        self.folder = Path(options.events_dir)
        self.max_bytes = int(options.max_mb * 1024 * 1024)
        self.file = None
        self.day = ""
        self.size = 0
        self.lines = 0
        self.failed = 0
        self.users = 0
        self.lock = threading.Lock()
        self.listeners: list = []  # called with each frame's lines once written (the Site page's trend)

    def open(self) -> None:
        with self.lock:
            self.users += 1
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                self._fail(err)

    def release(self) -> None:
        """One user is done; the file is closed when the last one is."""
        with self.lock:
            self.users -= 1
            if self.users <= 0:
                self._close_file()

    def _fail(self, err: OSError) -> None:
        if not self.failed:
            log.warning("kept events: cannot write in %s (%s); no more events are kept", self.folder,
                        err.strerror or err)
        self.failed += 1
        self._close_file()

    def _close_file(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None

    def _new_file(self, day: str) -> None:
        self._close_file()
        parts = [p for p in kept_files(self.folder) if p.stem.startswith(f"{PREFIX}{day}-")]
        n = 1 + max((int(p.stem.rsplit("-", 1)[-1]) for p in parts), default=0)
        self.file = (self.folder / f"{PREFIX}{day}-{n}.jsonl").open("a", encoding="utf-8")
        self.day, self.size = day, 0
        self.trim()

    def trim(self, now: float | None = None) -> int:
        """Remove files older than keep_days, then the oldest until the total fits max_mb; returns how many."""
        now = time.time() if now is None else now
        current = None if self.file is None else Path(self.file.name)
        files = [p for p in kept_files(self.folder) if p != current]
        removed = 0
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values()) + self.size
        for p in files:
            if now - p.stat().st_mtime > self.options.keep_days * 86400 or total > self.max_bytes:
                total -= sizes[p]
                p.unlink(missing_ok=True)
                removed += 1
        return removed

    def write(self, lines: list[dict]) -> int:
        """Append one frame's lines (the file of their UTC date); returns how many were written."""
        with self.lock:
            if self.failed or not lines:
                return 0
            try:
                day = time.strftime("%Y%m%d", time.gmtime(lines[0]["timestamp"]))
                if self.file is None or day != self.day or self.size >= self.max_bytes // 10:
                    self._new_file(day)
                for line in lines:
                    text = json.dumps(line, separators=(",", ":")) + "\n"
                    self.file.write(text)
                    self.size += len(text)
                    self.lines += 1
                self.file.flush()
            except OSError as err:
                self._fail(err)
                return 0
            for listener in self.listeners:
                listener(lines)
            return len(lines)


class KeptEvents:
    """The sink of one camera: its event lines, each with ``camera`` and ``run``, to the shared
    :class:`KeptEventsFile` (its own one when none is given: one source)."""

    name = "kept-events"
    threaded = False

    def __init__(self, options: KeptEventsOptions, camera: str | None = None, file: KeptEventsFile | None = None):
        self.options = options
        self.kept = file if file is not None else KeptEventsFile(options)
        self.folder = self.kept.folder
        self.camera = camera or options.camera
        self.run = ""
        self.lines = 0
        self._wall_offset = 0.0

    @property
    def failed(self) -> int:
        return self.kept.failed

    def trim(self, now: float | None = None) -> int:
        return self.kept.trim(now)

    def open(self, info=None) -> None:
        self._wall_offset = time.time() - time.monotonic()
        self.run = f"{time.time():.3f}"  # the run's totals continue across its files: the report follows them
        self.kept.open()

    def write(self, result) -> None:
        if self.kept.failed:
            return
        lines = event_lines(result, self._wall_offset)
        for line in lines:
            line["camera"] = self.camera
            line["run"] = self.run
        self.lines += self.kept.write(lines)

    def close(self, summary: dict | None = None) -> None:
        self.kept.release()

    def stats(self) -> dict:
        return {"kept_events": str(self.folder), "lines": self.lines, "write_errors": self.kept.failed}

"""Event logs -> counts per camera and hour (or day), streamed by DuckDB: the events never sit in memory.

One pass of DuckDB's ``read_ndjson`` over every file groups the lines by file, camera, kind (frame, alert,
summary, malformed) and time bucket; what comes back is one small row per group, so memory depends on the
number of hours and cameras, not on the file size (DuckDB's own memory is capped by ``memory_limit``).

*People.* A frame line's ``people.counted`` and ``people.masked`` are a run's totals so far
(:mod:`livemask.engine.people`), so the people of a bucket are the total at its last frame minus the
total at the previous bucket's last frame, per run and camera. A run is a file, unless its lines carry a
``run`` field (serve's kept events: one run spans several files). ``masked`` is taken the
same way; as the people stage may relabel a person still in view, a bucket's masked count can move by one
person between neighbouring buckets, never in the sum. Lines before ``--from`` give the starting totals.
*Faces* are face observations (one a face a frame) by label: the label mix. *Alerts* are listed one by one.
*Malformed* lines (not JSON, a truncated last line, a line that is neither a frame, an alert nor a summary)
are skipped and counted; blank lines are ignored.
"""

from __future__ import annotations

import math
import os
import tempfile
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from livemask.core.errors import ConfigError
from livemask.core.labels import DISPLAY_NAMES
from livemask.report.inputs import EventFile, NothingToReport

LABELS = tuple(DISPLAY_NAMES)  # counted by name; any other label counts as "other"
BUCKETS = ("hour", "day")
SLOT_S = 900  # DuckDB groups by 15-minute UTC slots (every zone's offset is a multiple); Python maps them to
# local hours or days. (DuckDB's date_trunc on TIMESTAMPTZ puts 02:00 CEST into 02:00 CET on the night summer
# time ends; zoneinfo keeps the two apart.)
MEMORY_LIMIT = "256MB"  # DuckDB's own cap; the rest of the process stays well under the 500 MB target

COLUMNS = {
    "camera": "VARCHAR",
    "run": "VARCHAR",
    "timestamp": "DOUBLE",
    "faces": "STRUCT(label VARCHAR)[]",
    "people": "STRUCT(counted BIGINT, masked BIGINT)",
    "alert": "STRUCT(time DOUBLE, track_id BIGINT, label VARCHAR, duration_s DOUBLE, snapshot VARCHAR)",
    "summary": "JSON",
}


def machine_zone() -> str:
    """The machine's IANA time zone (``TZ``, else /etc/localtime's target), or ``UTC``."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
            name = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
        except OSError:
            name = ""
    try:
        zoneinfo.ZoneInfo(name)
        return name
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return "UTC"


def check_zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ConfigError(f"--tz {name!r}: unknown time zone (an IANA name such as Europe/Berlin or UTC)") from None


def parse_time(text: str | None, zone: zoneinfo.ZoneInfo, what: str) -> float | None:
    """ISO date or date-time (``2026-03-29``, ``2026-03-29T08:00``, with or without an offset) -> Unix seconds;
    a time without an offset is in ``zone``."""
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected an ISO date or date-time, e.g. 2026-03-29T08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


@dataclass(frozen=True)
class Row:
    """The numbers of one camera in one bucket."""

    camera: str
    start: datetime  # the bucket's start, in the report's zone
    frames: int
    people: int | None  # None: the run had no people stage
    masked: int | None
    faces: dict[str, int]  # label -> face observations (LABELS and "other")
    alerts: int

    @property
    def share_masked(self) -> float | None:
        return self.masked / self.people if self.people else None


@dataclass(frozen=True)
class AlertItem:
    camera: str
    time: datetime
    label: str
    track_id: int | None
    duration_s: float | None
    snapshot: Path | None  # resolved next to the event log, else as written; None when absent or missing


@dataclass(frozen=True)
class Aggregate:
    """What a report shows: rows per camera and bucket, alerts, and what was read and skipped."""

    rows: tuple[Row, ...]
    alerts: tuple[AlertItem, ...]
    by: str
    zone: str
    start: float | None  # --from (Unix seconds) or None
    end: float | None
    files: tuple[str, ...]
    lines: int  # non-blank lines read
    malformed: int
    runs: int  # summary lines seen
    cameras: tuple[str, ...] = field(default=())

    def site(self) -> list[Row]:
        """All cameras summed, per bucket (people None only when no camera had people counts)."""
        out: dict[float, list[Row]] = {}
        for row in self.rows:
            out.setdefault(row.start.timestamp(), []).append(row)
        site = []
        for key in sorted(out):
            rows = out[key]
            start = rows[0].start
            counted = [r for r in rows if r.people is not None]
            faces = {k: sum(r.faces.get(k, 0) for r in rows) for k in (*LABELS, "other")}
            site.append(Row("site", start, sum(r.frames for r in rows),
                            sum(r.people for r in counted) if counted else None,
                            sum(r.masked or 0 for r in counted) if counted else None,
                            faces, sum(r.alerts for r in rows)))
        return site


def camera_totals(agg: Aggregate) -> list[Row]:
    """Each camera's numbers over the whole report (``start``: its first bucket), in camera order; people None
    when that camera had no people counts."""
    out = []
    for camera in agg.cameras:
        rows = [r for r in agg.rows if r.camera == camera]
        counted = [r for r in rows if r.people is not None]
        faces = {k: sum(r.faces.get(k, 0) for r in rows) for k in (*LABELS, "other")}
        out.append(Row(camera, min(r.start for r in rows), sum(r.frames for r in rows),
                       sum(r.people for r in counted) if counted else None,
                       sum(r.masked or 0 for r in counted) if counted else None, faces, sum(r.alerts for r in rows)))
    return out


def _snapshot(raw: str | None, log: Path) -> Path | None:
    if not raw:
        return None
    path = Path(raw)
    for candidate in ([path] if path.is_absolute() else [log.parent / path, Path.cwd() / path]):
        if candidate.is_file():
            return candidate
    return None


def _query(files: list[EventFile], by: str, lo: float | None, hi: float | None) -> str:
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    label_sums = ", ".join(f"sum(len(list_filter(faces, lambda f: f.label = '{k}'))) AS \"f_{k}\"" for k in LABELS)
    lo_s = "NULL" if lo is None else repr(float(lo))
    hi_s = "NULL" if hi is None else repr(float(hi))
    return f"""
    WITH ev AS (
      SELECT coalesce(e.camera, m.camera) AS camera,
        CASE WHEN e.timestamp IS NOT NULL THEN 'frame' WHEN e.alert.time IS NOT NULL THEN 'alert'
             WHEN e.summary IS NOT NULL THEN 'summary' ELSE 'bad' END AS kind,
        -- a run's totals continue across the files it spans (serve's kept files): frames group by run
        CASE WHEN e.run IS NOT NULL AND e.timestamp IS NOT NULL THEN 'run:' || e.run
             ELSE 'file:' || m.idx END AS run_key, m.idx AS file_idx,
        coalesce(e.timestamp, e.alert.time) AS t, e.people, e.faces, e.alert
      FROM read_ndjson($paths, ignore_errors = true, filename = true, format = 'newline_delimited',
                       columns = {columns}) e
      JOIN files m ON e.filename = m.path
    ), phased AS (
      SELECT *, CASE WHEN t IS NULL OR {lo_s} IS NULL OR t >= {lo_s} THEN 0 ELSE -1 END AS phase
      FROM ev WHERE t IS NULL OR {hi_s} IS NULL OR t < {hi_s}
    )
    SELECT run_key, CASE WHEN kind = 'alert' THEN file_idx END AS file_idx, camera, kind, phase,
      CASE WHEN phase = 0 AND t IS NOT NULL AND isfinite(t) THEN floor(t / {SLOT_S}) * {SLOT_S} END AS slot,
      CASE WHEN kind = 'alert' THEN alert END AS alert,
      count(*) AS n, max(people.counted) AS counted, arg_max(people.masked, t) AS masked,
      sum(len(faces)) AS faces, {label_sums}
    FROM phased
    GROUP BY ALL
    """


def aggregate(files: list[EventFile], by: str = "hour", zone: str | None = None,
              start: float | None = None, end: float | None = None) -> Aggregate:
    """Count the events of ``files`` per camera and ``by`` bucket in ``zone`` (default: the machine's)."""
    from livemask.report import require_report_libraries

    require_report_libraries()
    import duckdb

    if by not in BUCKETS:
        raise ConfigError(f"--by {by!r}: expected one of {', '.join(BUCKETS)}")
    zone = zone or machine_zone()
    check_zone(zone)
    if start is not None and end is not None and end <= start:
        raise ConfigError("--to must be later than --from")
    paths = [str(f.path.resolve()) for f in files]
    with tempfile.TemporaryDirectory(prefix="livemask-report-") as spill:
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": min(os.cpu_count() or 1, 4),
                                     "temp_directory": spill, "preserve_insertion_order": False})
        try:
            con.execute("SET enable_progress_bar = false")  # DuckDB's bar would go to stdout (CSV/JSON output)
            con.execute("CREATE TEMP TABLE files (idx INTEGER, path VARCHAR, camera VARCHAR)")
            con.executemany("INSERT INTO files VALUES (?, ?, ?)",
                            [(i, p, f.camera) for i, (p, f) in enumerate(zip(paths, files, strict=True))])
            result = con.execute(_query(files, by, start, end), {"paths": paths})
            names = [d[0] for d in result.description]
            groups = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
        except duckdb.IOException as err:
            from livemask.report.inputs import ReportInputError

            raise ReportInputError(f"cannot read the events ({str(err).splitlines()[0]})") from None
        finally:
            con.close()
    return _fold(_buckets(groups, by, zoneinfo.ZoneInfo(zone)), files, by, zone, start, end)


def bucket_start(t: float, by: str, zone: zoneinfo.ZoneInfo) -> float:
    """The Unix time at which the local hour or day holding ``t`` starts (a DST night's two 01:00-02:00 differ)."""
    local = datetime.fromtimestamp(t, zone)
    if by == "hour":
        return local.replace(minute=0, second=0, microsecond=0).timestamp()
    return local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0).timestamp()


def _buckets(groups: list[dict], by: str, zone: zoneinfo.ZoneInfo) -> list[dict]:
    """Merge the 15-minute slots of each group key into local buckets: ``bucket`` is then a zone-aware datetime."""
    merged: dict[tuple, dict] = {}
    for g in sorted(groups, key=lambda g: g["slot"] if g["slot"] is not None else -math.inf):
        slot = g.pop("slot")
        start = None if slot is None else bucket_start(float(slot), by, zone)
        key = (g["run_key"], g["file_idx"], g["camera"], g["kind"], g["phase"], start, json_key(g["alert"]))
        m = merged.get(key)
        if m is None:
            merged[key] = {**g, "bucket": None if start is None else datetime.fromtimestamp(start, zone)}
            continue
        m["n"] += g["n"]
        if g["counted"] is not None:
            m["counted"] = max(m["counted"] or 0, g["counted"])
        if g["masked"] is not None:
            m["masked"] = g["masked"]  # later slot: its last value
        for k in ("faces", *(f"f_{k}" for k in LABELS)):
            m[k] = (m[k] or 0) + (g[k] or 0)
    return list(merged.values())


def json_key(value) -> str | None:
    return None if value is None else repr(sorted(value.items()))


def _fold(groups: list[dict], files: list[EventFile], by: str, zone: str, start, end) -> Aggregate:
    lines = sum(g["n"] for g in groups)
    malformed = sum(g["n"] for g in groups if g["kind"] == "bad")
    runs = sum(g["n"] for g in groups if g["kind"] == "summary")
    frames: dict[tuple[str, str], list[dict]] = {}  # (run, camera) -> its buckets
    for g in groups:
        if g["kind"] == "frame" and (g["phase"] == -1 or g["bucket"] is not None):
            frames.setdefault((g["run_key"], g["camera"]), []).append(g)
    cells: dict[tuple[str, float], dict] = {}  # keyed by the bucket's Unix time: datetimes of one zone compare
    # equal across a DST fold

    def cell(camera: str, bucket: datetime) -> dict:
        return cells.setdefault((camera, bucket.timestamp()), {"start": bucket, "frames": 0, "people": None,
                                                               "masked": None, "alerts": 0,
                                                   "faces": dict.fromkeys((*LABELS, "other"), 0)})

    for (_, camera), rows in frames.items():
        rows.sort(key=lambda g: (g["phase"], g["bucket"].timestamp() if g["bucket"] else 0.0))
        prev_counted, prev_masked = 0, 0
        for g in rows:
            if g["phase"] == -1:
                prev_counted, prev_masked = g["counted"] or 0, g["masked"] or 0
                continue
            c = cell(camera, g["bucket"])
            c["frames"] += g["n"]
            named = 0
            for k in LABELS:
                c["faces"][k] += int(g[f"f_{k}"] or 0)
                named += int(g[f"f_{k}"] or 0)
            c["faces"]["other"] += int(g["faces"] or 0) - named
            if g["counted"] is not None:
                counted, masked = int(g["counted"]), int(g["masked"] or 0)
                c["people"] = (c["people"] or 0) + max(counted - prev_counted, 0)
                c["masked"] = (c["masked"] or 0) + (masked - prev_masked)
                prev_counted, prev_masked = max(counted, prev_counted), masked
    alerts = []
    for g in groups:
        if g["kind"] != "alert" or g["bucket"] is None:
            continue
        a = g["alert"]
        cell(g["camera"], g["bucket"])["alerts"] += g["n"]
        moment = datetime.fromtimestamp(a["time"], zoneinfo.ZoneInfo(zone))
        item = AlertItem(g["camera"], moment, a["label"] or "?", a["track_id"],
                         None if a["duration_s"] is None or not math.isfinite(a["duration_s"]) else a["duration_s"],
                         _snapshot(a["snapshot"], files[g["file_idx"]].path))
        alerts.extend([item] * g["n"])
    rows = tuple(Row(camera, c["start"], c["frames"], c["people"],
                     None if c["people"] is None else max(min(c["masked"], c["people"]), 0), c["faces"], c["alerts"])
                 for (camera, _), c in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])))
    if not rows:
        where = "" if start is None and end is None else " between --from and --to"
        raise NothingToReport(f"no event line to report{where} in {len(files)} file(s) "
                              f"({lines} line(s) read, {malformed} malformed)")
    cameras = tuple(sorted({r.camera for r in rows}))
    return Aggregate(rows, tuple(sorted(alerts, key=lambda a: a.time)), by, zone, start, end,
                     tuple(str(f.path) for f in files), lines, malformed, runs, cameras)

"""The numbers of a report as records, CSV and JSON (``livemask report --format csv|json``)."""

from __future__ import annotations

import csv
import io
import json

from livemask.report.aggregate import LABELS, Aggregate, Row, camera_totals

FACE_KEYS = (*LABELS, "other")
COLUMNS = ("start", "camera", "frames", "people", "masked", "share_masked",
           *(f"faces_{k}" for k in FACE_KEYS), "alerts")


def bucket_label(row: Row) -> str:
    """``2026-10-25T02:00+01:00``: the bucket's start with its offset (two 02:00 on a DST night stay apart)."""
    return row.start.isoformat(timespec="minutes")


def record(row: Row) -> dict:
    share = row.share_masked
    out = {"start": bucket_label(row), "camera": row.camera, "frames": row.frames, "people": row.people,
           "masked": row.masked, "share_masked": None if share is None else round(share, 4)}
    out.update({f"faces_{k}": row.faces.get(k, 0) for k in FACE_KEYS})
    out["alerts"] = row.alerts
    return out


def records(agg: Aggregate) -> list[dict]:
    """Every camera's rows, then the site's (all cameras summed), each in time order."""
    return [record(r) for r in agg.rows] + [record(r) for r in agg.site()]


def to_csv(agg: Aggregate) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rec in records(agg):
        writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()


def to_json(agg: Aggregate) -> str:
    doc = {
        "zone": agg.zone, "by": agg.by, "from": agg.start, "to": agg.end, "files": list(agg.files),
        "lines": agg.lines, "malformed": agg.malformed, "runs": agg.runs, "cameras": list(agg.cameras),
        "rows": records(agg),
        "by_camera": [{k: v for k, v in record(r).items() if k != "start"} for r in camera_totals(agg)],
        "alerts": [{"time": a.time.isoformat(timespec="seconds"), "camera": a.camera, "label": a.label,
                    "track_id": a.track_id, "duration_s": a.duration_s,
                    "snapshot": None if a.snapshot is None else str(a.snapshot)} for a in agg.alerts],
    }
    return json.dumps(doc, indent=1) + "\n"

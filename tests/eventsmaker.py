"""Event logs with known counts, written line by line like :class:`livemask.sinks.recording.EventLog`'s.

* :func:`write_plan`: one run's log from an hourly plan (frames, new people, new masked people, alerts,
  face labels) so a test can compare a report's numbers with numbers it wrote down by hand.
* :func:`write_big`: a log of about ``size`` bytes of realistic frame lines (two faces with every field a
  real line has, people counts, an alert now and then), fast enough to make 1 GB in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Hour:
    start: float  # Unix seconds
    frames: int = 4
    people: int = 0  # people counted in this hour
    masked: int = 0
    alerts: int = 0
    labels: tuple[str, ...] = ("mask", "no_mask")  # the faces of every frame
    extra: list[str] = field(default_factory=list)  # raw lines written after the hour's frames


def _face(label: str, track: int) -> dict:
    probs = {"mask": 0.05, "no_mask": 0.05, "mask_incorrect": 0.05}
    probs[label] = 0.9
    return {"box": [10.0, 20.0, 60.0, 90.0], "score": 0.9, "label": label, "probability": 0.9,
            "probabilities": probs, "track_id": track}


def write_plan(path: Path, hours: list[Hour], camera: str | None = None, summary: bool = True,
               snapshot: str | None = None) -> Path:
    """One run: each hour's frames spread evenly over it, totals rising at its first frame."""
    counted = masked = 0
    frame_id = 0
    with path.open("w", encoding="utf-8") as f:
        for hour in hours:
            counted += hour.people
            masked += hour.masked
            step = 3600.0 / max(hour.frames, 1)
            for k in range(hour.frames):
                t = hour.start + k * step
                line = {"frame_id": frame_id, "timestamp": round(t, 3),
                        "faces": [_face(label, i + 1) for i, label in enumerate(hour.labels)],
                        "people": {"in_view": len(hour.labels), "counted": counted, "masked": masked,
                                   "share_masked": round(masked / counted, 4) if counted else None, "static": 0}}
                if camera is not None:
                    line["camera"] = camera
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
                if k == 0:
                    for a in range(hour.alerts):
                        alert = {"time": round(t + a, 3), "track_id": 2, "label": "no_mask", "duration_s": 2.0,
                                 "box": [10.0, 20.0, 60.0, 90.0], "snapshot": snapshot, "frame_id": frame_id}
                        record = {"alert": alert} if camera is None else {"alert": alert, "camera": camera}
                        f.write(json.dumps(record, separators=(",", ":")) + "\n")
                frame_id += 1
            for raw in hour.extra:
                f.write(raw + "\n")
        if summary:
            f.write(json.dumps({"summary": {"frames_processed": frame_id, "people": {"counted": counted}}}) + "\n")
    return path


LINE = ('{{"frame_id":{i},"timestamp":{t:.3f},"position_s":{p:.3f},"faces":[{{"box":[523.6,43.3,567.8,101.1],'
        '"score":0.7789,"label":"{a}","probability":0.8917,"probabilities":{{"mask":0.0346,"no_mask":0.8917,'
        '"mask_incorrect":0.0738}},"track_id":{ta}}},{{"box":[54.9,184.0,80.9,216.6],"score":0.5468,'
        '"label":"{b}","probability":0.992,"probabilities":{{"mask":0.0031,"no_mask":0.992,"mask_incorrect":0.0049}},'
        '"track_id":{tb}}}],"people":{{"in_view":2,"counted":{c},"masked":{m},"share_masked":0.5,"static":0}}}}\n')
ALERT = ('{{"alert":{{"time":{t:.3f},"track_id":{ta},"label":"no_mask","duration_s":2.002,'
         '"box":[168.8,81.5,223.2,151.9],"snapshot":{s},"frame_id":{i},"position_s":{p:.3f}}}}}\n')


def write_big(path: Path, size: int, start: float = 1_790_000_000.0, fps: float = 25.0, alert_every: int = 1000,
              snapshot: str | None = None) -> dict:
    """About ``size`` bytes of frame lines at ``fps`` from ``start``: a new person every 100 frames (every
    other one masked), an alert every ``alert_every`` frames (its snapshot ``snapshot``).
    Returns {"lines", "frames", "people", "masked", "alerts"}."""
    snap = json.dumps(snapshot)
    written = lines = frames = alerts = 0
    chunk: list[str] = []
    labels = ("mask", "no_mask", "mask_incorrect", "no_mask")
    with path.open("w", encoding="utf-8") as f:
        while written < size:
            i = frames
            t = start + i / fps
            people = i // 100 + 1
            text = LINE.format(i=i, t=t, p=i / fps, a=labels[i % 4], b=labels[(i + 1) % 4], ta=people,
                               tb=people + 1, c=people, m=(people + 1) // 2)
            chunk.append(text)
            written += len(text)
            frames += 1
            lines += 1
            if i % alert_every == alert_every - 1:
                chunk.append(ALERT.format(t=t, ta=people, i=i, p=i / fps, s=snap))
                alerts += 1
                lines += 1
            if len(chunk) >= 4096:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    people = (frames - 1) // 100 + 1
    return {"lines": lines, "frames": frames, "people": people, "masked": (people + 1) // 2, "alerts": alerts}

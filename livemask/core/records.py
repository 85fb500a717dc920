"""The one JSON layout of a face, used by ``image --json``, the event log, ``explain --json`` and the API.

``{"box": [x1, y1, x2, y2], "score", "label", "probability", "probabilities": {class: p}}``,
plus ``"track_id"`` where the face is tracked, ``"static": true`` for a face the people stage marked
static (a picture; :mod:`livemask.engine.people`) and ``"explanations"`` where it was explained.
:func:`alert_record` is the one JSON layout of an alert, :func:`event_lines` the one layout of a
frame's event-log lines (the ``--events`` file and the page's ``/v1/events`` stream).
Boxes are rounded to 0.1 px, scores and probabilities to 4 decimals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from livemask.core.types import Alert, Detections, FrameResult, Predictions


def face_record(box, score: float, probabilities: np.ndarray, class_names: tuple[str, ...],
                track_id: int | None = None, explanations: dict | None = None, static: bool = False) -> dict[str, Any]:
    k = int(np.argmax(probabilities))
    record: dict[str, Any] = {
        "box": [round(float(v), 1) for v in box],
        "score": round(float(score), 4),
        "label": class_names[k],
        "probability": round(float(probabilities[k]), 4),
        "probabilities": {name: round(float(p), 4) for name, p in zip(class_names, probabilities, strict=True)},
    }
    if track_id is not None:
        record["track_id"] = int(track_id)
    if static:
        record["static"] = True
    if explanations is not None:
        record["explanations"] = explanations
    return record


def face_records(detections: Detections, predictions: Predictions,
                 track_ids: np.ndarray | None = None, static: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Records for all faces of one image or frame, in detection order (``static``: (N,) bool)."""
    ids = [None] * len(detections) if track_ids is None else [int(t) for t in track_ids]
    still = [False] * len(detections) if static is None else [bool(s) for s in static]
    return [face_record(detections.boxes[i], detections.scores[i], predictions.probabilities[i],
                        predictions.class_names, ids[i], static=still[i]) for i in range(len(detections))]


def alert_record(alert: Alert) -> dict[str, Any]:
    """``{"time", "track_id", "label", "duration_s", "box", "snapshot", "frame_id"[, "position_s"]}``."""
    record: dict[str, Any] = {
        "time": round(float(alert.time), 3),
        "track_id": int(alert.track_id),
        "label": alert.label,
        "duration_s": round(float(alert.duration_s), 3),
        "box": [round(float(v), 1) for v in alert.box],
        "snapshot": alert.snapshot,
        "frame_id": int(alert.frame_id),
    }
    if alert.position_s is not None:
        record["position_s"] = round(float(alert.position_s), 3)
    return record


def event_lines(result: FrameResult, wall_offset: float) -> list[dict[str, Any]]:
    """A frame's event-log lines: ``{"frame_id", "timestamp"[, "position_s"], "faces"[, "people"]}``,
    then one ``{"alert": ...}`` line per alert fired on it. ``wall_offset`` turns the frame's monotonic
    capture time into Unix seconds; ``people`` is there when the people stage ran."""
    frame = result.frame
    record: dict[str, Any] = {"frame_id": frame.frame_id, "timestamp": round(frame.timestamp + wall_offset, 3)}
    if frame.position_ms is not None:
        record["position_s"] = round(frame.position_ms / 1000.0, 3)
    analytics = result.analytics
    record["faces"] = face_records(result.detections, result.predictions, result.track_ids,
                                   None if analytics is None else analytics.static)
    if analytics is None:
        return [record]
    record["people"] = analytics.people.to_dict()
    return [record, *({"alert": alert_record(alert)} for alert in analytics.alerts)]

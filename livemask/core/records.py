"""The one JSON layout of a face, used by ``image --json``, the event log, ``explain --json`` and the API.

``{"box": [x1, y1, x2, y2], "score", "label", "probability", "probabilities": {class: p}}``,
plus ``"track_id"`` where the face is tracked and ``"explanations"`` where it was explained.
Boxes are rounded to 0.1 px, scores and probabilities to 4 decimals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from livemask.core.types import Detections, Predictions


def face_record(box, score: float, probabilities: np.ndarray, class_names: tuple[str, ...],
                track_id: int | None = None, explanations: dict | None = None) -> dict[str, Any]:
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
    if explanations is not None:
        record["explanations"] = explanations
    return record


def face_records(detections: Detections, predictions: Predictions,
                 track_ids: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Records for all faces of one image or frame, in detection order."""
    ids = [None] * len(detections) if track_ids is None else [int(t) for t in track_ids]
    return [face_record(detections.boxes[i], detections.scores[i], predictions.probabilities[i],
                        predictions.class_names, ids[i]) for i in range(len(detections))]

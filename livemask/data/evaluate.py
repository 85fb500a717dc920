"""Detection recall/precision and mask accuracy on a labelled folder (the work of ``livemask eval``).

Scene sets (VOC): a face counts if its shorter side is at least ``MIN_FACE_RECALL``
pixels; a detection matches a face at IoU >= ``MATCH_IOU`` (greedy, by score); a
detection that matches no annotated face (of any size) counts against precision.
Accuracy is mask vs no-mask on matched faces of at least ``MIN_FACE_ACCURACY`` pixels
(``mask_weared_incorrect`` faces count for detection, not for accuracy).

Class folders: per image the highest-scoring face is classified; accuracy is over the
images where a face was found, ``detected`` the fraction found.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livemask.core.errors import InputImageError
from livemask.core.geometry import iou_matrix, match_by_score
from livemask.core.images import read_image
from livemask.data.datasets import load_face_folders, load_scenes

log = logging.getLogger(__name__)

MATCH_IOU = 0.4
MIN_FACE_RECALL = 12
MIN_FACE_ACCURACY = 16
# annotation / folder name -> the classifier class it should get
EXPECTED_CLASS = {"with_mask": "mask", "without_mask": "no_mask"}


@dataclass
class SceneTally:
    faces: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    detections: int = 0
    detections_on_faces: int = 0
    correct: int = 0
    classified: int = 0

    def add_image(self, truth: np.ndarray, names: tuple[str, ...], boxes: np.ndarray, scores: np.ndarray,
                  labels: list[str]) -> None:
        matched = match_by_score(truth, boxes, scores, MATCH_IOU)
        sizes = (truth[:, 2:] - truth[:, :2]).min(axis=1) if len(truth) else np.zeros(0)
        for i, name in enumerate(names):
            if sizes[i] < MIN_FACE_RECALL:
                continue
            self.faces[name] = self.faces.get(name, 0) + 1
            self.found[name] = self.found.get(name, 0) + int(matched[i] >= 0)
            if matched[i] >= 0 and sizes[i] >= MIN_FACE_ACCURACY and name in EXPECTED_CLASS:
                self.classified += 1
                self.correct += int(labels[matched[i]] == EXPECTED_CLASS[name])
        self.detections += len(boxes)
        if len(boxes) and len(truth):
            self.detections_on_faces += int((iou_matrix(boxes, truth).max(axis=1) >= MATCH_IOU).sum())

    def summary(self) -> dict:
        return {
            "faces": sum(self.faces.values()),
            "recall": {k: round(self.found[k] / self.faces[k], 4) for k in sorted(self.faces)},
            "precision": round(self.detections_on_faces / self.detections, 4) if self.detections else None,
            "accuracy": round(self.correct / self.classified, 4) if self.classified else None,
            "classified_faces": self.classified,
        }


def evaluate_scenes(root: Path, detector, classifier, only: set[str] | None = None) -> dict:
    scenes = load_scenes(root, only)
    if not scenes:
        raise InputImageError(f"{root}: no annotated images" + (" match the list" if only is not None else ""))
    tally = SceneTally()
    seconds = 0.0
    for scene in scenes:
        image = read_image(scene.path)
        t0 = time.perf_counter()
        det = detector.detect(image)
        pred = classifier.classify(image, det)
        seconds += time.perf_counter() - t0
        tally.add_image(scene.boxes, scene.names, det.boxes, det.scores, pred.labels)
    return {"images": len(scenes), **tally.summary(), "ms_per_image": round(1000 * seconds / len(scenes), 2)}


def evaluate_folders(root: Path, detector, classifier, only: set[str] | None = None,
                     split: str | None = None) -> dict:
    items = load_face_folders(root, only, split)
    if not items:
        raise InputImageError(f"{root}: no images" + (" match the list/split" if only or split else ""))
    found = {k: 0 for k in EXPECTED_CLASS}
    total = {k: 0 for k in EXPECTED_CLASS}
    correct = {k: 0 for k in EXPECTED_CLASS}
    seconds = 0.0
    for item in items:
        image = read_image(item.path)
        t0 = time.perf_counter()
        det = detector.detect(image)
        if len(det):
            det = det[int(np.argmax(det.scores))]
            label = classifier.classify(image, det).labels[0]
        seconds += time.perf_counter() - t0
        total[item.label] += 1
        if len(det):
            found[item.label] += 1
            correct[item.label] += int(label == EXPECTED_CLASS[item.label])
    n_found = sum(found.values())
    accuracy = {k: round(correct[k] / found[k], 4) for k in found if found[k]}
    accuracy["all"] = round(sum(correct.values()) / n_found, 4) if n_found else None
    return {
        "images": len(items),
        "detected": round(n_found / len(items), 4),
        "detected_by_class": {k: round(found[k] / total[k], 4) for k in total if total[k]},
        "accuracy": accuracy,
        "ms_per_image": round(1000 * seconds / len(items), 2),
    }

"""Detection recall/precision and mask accuracy on a labelled folder (the work of ``livemask eval``).

Scene sets (VOC): a face counts if its shorter side is at least ``MIN_FACE_RECALL``
pixels; a detection matches a face at IoU >= ``MATCH_IOU`` (greedy, by score); a
detection that matches no annotated face (of any size) counts against precision.
Accuracy, ``class_accuracy`` (per annotation label) and the confusion matrix are over
matched faces of at least ``MIN_FACE_ACCURACY`` pixels whose label the model can say
(``mask_weared_incorrect`` needs a model with a ``mask_incorrect`` class).

Class folders (any of ``with_mask/``, ``without_mask/``, ``mask_weared_incorrect/``): per
image the photo's subject, its largest detected face, is classified (a bystander can
score higher); accuracy is over the images where a face was found, ``detected`` the
fraction found. ``ece`` is the expected calibration error of the predicted class
(15 equal-width bins).
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
from livemask.data.datasets import CLASS_OF_LABEL, DataReport, fit_boxes, load_face_folders, load_scenes
from livemask.data.temperature import ece_of_probabilities

log = logging.getLogger(__name__)

MATCH_IOU = 0.4
MIN_FACE_RECALL = 12
MIN_FACE_ACCURACY = 16


class Confusion:
    """Rows: data labels (folder / annotation names); columns: the model's classes."""

    def __init__(self, class_names: tuple[str, ...]):
        self.class_names = tuple(class_names)
        self.rows: dict[str, np.ndarray] = {}
        self.probs: list[np.ndarray] = []
        self.truth: list[int] = []

    def gradable(self, label: str) -> bool:
        return CLASS_OF_LABEL.get(label) in self.class_names

    def add(self, label: str, probabilities: np.ndarray) -> None:
        row = self.rows.setdefault(label, np.zeros(len(self.class_names), np.int64))
        row[int(np.argmax(probabilities))] += 1
        if self.gradable(label):
            self.probs.append(np.asarray(probabilities, np.float64))
            self.truth.append(self.class_names.index(CLASS_OF_LABEL[label]))

    def summary(self) -> dict:
        correct = {k: int(r[self.class_names.index(CLASS_OF_LABEL[k])]) for k, r in self.rows.items()
                   if self.gradable(k)}
        total = {k: int(self.rows[k].sum()) for k in correct}
        n = sum(total.values())
        labels = sorted(self.rows, key=lambda k: list(CLASS_OF_LABEL).index(k) if k in CLASS_OF_LABEL else 99)
        return {
            "accuracy": round(sum(correct.values()) / n, 4) if n else None,
            "class_accuracy": {k: round(correct[k] / total[k], 4) for k in labels if total.get(k)},
            "confusion": {"rows": labels, "columns": list(self.class_names),
                          "matrix": [self.rows[k].tolist() for k in labels]},
            "ece": round(ece_of_probabilities(np.stack(self.probs), np.asarray(self.truth)), 4) if n else None,
            "classified_faces": n,
        }


@dataclass
class SceneTally:
    class_names: tuple[str, ...]
    faces: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    detections: int = 0
    detections_on_faces: int = 0
    confusion: Confusion = field(init=False)

    def __post_init__(self) -> None:
        self.confusion = Confusion(self.class_names)

    def add_image(self, truth: np.ndarray, names: tuple[str, ...], boxes: np.ndarray, scores: np.ndarray,
                  probabilities: np.ndarray) -> None:
        matched = match_by_score(truth, boxes, scores, MATCH_IOU)
        sizes = (truth[:, 2:] - truth[:, :2]).min(axis=1) if len(truth) else np.zeros(0)
        for i, name in enumerate(names):
            if sizes[i] < MIN_FACE_RECALL:
                continue
            self.faces[name] = self.faces.get(name, 0) + 1
            self.found[name] = self.found.get(name, 0) + int(matched[i] >= 0)
            if matched[i] >= 0 and sizes[i] >= MIN_FACE_ACCURACY and name in CLASS_OF_LABEL:
                self.confusion.add(name, probabilities[matched[i]])
        self.detections += len(boxes)
        if len(boxes) and len(truth):
            self.detections_on_faces += int((iou_matrix(boxes, truth).max(axis=1) >= MATCH_IOU).sum())

    def summary(self) -> dict:
        return {
            "faces": sum(self.faces.values()),
            "recall": {k: round(self.found[k] / self.faces[k], 4) for k in sorted(self.faces)},
            "precision": round(self.detections_on_faces / self.detections, 4) if self.detections else None,
            **self.confusion.summary(),
        }


def _read_or_skip(path: Path, report: DataReport):
    try:
        return read_image(path)
    except InputImageError as err:
        report.images_skipped += 1
        report.warn(f"{err}; skipped")
        return None


def evaluate_scenes(root: Path, detector, classifier, only: set[str] | None = None,
                    report: DataReport | None = None) -> dict:
    report = report if report is not None else DataReport()
    scenes = load_scenes(root, only, report)
    if not scenes:
        raise InputImageError(f"{root}: no annotated images" + (" match the list" if only is not None else ""))
    tally = SceneTally(classifier.class_names)
    seconds = 0.0
    for scene in scenes:
        image = _read_or_skip(scene.path, report)
        if image is None:
            continue
        boxes, names = fit_boxes(scene.boxes, scene.names, image.shape[1], image.shape[0], scene.path, report)
        t0 = time.perf_counter()
        det = detector.detect(image)
        pred = classifier.classify(image, det)
        seconds += time.perf_counter() - t0
        tally.add_image(boxes, names, det.boxes, det.scores, pred.probabilities)
    done = len(scenes) - report.images_skipped
    return {"images": done, **tally.summary(), "ms_per_image": round(1000 * seconds / max(done, 1), 2),
            "data_issues": report.as_dict()}


def evaluate_folders(root: Path, detector, classifier, only: set[str] | None = None,
                     split: str | None = None, report: DataReport | None = None) -> dict:
    report = report if report is not None else DataReport()
    items = load_face_folders(root, only, split, report)
    if not items:
        raise InputImageError(f"{root}: no images" + (" match the list/split" if only or split else ""))
    found: dict[str, int] = {}
    total: dict[str, int] = {}
    confusion = Confusion(classifier.class_names)
    seconds = 0.0
    for item in items:
        image = _read_or_skip(item.path, report)
        if image is None:
            continue
        t0 = time.perf_counter()
        det = detector.detect(image)
        if len(det):
            det = det[det.largest()]
            probabilities = classifier.classify(image, det).probabilities[0]
        seconds += time.perf_counter() - t0
        total[item.label] = total.get(item.label, 0) + 1
        found[item.label] = found.get(item.label, 0) + int(len(det) > 0)
        if len(det):
            confusion.add(item.label, probabilities)
    done = sum(total.values())
    return {
        "images": done,
        "detected": round(sum(found.values()) / done, 4) if done else None,
        "detected_by_class": {k: round(found[k] / total[k], 4) for k in total},
        **confusion.summary(),
        "ms_per_image": round(1000 * seconds / max(done, 1), 2),
        "data_issues": report.as_dict(),
    }

"""The third class (a mask below the nose) end to end, a 2-class model file, and calibration."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import MODEL, ROOT

from livemask.data.temperature import ece_of_probabilities, expected_calibration_error, fit_temperature, softmax


def livemask(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "livemask", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (4000, 3))
    true_t = 2.5  # labels drawn from softmax(logits / 2.5): the raw logits are over-confident
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(3, p=row) for row in p])
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.1)
    assert expected_calibration_error(logits, labels, t) < expected_calibration_error(logits, labels, 1.0) / 3


def test_ece_is_zero_for_exact_confidence_and_the_gap_otherwise():
    probs = np.array([[0.75, 0.25]] * 4)
    assert ece_of_probabilities(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert ece_of_probabilities(probs, np.array([0, 0, 0, 0])) == pytest.approx(0.25)


def test_committed_model_has_three_classes_and_a_fitted_temperature(classifier):
    assert classifier.class_names == ("mask", "no_mask", "mask_incorrect")
    assert classifier.spec.temperature != 1.0
    assert MODEL.stat().st_size <= 5_000_000


def test_two_class_model_file_still_runs(tmp_path, astronaut_bgr):
    from livemask.data.train import build_model

    model = build_model(class_names=("mask", "no_mask"), seed=3)
    path = tmp_path / "two.keras"
    model.save(path)
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut_bgr)
    out = livemask("image", image, "--out", tmp_path / "out", "--json", "--set", f"classifier.model_path={path}")
    assert out.returncode == 0, out.stderr
    faces = json.loads(out.stdout)["faces"]
    assert len(faces) == 1 and set(faces[0]["probabilities"]) == {"mask", "no_mask"}
    assert faces[0]["label"] in ("mask", "no_mask")


@pytest.mark.data
def test_real_incorrectly_masked_photos_get_mask_incorrect(data_dir, tmp_path):
    """Ten val photos of masks worn below the nose (never trained on), first ten in name order."""
    from livemask.data.datasets import load_face_folders

    items = [i for i in load_face_folders(data_dir / "faces", split="val") if i.label == "mask_weared_incorrect"]
    paths = [i.path for i in items[:10]]
    assert len(paths) == 10
    out = livemask("image", *paths, "--out", tmp_path / "out", "--json")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    subjects = []
    for rec in records:
        if rec["faces"]:
            largest = max(rec["faces"], key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
            subjects.append(largest["label"])
    assert len(subjects) >= 9
    assert subjects.count("mask_incorrect") >= 8, subjects


@pytest.mark.data
def test_run_counts_the_third_class_in_events_and_summary(data_dir, tmp_path):
    from livemask.data.datasets import load_face_folders

    items = [i for i in load_face_folders(data_dir / "faces", split="val") if i.label == "mask_weared_incorrect"]
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, item in enumerate(items[:6]):
        img = cv2.imread(str(item.path))
        canvas = np.zeros((480, 640, 3), np.uint8)
        scale = min(440 / img.shape[0], 600 / img.shape[1])
        img = cv2.resize(img, None, fx=scale, fy=scale)
        canvas[: img.shape[0], : img.shape[1]] = img
        cv2.imwrite(str(folder / f"{k:03d}.png"), canvas)
    events = tmp_path / "e.jsonl"
    out = livemask("run", "--source", folder, "--headless", "--events", events, "--set", "pipeline.detect_every=1",
                   "--set", "tracker.enabled=false")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    labels = [f["label"] for line in lines[:-1] for f in line["faces"]]
    assert "mask_incorrect" in labels
    assert "mask_incorrect" in json.dumps(lines[-1]["summary"])

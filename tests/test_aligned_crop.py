"""The ``aligned`` crop rule (built, not shipped): five-landmark alignment, its fallback, and a model file that
carries it through image, video, explain and export (real TensorFlow, ONNX Runtime, CenterFace and the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from clipmaker import read_frames, write_frames

from livemask.apps.cli import main
from livemask.core.errors import ModelFileError
from livemask.models import crop
from livemask.models.spec import SPEC_FORMAT, SPEC_FORMAT_ALIGNED, ModelSpec

ANGLES = (-30, -15, 0, 15, 30)
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "mask_classifier.keras"


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h))


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.radians(25), 0.4, np.array([7.0, -3.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = crop.similarity(src, src @ rot.T + t)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_implausible_landmarks_fall_back_to_the_box_crop(astronaut_bgr, detector):
    det = detector.detect(astronaut_bgr)
    box, lm = det.boxes[0], det.landmarks[0]
    assert crop.plausible_landmarks(box, lm) == ""
    bad = {
        "no landmarks": np.full((5, 2), np.nan, np.float32),
        "outside the box": lm + np.float32([0, 3 * (box[3] - box[1])]),
        "eye distance": np.concatenate([lm[:1], lm[:1] + 1, lm[2:]]),
        "roll": lm[[1, 0, 2, 3, 4]],  # eyes swapped: an upside-down face
        "order": lm[[0, 1, 2, 4, 3]],  # mouth corners swapped
    }
    for reason, marks in bad.items():
        assert crop.plausible_landmarks(box, marks) == reason
        out, _, aligned = crop.crop_face_by_rule(astronaut_bgr, box, marks, 64, 0.2, "aligned")
        assert not aligned
        assert np.array_equal(out, crop.crop_face(astronaut_bgr, box, 64, 0.2))  # exactly the box crop
    # rolled past the limit: eyes one above the other
    c = lm[:2].mean(0)
    upright = np.array([c + [0, -10], c + [0, 10], c + [15, 0], c + [25, -8], c + [25, 8]], np.float32)
    assert crop.plausible_landmarks(box, upright) == "roll"


def test_aligned_crops_undo_the_roll_of_a_tilted_head(astronaut_bgr, detector):
    """The same face turned in the image plane gives nearly the same aligned crop; the box crop turns with it."""
    crops = {}
    for rule in ("aligned", "box"):
        for angle in ANGLES:
            image = rotated(astronaut_bgr, angle)
            det = detector.detect(image)
            assert len(det) == 1
            out = crop.crop_faces(image, det.boxes, 64, 0.2, rule, det.landmarks)
            assert out.shape == (1, 64, 64, 3) and out.dtype == np.uint8
            crops[rule, angle] = out[0].astype(np.float32)
            if rule == "aligned":  # the landmarks land on the template, eyes level
                lm = crop.landmarks_in_crops(det.boxes, det.landmarks, 64, 0.2, "aligned")[0]
                assert abs(lm[0, 1] - lm[1, 1]) < 2.0
                assert np.abs(lm - crop.template(64, 0.2)).max() < 4.0

    def spread(rule):
        return np.mean([np.abs(crops[rule, a][8:56, 8:56] - crops[rule, 0][8:56, 8:56]).mean() for a in ANGLES])

    assert spread("aligned") < 0.5 * spread("box")


def test_spec_carries_the_crop_rule_and_v3_contracts_still_read():
    box = ModelSpec(64, "RGB", 1 / 127.5, -1.0, 0.2, ("mask", "no_mask", "mask_incorrect"), 0.8)
    assert box.crop_rule == "box"
    assert box.to_dict()["format"] == SPEC_FORMAT and "crop_rule" not in box.to_dict()  # as v3 wrote it
    assert ModelSpec.from_json(box.to_json(), "x") == box
    aligned = ModelSpec(64, "RGB", 1 / 127.5, -1.0, 0.2, ("mask", "no_mask"), 1.0, "aligned")
    data = aligned.to_dict()
    assert data["format"] == SPEC_FORMAT_ALIGNED and data["crop_rule"] == "aligned"
    assert ModelSpec.from_dict(data, "x") == aligned
    with pytest.raises(ModelFileError, match="crop_rule must be one of"):
        ModelSpec.from_dict({**data, "crop_rule": "tilted"}, "m.onnx")
    with pytest.raises(ModelFileError, match="crop_rule needs format"):
        ModelSpec.from_dict({**data, "format": SPEC_FORMAT}, "m.onnx")


@pytest.fixture(scope="module")
def aligned_models(tmp_path_factory):
    """The shipped model's network with the ``aligned`` rule in its contract (a real network, so its answers
    depend on the crop), saved as .keras and exported to .onnx by ``livemask export``."""
    from livemask.models.backends.keras_model import load_keras_model

    model = load_keras_model(str(SHIPPED))
    model.get_layer("preprocess").crop_rule = "aligned"
    folder = tmp_path_factory.mktemp("aligned_model")
    path = folder / "aligned.keras"
    model.save(path)
    onnx = folder / "aligned.onnx"
    assert main(["export", "--format", "onnx", "--model", str(path), "--output", str(onnx)]) == 0
    return path, onnx


def _predict(model_path: Path, image: np.ndarray, detector, rule: str) -> np.ndarray:
    from livemask.models.backends.exported import OnnxClassifier
    from livemask.models.backends.keras_model import MaskClassifier

    clf = OnnxClassifier(str(model_path)) if model_path.suffix == ".onnx" else MaskClassifier(str(model_path))
    det = detector.detect(image)
    crops = crop.crop_faces(image, det.boxes, clf.input_size, clf.spec.crop_margin, rule, det.landmarks)
    return clf.predict_crops(crops).probabilities


@pytest.fixture(scope="module")
def configured_detector():
    """The detector ``livemask image`` and ``explain`` build from the project's config.yaml."""
    from livemask.apps.compose import detector, load_config

    return detector(load_config(None))


def test_aligned_model_in_image_and_export(aligned_models, astronaut_bgr, configured_detector, tmp_path, capsys):
    from livemask.models.backends.exported import OnnxClassifier
    from livemask.models.backends.keras_model import MaskClassifier

    detector = configured_detector
    keras_path, onnx_path = aligned_models
    keras_clf, onnx_clf = MaskClassifier(str(keras_path)), OnnxClassifier(str(onnx_path))
    assert keras_clf.spec.crop_rule == onnx_clf.spec.crop_rule == "aligned"
    assert keras_clf.spec == onnx_clf.spec
    image = rotated(astronaut_bgr, 25)
    det = detector.detect(image)
    # both backends cut the aligned crop and agree on it (export parity)
    assert np.array_equal(keras_clf.crops(image, det), onnx_clf.crops(image, det))
    spec = keras_clf.spec
    assert np.array_equal(keras_clf.crops(image, det), crop.crop_faces(image, det.boxes, spec.input_size,
                                                                       spec.crop_margin, "aligned", det.landmarks))
    k, o = keras_clf.classify(image, det).probabilities, onnx_clf.classify(image, det).probabilities
    assert np.abs(k - o).max() < 1e-4
    aligned, box = _predict(keras_path, image, detector, "aligned"), _predict(keras_path, image, detector, "box")
    assert np.abs(aligned - box).max() > 1e-3  # the rule matters to this model, so the checks below can fail
    path = tmp_path / "tilted.png"
    cv2.imwrite(str(path), image)
    for model in (keras_path, onnx_path):
        assert main(["image", str(path), "--out", str(tmp_path / "out"), "--json",
                     "--set", f"classifier.model_path={model}"]) == 0
        (face,) = json.loads(capsys.readouterr().out)["faces"]
        got = np.array([face["probabilities"][n] for n in keras_clf.class_names])
        assert np.abs(got - aligned[0]).max() <= 2e-4, (got, aligned, box)


def test_aligned_model_in_explain(aligned_models, astronaut_bgr, configured_detector, tmp_path, capsys):
    keras_path, _ = aligned_models
    detector = configured_detector
    image = rotated(astronaut_bgr, -20)
    path = tmp_path / "tilted.png"
    cv2.imwrite(str(path), image)
    assert main(["explain", str(path), "--method", "gradcam", "--out", str(tmp_path), "--json",
                 "--set", f"classifier.model_path={keras_path}"]) == 0
    (face,) = json.loads(capsys.readouterr().out.splitlines()[0])["faces"]
    aligned = _predict(keras_path, image, detector, "aligned")[0]
    got = np.array([face["probabilities"][n] for n in ("mask", "no_mask", "mask_incorrect")])
    assert np.abs(got - aligned).max() <= 2e-4
    (entry,) = face["explanations"]
    assert entry["target_probability"] == pytest.approx(face["probability"], abs=1e-4)
    # the words' face regions come from the landmarks in the aligned crop: on the template
    from livemask.explain.words import crop_landmarks

    lm = crop_landmarks(detector.detect(image), 64, 0.2, "aligned")[0]
    assert np.abs(lm - crop.template(64, 0.2)).max() < 4.0


def test_aligned_model_in_a_video_run(aligned_models, astronaut_bgr, tmp_path):
    from livemask.apps.compose import load_config, video_detector

    _, onnx_path = aligned_models
    frames = [cv2.copyMakeBorder(rotated(astronaut_bgr, a), 0, 0, 64, 64, cv2.BORDER_CONSTANT) for a in ANGLES]
    clip = write_frames(tmp_path / "tilted.avi", frames, 5.0)
    events = tmp_path / "events.jsonl"
    assert main(["run", "--source", str(clip), "--headless", "--events", str(events),
                 "--set", f"classifier.model_path={onnx_path}", "--set", "pipeline.detect_every=1",
                 "--set", "tracker.enabled=false"]) == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()][:-1]
    decoded, _ = read_frames(clip)
    assert len(lines) == len(decoded) == len(ANGLES)
    det = video_detector(load_config(None))
    for line, frame in zip(lines, decoded):
        (face,) = line["faces"]
        got = np.array([face["probabilities"][n] for n in ("mask", "no_mask", "mask_incorrect")])
        aligned = _predict(onnx_path, frame, det, "aligned")[0]
        assert np.abs(got - aligned).max() <= 2e-4, (got, aligned)


def test_box_model_file_keeps_its_box_rule(tmp_path, astronaut_bgr, detector):
    """A model saved without a crop rule (every model up to v3) loads with the box rule and crops by the box."""
    from livemask.data.train import build_model
    from livemask.models.backends.keras_model import MaskClassifier

    path = tmp_path / "box.keras"
    build_model(64, seed=2, filters=(8, 8, 8)).save(path)
    with __import__("zipfile").ZipFile(path) as z:
        assert "crop_rule" not in z.read("config.json").decode()  # the file is laid out as v3's
    clf = MaskClassifier(str(path))
    assert clf.spec.crop_rule == "box"
    image = rotated(astronaut_bgr, 25)
    det = detector.detect(image)
    assert np.array_equal(clf.crops(image, det), crop.crop_faces(image, det.boxes, 64, 0.2))


@pytest.mark.parametrize("argv, needle", [
    (["--lr", "0"], "--lr must be in (0, 1]"),
    (["--epochs", "0"], "--epochs at least 1"),
    (["--init", "/nonexistent/v3.keras"], "--init /nonexistent/v3.keras: no such model file"),
])
def test_train_refuses_bad_recipe_flags(data_dir, tmp_path, capsys, argv, needle):
    out = tmp_path / "never.keras"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--cache", str(tmp_path / "c.npz"),
                 *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("livemask: error: ") and needle in err and "\n" not in err
    assert not out.exists() and not any(tmp_path.glob("c*.npz"))


def test_training_crops_of_the_aligned_rule(tmp_path, astronaut_bgr, detector):
    """``build_crops`` keeps, per face, the aligned wide and base crops, the box crop and the landmarks."""
    from livemask.data.train import WIDE, build_crops

    for label, angle in (("with_mask", 20), ("without_mask", -10)):
        (tmp_path / "faces" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "faces" / label / f"x_{label}.png"), rotated(astronaut_bgr, angle))
    crops = build_crops(tmp_path, detector, 64, rule="aligned")
    wide = round(64 * WIDE)
    assert crops.wide.shape == (2, wide, wide, 3) and crops.base.shape == crops.box_base.shape == (2, 64, 64, 3)
    assert crops.aligned.tolist() == [True, True] and crops.fallback.tolist() == ["", ""]
    assert crops.labels.tolist() == [0, 1]
    assert np.abs(crops.landmarks - crop.template(wide, 1.2 * WIDE - 1)).max() < 6
    image = cv2.imread(str(tmp_path / "faces" / "with_mask" / "x_with_mask.png"))
    det = detector.detect(image)
    assert np.array_equal(crops.box_base[0], crop.crop_face(image, det.boxes[0], 64, 0.2))
    assert np.array_equal(crops.base[0], crop.crop_faces(image, det.boxes, 64, 0.2, "aligned", det.landmarks)[0])

"""``livemask train --margin``: the training crops, their cache key, the model's contract and the checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livemask.apps.cli import main
from livemask.models import crop


def _one_face_folder(root, image):
    (root / "faces" / "with_mask").mkdir(parents=True)
    cv2.imwrite(str(root / "faces" / "with_mask" / "x_with_mask.png"), image)
    return root


def test_training_crops_are_cut_at_the_margin_asked_for(tmp_path, astronaut_bgr, detector):
    from livemask.data.train import WIDE, build_crops

    root = _one_face_folder(tmp_path, astronaut_bgr)
    box = detector.detect(astronaut_bgr).boxes[0]
    wide = round(64 * WIDE)
    at = {m: build_crops(root, detector, 64, m) for m in (0.2, 0.32)}
    for m, crops in at.items():
        assert np.array_equal(crops.base[0], crop.crop_face(astronaut_bgr, box, 64, m))
        assert np.array_equal(crops.wide[0], crop.crop_face(astronaut_bgr, box, wide, (1 + m) * WIDE - 1))
    assert not np.array_equal(at[0.2].base, at[0.32].base)  # so the check above can tell the margins apart


def test_each_margin_has_its_own_crop_cache_and_the_default_keeps_its_name(detector):
    from livemask.data.train import crop_signature

    assert crop_signature(detector, 64, "box", crop.DEFAULT_MARGIN) == crop_signature(detector, 64)
    assert crop_signature(detector, 64, "box", 0.32) != crop_signature(detector, 64)


def test_the_margin_is_part_of_the_model_and_cuts_its_crops(tmp_path, astronaut_bgr, detector):
    from livemask.data.train import build_model
    from livemask.models.backends.keras_model import MaskClassifier

    path = tmp_path / "wide.keras"
    build_model(64, 0.32, seed=1, filters=(8, 8, 8)).save(path)
    clf = MaskClassifier(str(path))
    assert clf.spec.crop_margin == 0.32
    det = detector.detect(astronaut_bgr)
    assert np.array_equal(clf.crops(astronaut_bgr, det), crop.crop_faces(astronaut_bgr, det.boxes, 64, 0.32))


@pytest.mark.parametrize("argv, needle", [
    (["--margin", "1.5"], "--margin must be in [0, 1], got 1.5"),
    (["--margin", "-0.1"], "--margin must be in [0, 1], got -0.1"),
    (["--margin", "0.32", "--teacher", "TEACHER"], "crop margin 0.2, the student's is 0.32"),
    (["--teacher", "WIDE_TEACHER"], "crop margin 0.32, the student's is 0.2"),
])
def test_train_refuses_a_bad_margin_and_a_teacher_cut_at_another(tmp_path, astronaut_bgr, capsys, argv, needle):
    from livemask.data.train import build_model

    root = _one_face_folder(tmp_path / "data", astronaut_bgr)
    teachers = {"TEACHER": tmp_path / "t.keras", "WIDE_TEACHER": tmp_path / "t32.keras"}
    build_model(64, 0.2, filters=(8, 8, 8)).save(teachers["TEACHER"])
    build_model(64, 0.32, filters=(8, 8, 8)).save(teachers["WIDE_TEACHER"])
    argv = [str(teachers[a]) if a in teachers else a for a in argv]
    out = tmp_path / "never.keras"
    assert main(["train", "--data", str(root), "--out", str(out), "--cache", str(tmp_path / "c.npz"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("livemask: error: ") and needle in err and "\n" not in err
    assert not out.exists() and not any(tmp_path.glob("c*.npz"))

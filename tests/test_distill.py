"""Distillation: ``livemask train --teacher``'s option checks and a tiny real run of the student's loss."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import MODEL

from livemask.apps.cli import main


@pytest.mark.parametrize("argv, needle", [
    (["--teacher", "/nonexistent/t.keras"], "--teacher /nonexistent/t.keras: no such model file"),
    (["--distill-alpha", "1.5"], "--distill-alpha must be in [0, 1]"),
    (["--distill-temperature", "0.5"], "--distill-temperature in [1, 10]"),
    (["--teacher", "NOTAMODEL"], "cannot load model (not a zip archive"),
    (["--teacher", "TXT"], "a teacher must be a .keras model file"),
])
def test_train_refuses_bad_teacher_options(data_dir, tmp_path, capsys, argv, needle):
    out = tmp_path / "never.keras"
    bad = tmp_path / "teacher.keras"
    bad.write_text("not a model\n")
    txt = tmp_path / "teacher.txt"
    txt.write_text("not a model\n")
    argv = [{"NOTAMODEL": str(bad), "TXT": str(txt)}.get(a, a) for a in argv]
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--cache", str(tmp_path / "c.npz"),
                 *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("livemask: error: ") and needle in err and "\n" not in err
    assert not out.exists() and not any(tmp_path.glob("c*.npz"))


def test_train_refuses_a_teacher_of_other_classes(data_dir, tmp_path, capsys):
    from livemask.data.train import build_model

    teacher = tmp_path / "two.keras"
    build_model(class_names=("mask", "no_mask")).save(teacher)
    out = tmp_path / "never.keras"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--cache", str(tmp_path / "c.npz"),
                 "--teacher", str(teacher)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"livemask: error: --teacher {teacher}: classes ['mask', 'no_mask'], "
                   "expected ['mask', 'no_mask', 'mask_incorrect']")
    assert not out.exists() and not any(tmp_path.glob("c*.npz"))


def test_distillation_settings_are_checked_and_soften_the_teacher():
    from livemask.core.errors import ConfigError
    from livemask.data.train import Distillation

    with pytest.raises(ConfigError, match=r"Distillation.alpha: expected a number in \[0, 1\]"):
        Distillation(alpha=2.0)
    probs = np.array([[0.9, 0.09, 0.01]])
    soft = Distillation(temperature=3.0).soft_labels(probs)
    assert soft.argmax() == 0 and soft.max() < 0.9 and soft.min() > 0.01 and abs(soft.sum() - 1) < 1e-6
    assert np.allclose(Distillation(temperature=1.0).soft_labels(probs), probs, atol=1e-6)


def _face_crops(data_dir, per_class: int = 16) -> np.ndarray:
    """Real face photos, the first few of each class folder, as the wide crops training reads (96 px, BGR)."""
    from livemask.data.train import WIDE

    wide = round(64 * WIDE)
    out = []
    for label in ("with_mask", "without_mask", "mask_weared_incorrect"):
        for path in sorted((data_dir / "faces" / label).glob("*.jpg"))[:per_class]:
            out.append(cv2.resize(cv2.imread(str(path)), (wide, wide), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def test_student_learns_the_teachers_soft_labels_not_only_the_hard_ones(data_dir):
    """The teacher is the shipped model with its classes rolled by one (its answers differ from the hard labels
    on every face); two students start from the shipped weights and train on the same faces and the same hard
    labels (the shipped model's own answers): one on the soft labels only (alpha 1), one on the hard labels only
    (alpha 0). Only a loss that reads the soft labels moves the first student to the teacher's answers."""
    import keras

    from livemask.data.train import Distillation, fit
    from livemask.models.backends.keras_model import MaskClassifier, load_keras_model

    wide = _face_crops(data_dir)
    base = wide[:, 16:80, 16:80]  # the inference crop inside the wide one (WIDE = 1.5)
    shipped = MaskClassifier(str(MODEL)).predict_crops(base).probabilities
    hard = shipped.argmax(1)
    teacher = shipped[:, [2, 0, 1]]  # class k's probability moves to class k + 1
    x = np.ascontiguousarray(base[..., ::-1], dtype=np.float32)
    agreement = {}
    for alpha in (1.0, 0.0):
        keras.utils.set_random_seed(0)
        student = load_keras_model(str(MODEL))
        d = Distillation(alpha=alpha, temperature=2.0)
        fit(student, wide, hard, np.ones(len(hard), np.float32), size=64, epochs=10, batch=16, seed=0, lr=3e-3,
            soft=d.soft_labels(teacher), distill=d)
        agreement[alpha] = float((student.predict(x, verbose=0).argmax(1) == teacher.argmax(1)).mean())
    print("agreement with the teacher:", agreement)
    assert agreement[1.0] > 0.6, agreement  # chance: 1/3
    # the hard-label student keeps (mostly) its own answers; how far it drifts from them at this learning rate
    # varies from machine to machine (0.375 of the teacher's answers on one CI run), so it is compared with the
    # soft-label student rather than held to a fixed bound
    assert agreement[1.0] - agreement[0.0] > 0.3, agreement

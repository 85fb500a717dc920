"""Occluder augmentation (livemask.data.occluders): shape, dtype and label kept, the intended region
changed and the rest left alone, the same seed giving the same copies. Real face crops (the astronaut,
aligned by CenterFace's landmarks)."""

from __future__ import annotations

import numpy as np
import pytest

from livemask.data import occluders
from livemask.models import crop

SIZE = 96


@pytest.fixture(scope="module")
def face(astronaut_bgr, detector):
    """(aligned crop, its landmarks in crop pixels), at the wide crop size training uses."""
    det = detector.detect(astronaut_bgr)
    img, m, aligned = crop.crop_face_by_rule(astronaut_bgr, det.boxes[0], det.landmarks[0], SIZE, 0.8, "aligned")
    assert aligned
    lm = det.landmarks[0].astype(np.float64) @ m[:, :2].T + m[:, 2]
    return img, lm


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > 12


def regions(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the lower face (nose to chin, between the eyes' outer sides) and of the forehead band."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    d = lm[1, 0] - lm[0, 0]
    lower = (yy >= lm[2, 1] - 0.1 * d) & (yy <= lm[3:, 1].mean() + 0.6 * d) & (xx >= lm[0, 0] - 0.3 * d) & (
        xx <= lm[1, 0] + 0.3 * d)
    forehead = (yy < lm[:2, 1].mean() - 0.6 * d) & (xx >= lm[0, 0]) & (xx <= lm[1, 0])
    return lower, forehead


@pytest.mark.parametrize("kind", ["hand", "phone", "cup", "scarf", "hair", "valve"])
def test_occluder_covers_the_lower_face_only(face, kind):
    img, lm = face
    rng = np.random.default_rng(5)
    fn = {"hand": occluders.hand, "phone": occluders.phone, "cup": occluders.cup, "scarf": occluders.scarf,
          "hair": occluders.hair, "valve": occluders.valve}[kind]
    out = fn(img, lm, rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = changed(out, img)
    lower, forehead = regions(lm)
    assert diff[lower].mean() > 0.04, kind  # something is drawn where the mouth and nose are
    assert diff[forehead].mean() < 0.02, kind  # the forehead is left alone
    if kind == "scarf":  # from the lower lip down, as wide as the crop: nothing above the mouth
        assert diff[: int(lm[3:, 1].mean()) - 2].mean() < 0.01
    else:
        assert diff[lower].mean() > 3 * diff[~lower].mean(), kind


def test_recolouring_changes_the_mask_colour_in_the_lower_face(face):
    """A masked face is made by drawing a light-blue mask on the real face (as tests/clipmaker.py does);
    recolouring changes the mask's pixels and keeps its folds' shading."""
    import cv2

    img, lm = face
    masked = img.copy()
    poly = np.array([[lm[0, 0] - 8, lm[2, 1] - 6], [lm[1, 0] + 8, lm[2, 1] - 6],
                     [lm[4, 0] + 10, lm[4, 1] + 16], [lm[3, 0] - 10, lm[3, 1] + 16]], np.int32)
    cv2.fillPoly(masked, [poly], (228, 208, 172))
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [poly], 1)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)
    region = occluders.mask_region(masked, lm)
    assert region[inside].mean() > 0.8 and region[~inside].mean() < 0.05
    for pattern in (False, True):
        out = occluders.recolour(masked, lm, np.random.default_rng(3), pattern=pattern)
        assert out.shape == masked.shape and out.dtype == np.uint8
        diff = changed(out, masked)
        assert diff[inside].mean() > 0.8
        assert diff[~inside].mean() < 0.05


def test_copies_keep_shape_labels_and_repeat_with_the_seed(face):
    img, lm = face
    crops = np.stack([img] * 9)
    marks = np.stack([lm] * 8 + [np.full((5, 2), np.nan)]).astype(np.float32)  # one face without landmarks
    labels = np.array([0, 1, 2] * 3)
    typical = crop.template(SIZE, 0.8)
    a, kinds = occluders.occluded_copies(crops, marks, labels, typical, seed=7)
    b, kinds_b = occluders.occluded_copies(crops, marks, labels, typical, seed=7)
    c, _ = occluders.occluded_copies(crops, marks, labels, typical, seed=8)
    assert a.shape == crops.shape and a.dtype == np.uint8 and len(kinds) == len(crops)
    assert np.array_equal(a, b) and kinds.tolist() == kinds_b.tolist()
    assert not np.array_equal(a, c)
    assert all(k in occluders.NO_MASK_KINDS for k in kinds[labels == 1])
    assert all(k in occluders.MASK_KINDS for k in kinds[labels == 0])
    assert all(k in occluders.INCORRECT_KINDS for k in kinds[labels == 2])
    assert np.array_equal(crops[0], img)  # the input is never modified

"""Box geometry shared by the tracker and the evaluation: overlap (IoU) and matching.

Boxes are ``(N, 4)`` arrays of x1, y1, x2, y2 in pixels.
"""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), as (N, M) float32.

    Computed in float64; a box with no area overlaps nothing.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) with IoU >= threshold, best pair first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r, used_c = set(), set()
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


def match_by_score(truth: np.ndarray, pred: np.ndarray, pred_scores: np.ndarray, threshold: float) -> np.ndarray:
    """Evaluation matching: predictions in order of score each take the free truth box they overlap most
    (IoU >= threshold). Returns, for each truth box, the index of its prediction or -1."""
    matched = np.full(len(truth), -1, np.int64)
    if not len(truth) or not len(pred):
        return matched
    ious = iou_matrix(truth, pred)
    for j in np.argsort(-np.asarray(pred_scores), kind="stable"):
        cand = np.where((matched < 0) & (ious[:, j] >= threshold))[0]
        if len(cand):
            matched[cand[np.argmax(ious[cand, j])]] = j
    return matched

"""Occlusion sensitivity (Zeiler & Fergus, 2014) on the log-odds of the target class.

A square patch is filled (with the model's mid-grey or a blurred copy, see
:mod:`livemask.explain.base`) at every stride step over the crop, and the drop of the
target's log-odds is recorded; a pixel gets the mean drop of the patches covering it.
Patches may overlap (stride < patch), which gives a finer map than the patch size alone.
The last row and column of patches touch the far edges. All occluded copies of all faces
go through the model in chunks of one compiled call.
"""

from __future__ import annotations

import numpy as np

from livemask.explain.base import Explainer
from livemask.explain.scores import log_odds

MAX_COPIES = 1024  # occluded copies held in memory at once (about 50 MB at 64 px)


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Top (or left) edges of the patches along one side; the last one touches the far edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


class Occlusion(Explainer):
    """``patch_fraction`` / ``stride_fraction``: patch side and step as fractions of the crop side (their
    range is checked at config load, :class:`~livemask.explain.suite.ExplainSuite`)."""

    method = "occlusion"

    def __init__(self, classifier, patch_fraction: float = 0.125, stride_fraction: float = 0.125, **kwargs):
        super().__init__(classifier, **kwargs)
        s = self.size
        self.patch = max(1, round(s * patch_fraction))
        self.stride = max(1, round(s * stride_fraction))
        starts = patch_starts(s, self.patch, self.stride)
        self.positions = [(y, x) for y in starts for x in starts]
        p = self.patch
        masks = np.zeros((len(self.positions), s, s, 1), np.float32)
        for k, (y, x) in enumerate(self.positions):
            masks[k, y:y + p, x:x + p] = 1.0
        self.masks = masks  # (P, S, S, 1): 1 where patch k is filled
        self._coverage = np.maximum(masks[..., 0].sum(axis=0), 1.0)

    def occluded_copies(self, x: np.ndarray, fill: np.ndarray) -> np.ndarray:
        """(N * P, S, S, 3): for each face every patch position filled, face-major."""
        m = self.masks[None]
        copies = x[:, None] * (1.0 - m) + fill[:, None] * m
        return copies.reshape(-1, self.size, self.size, 3)

    def _raw_maps(self, x, targets, logits):
        n, s, p = len(x), self.size, len(self.positions)
        out = np.zeros((n, s, s), np.float32)
        base = log_odds(logits, targets)
        per_chunk = max(1, MAX_COPIES // p)  # bounded memory for many faces
        for start in range(0, n, per_chunk):
            xs, ts = x[start:start + per_chunk], targets[start:start + per_chunk]
            m = len(xs)
            scores = self.scorer.scores(self.occluded_copies(xs, self.fill_values(xs)), np.repeat(ts, p))
            drop = base[start:start + m, None] - scores.reshape(m, p)  # (m, P) log-odds lost per patch
            out[start:start + m] = np.einsum("np,pyx->nyx", drop, self.masks[..., 0]) / self._coverage
        return out

"""Deletion and insertion curves (Petsiuk et al., 2018) on the target's log-odds.

For one face, its map ranks the crop's pixels from most to least important. The
*deletion* curve fills the top fraction ``f`` of that ranking with the baseline (the
explainer's fill: the model's mid-grey, or a blurred copy of the crop) and records the
target's log-odds (:mod:`livemask.explain.scores`) at ``steps + 1`` evenly spaced
fractions 0..1; the *insertion* curve starts from the all-baseline image and restores the
top fraction ``f``. A random ranking gives the reference curves. A faithful map makes the
deletion curve fall faster than random (smaller area) and the insertion curve rise faster
(larger area).

Normalisation. Raw log-odds are not comparable between faces, and the score of the
baseline is not always below the crop's (the grey image may itself look like the class
being explained). Each curve is therefore mapped through

    c = (s - lo) / (s0 - lo),   lo = min(s_base, s0 - MIN_DROP)

where ``s0`` is the unoccluded crop's score and ``s_base`` the fully deleted image's. So 1
is the unoccluded score and 0 the baseline's: deletion runs from 1 to 0 and insertion from
0 to 1, and an area is the share of the way from baseline to crop held on average along
the curve. Points are clipped to [0, 1]: a copy that scores below the baseline has lost all
of the evidence, one that scores above the crop has all of it, so every area lies in [0, 1]
like Petsiuk's areas under the probability. When deleting everything lowers the score by
less than ``MIN_DROP`` log-odds (the baseline also supports the class), 0 is put
``MIN_DROP`` below the crop's score instead, so the unit never shrinks to nothing and never
flips sign; such a face's curves end at or above 0. ``ratio`` = deletion AUC / random
deletion AUC (below 1: the map found what the prediction rests on better than chance). Areas
are trapezoids over ``f``.

The random ranking shuffles blocks of ``RANDOM_CELL`` x ``RANDOM_CELL`` pixels rather than
single pixels, so the reference is a random map at the resolution of the maps being tested,
not salt-and-pepper noise (which the network reacts to in its own way). Random insertion
restores in the reverse of the random deletion order: that passes through the same images
as random deletion, so one set of model calls gives both reference curves (and the two
random areas are equal; for independent random orders they are equal in expectation).
Every face's random order and tie-breaking is seeded by the face's own pixels, so a score
does not depend on the batch it came in.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.types import check_array

MIN_DROP = 1.0  # log-odds: the smallest baseline-to-crop distance used as the unit (a factor e in odds)
RANDOM_CELL = 4  # pixels: side of the blocks the random reference order shuffles
EPS = 1e-6
FIELDS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "ratio")


def auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area (N,) of curves (N, K+1) sampled at K+1 evenly spaced points of [0, 1]."""
    if curves.shape[1] < 2:
        return np.zeros((len(curves),), np.float32)
    dx = 1.0 / (curves.shape[1] - 1)
    return ((curves[:, 1:] + curves[:, :-1]).sum(axis=1) * dx / 2).astype(np.float32)


@dataclass(frozen=True)
class Faithfulness:
    """Normalised deletion / insertion curves (N, K+1) for N maps, with their random references.

    ``unoccluded``, ``baseline``: the raw log-odds (N,) of the crop and of the fully deleted
    image; ``zero``: the log-odds that maps to 0 on the curves (see the module doc)."""

    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    unoccluded: np.ndarray
    baseline: np.ndarray
    zero: np.ndarray

    def __post_init__(self) -> None:
        check_array("Faithfulness.deletion", self.deletion, (None, None), np.float32)
        n = len(self.deletion)
        for name in ("insertion", "random_deletion", "random_insertion"):
            check_array(f"Faithfulness.{name}", getattr(self, name), self.deletion.shape, np.float32)
        for name in ("unoccluded", "baseline", "zero"):
            check_array(f"Faithfulness.{name}", getattr(self, name), (n,), np.float32)

    def __len__(self) -> int:
        return len(self.deletion)

    @property
    def deletion_auc(self) -> np.ndarray:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> np.ndarray:
        return auc(self.insertion)

    @property
    def random_deletion_auc(self) -> np.ndarray:
        return auc(self.random_deletion)

    @property
    def random_insertion_auc(self) -> np.ndarray:
        return auc(self.random_insertion)

    @property
    def ratio(self) -> np.ndarray:
        """Deletion AUC over random deletion AUC: lower is better, below 1 beats a random map."""
        return (self.deletion_auc / np.maximum(self.random_deletion_auc, EPS)).astype(np.float32)

    def record(self, i: int, digits: int = 4) -> dict[str, float]:
        """The five figures of face ``i`` for JSON."""
        return {name: round(float(getattr(self, name)[i]), digits) for name in FIELDS}

    def __getitem__(self, index) -> Faithfulness:
        index = np.atleast_1d(np.arange(len(self))[index])
        return Faithfulness(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @staticmethod
    def empty(steps: int) -> Faithfulness:
        c, v = np.zeros((0, steps + 1), np.float32), np.zeros((0,), np.float32)
        return Faithfulness(c, c, c, c, v, v, v)


def _ranks(order: np.ndarray) -> np.ndarray:
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    return rank


def _orders(x: np.ndarray, importance: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank per pixel (S*S,) of the map's order (ties broken at random) and of a random block order."""
    s = importance.shape[0]
    rng = np.random.default_rng([seed, zlib.crc32(x.tobytes())])
    shuffled = rng.permutation(s * s)
    ranked = shuffled[np.argsort(-importance.reshape(-1)[shuffled], kind="stable")]
    cells = -(-s // RANDOM_CELL)
    cell_rank = rng.permutation(cells * cells).reshape(cells, cells)
    block = np.kron(cell_rank, np.ones((RANDOM_CELL, RANDOM_CELL), np.int64))[:s, :s].reshape(-1)
    random_order = np.lexsort((rng.random(s * s), block))  # blocks in random order, pixels within at random
    return _ranks(ranked), _ranks(random_order)


def curves(score: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, fill: np.ndarray,
           importance: np.ndarray, targets: np.ndarray, steps: int, seed: int = 0) -> Faithfulness:
    """Deletion / insertion curves for model inputs ``x`` (N, S, S, 3), their baselines ``fill``
    (same shape), maps ``importance`` (N, S, S) and class indices ``targets`` (N,).

    ``score(copies, targets)`` returns the log-odds (M,) of copies (M, S, S, 3). Per face this
    makes ``3 * steps - 1`` copies (both end points are shared by all four curves)."""
    n, s = len(x), x.shape[1]
    if steps < 1:
        raise LivemaskError(f"faithfulness needs at least 1 step, got {steps}")
    if n == 0:
        return Faithfulness.empty(steps)
    k = steps
    counts = np.round(np.linspace(0, s * s, k + 1)).astype(np.int64)[1:-1]  # interior points
    per_face = 2 + 3 * (k - 1)
    copies = np.empty((n, per_face, s, s, 3), np.float32)
    for i in range(n):
        ranked, random = _orders(x[i], importance[i], seed)
        ranked, random = ranked.reshape(s, s, 1), random.reshape(s, s, 1)
        copies[i, 0], copies[i, 1] = x[i], fill[i]
        for j, c in enumerate(counts):
            top = ranked < c
            copies[i, 2 + j] = np.where(top, fill[i], x[i])  # deletion: the top c pixels gone
            copies[i, 1 + k + j] = np.where(top, x[i], fill[i])  # insertion: only the top c restored
            copies[i, 2 * k + j] = np.where(random < c, fill[i], x[i])  # random deletion
    raw = score(copies.reshape(-1, s, s, 3), np.repeat(targets, per_face)).reshape(n, per_face).astype(np.float64)
    s0, sb = raw[:, 0], raw[:, 1]
    zero = np.minimum(sb, s0 - MIN_DROP)
    norm = np.clip((raw - zero[:, None]) / (s0 - zero)[:, None], 0.0, 1.0)
    one, base = norm[:, :1], norm[:, 1:2]
    deletion = np.concatenate([one, norm[:, 2:1 + k], base], axis=1)
    insertion = np.concatenate([base, norm[:, 1 + k:2 * k], one], axis=1)
    random_deletion = np.concatenate([one, norm[:, 2 * k:3 * k - 1], base], axis=1)
    random_insertion = random_deletion[:, ::-1]  # restoring in the reverse random order: the same images

    def f32(a):
        return np.ascontiguousarray(a, np.float32)

    return Faithfulness(f32(deletion), f32(insertion), f32(random_deletion), f32(random_insertion),
                        f32(s0), f32(sb), f32(zero))

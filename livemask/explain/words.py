"""An explanation map in words: where the map's mass lies on the face, and whether to trust the map.

Every surface that shows a map (``explain --json``'s ``summary`` field, the window's panel, the
page) takes its words from :func:`summarise`, so they say the same thing.

Where. The crop is cut into face regions (:data:`REGIONS`: forehead, eyes, nose, mouth, chin, and
"around the face" for hair, ears, neck and background) as horizontal bands placed by the face's
five CenterFace landmarks (eyes, nose tip, mouth corners; the nose and mouth bands' sides are the
cheeks) brought into crop pixels by
:func:`crop_landmarks`. A face without landmarks (another detector, a tracked face the detector
lost) uses :data:`TYPICAL_LANDMARKS`, fixed fractions of the crop. Each region's share is the
sum of the map over its pixels divided by the whole map's sum; the sentence names the one or two
regions that hold most of it. Bands are horizontal: on a strongly tilted face they are only
approximate.

Trust. The verdict reads the deletion ratio of :mod:`livemask.explain.faithfulness` (deletion
area of the map's order over that of a random order) and the insertion areas: below
:data:`GOOD_RATIO` the map explains the decision well; a ratio of 1 or more *and* an insertion
area no larger than random's means the map does no better than a random one (poor, with a
warning); anything between is "only in part" (a ratio of 1 or more with a better-than-random
insertion is common for Grad-CAM with the blur fill: its top regions bring the answer back fast,
but removing them first does not take it away faster than random).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livemask.models.crop import landmarks_in_crops

REGIONS = ("forehead", "eyes", "nose", "mouth", "chin", "cheeks", "around the face")
# median CenterFace landmarks as fractions of the crop side (x, y) at crop margin 0.2: left eye, right eye,
# nose tip, left and right mouth corners; 284 faces of ../shared/data/faces (2026-12-06, tools/first-hour)
TYPICAL_LANDMARKS = np.array([[0.345, 0.422], [0.659, 0.412], [0.503, 0.585], [0.375, 0.716], [0.636, 0.707]],
                             np.float32)
GOOD_RATIO = 0.8  # deletion ratio below which a map "explains the decision well"
MOST = 0.5  # the named regions hold at least this share of the map (two regions at most)

TRUST_GOOD, TRUST_WEAK, TRUST_POOR, TRUST_UNSCORED = "good", "weak", "poor", "unscored"
VERDICTS = {
    TRUST_GOOD: ("Explains the decision well",
                 "removing its top regions first changes the answer faster than removing random regions."),
    TRUST_WEAK: ("Explains the decision only in part",
                 "removing its top regions first changes the answer only slightly faster than removing "
                 "random regions."),
    TRUST_POOR: ("Explains the decision poorly",
                 "removing its top regions first changes the answer slower than removing random regions."),
    TRUST_UNSCORED: ("Not scored", "faithfulness scoring is switched off (explain.faithfulness_steps: 0)."),
}
# the "only in part" tail when removing is no faster than random but restoring the top regions first is
WEAK_BY_INSERTION = ("removing its top regions first changes the answer no faster than removing random regions, "
                     "but restoring them first brings the answer back faster than restoring random ones.")
WARNING_SHORT = "Warning: this map does worse than a random one"  # the panel's tiles have room for this part
WARNING = WARNING_SHORT + "; do not read it as the reason."


def crop_landmarks(detections, size: int, margin: float, rule: str = "box") -> np.ndarray:
    """The detections' landmarks (N, 5, 2) in pixels of the (size x size) crops cut by
    :mod:`livemask.models.crop`'s ``rule`` with ``margin`` (NaN where the detector gave none)."""
    return landmarks_in_crops(detections.boxes, detections.landmarks, size, margin, rule)


def region_labels(size: int, landmarks: np.ndarray | None = None) -> np.ndarray:
    """(size, size) int array: the index into :data:`REGIONS` of every crop pixel, from the face's
    landmarks (5, 2) in crop pixels, or the typical ones when they are missing or not finite."""
    lm = None if landmarks is None else np.asarray(landmarks, np.float32)
    if lm is None or lm.shape != (5, 2) or not np.isfinite(lm).all():
        lm = TYPICAL_LANDMARKS * size
    eye_y, nose_y, mouth_y = lm[:2, 1].mean(), lm[2, 1], lm[3:, 1].mean()
    upper = max(nose_y - eye_y, size * 0.05)  # eyes to nose tip
    lower = max(mouth_y - nose_y, size * 0.05)  # nose tip to mouth
    eye_gap = max(abs(lm[1, 0] - lm[0, 0]), size * 0.1)
    x0, x1 = lm[:, 0].min() - 0.55 * eye_gap, lm[:, 0].max() + 0.55 * eye_gap
    # lower edges of the bands forehead, eyes, nose, mouth, chin (the forehead starts 1.6 eye-nose gaps up)
    top = eye_y - 1.6 * upper
    edges = [eye_y - 0.45 * upper, eye_y + 0.5 * upper, nose_y + 0.5 * lower, mouth_y + 0.6 * lower,
             mouth_y + 1.6 * lower]
    ys = np.arange(size, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(size, dtype=np.float32)[None, :] + 0.5
    labels = np.searchsorted(np.array(edges, np.float32), ys, side="right").repeat(size, axis=1)
    outside = (ys < top) | (ys >= edges[-1]) | (xs < x0) | (xs >= x1)
    nose, mouth, cheeks = REGIONS.index("nose"), REGIONS.index("mouth"), REGIONS.index("cheeks")
    beside_nose = (xs < lm[2, 0] - 0.4 * eye_gap) | (xs >= lm[2, 0] + 0.4 * eye_gap)
    beside_mouth = (xs < lm[3, 0] - 0.15 * eye_gap) | (xs >= lm[4, 0] + 0.15 * eye_gap)
    labels[((labels == nose) & beside_nose) | ((labels == mouth) & beside_mouth)] = cheeks
    labels[np.broadcast_to(outside, labels.shape)] = REGIONS.index("around the face")
    return labels.astype(np.int64)


def region_shares(heat: np.ndarray, landmarks: np.ndarray | None = None) -> dict[str, float]:
    """Share of the map ``heat`` (S, S), >= 0, held by each region (they sum to 1; all 0 for an empty map)."""
    heat = np.maximum(np.asarray(heat, np.float64), 0.0)
    labels = region_labels(heat.shape[0], landmarks)
    sums = np.bincount(labels.reshape(-1), weights=heat.reshape(-1), minlength=len(REGIONS))
    total = sums.sum()
    shares = sums / total if total > 0 else np.zeros_like(sums)
    return {name: round(float(v), 3) for name, v in zip(REGIONS, shares, strict=True)}


def _phrase(name: str) -> str:
    return "the area around the face" if name == "around the face" else f"the {name}"


def looked_at(shares: dict[str, float]) -> str:
    """One sentence: the one or two regions that hold most of the map."""
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] <= 0:
        return "The map is empty: no part of the face raised the score."
    named = [ranked[0]]
    if ranked[0][1] < MOST and len(ranked) > 1 and ranked[1][1] > 0:
        named.append(ranked[1])
    held = sum(v for _, v in named)
    where = " and ".join(_phrase(n) for n, _ in named)
    if held < MOST:
        return f"The map is spread over the face; most of it on {where} ({held:.0%} of the map)."
    return f"The model looked mostly at {where} ({held:.0%} of the map)."


def trust_of(ratio: float | None, insertion_gain: float = 0.0) -> str:
    """good / weak / poor / unscored from the deletion ratio and the insertion area minus random's."""
    if ratio is None or not np.isfinite(ratio):
        return TRUST_UNSCORED
    if ratio < GOOD_RATIO:
        return TRUST_GOOD
    if ratio < 1.0 or insertion_gain > 0:
        return TRUST_WEAK
    return TRUST_POOR


@dataclass(frozen=True)
class MapSummary:
    """One map in words. ``looked_at``: where its mass lies; ``verdict``: the trust sentence (``headline``
    is its part before the colon); ``trust``: good / weak / poor / unscored; ``warning``: set when the map
    does worse than random; ``details``: the figures in one line; ``regions``: each region's share."""

    looked_at: str
    trust: str
    details: str
    regions: dict[str, float] = field(default_factory=dict)
    ratio: float = float("nan")  # deletion ratio (NaN: not scored)

    @property
    def headline(self) -> str:
        return VERDICTS[self.trust][0] + "."

    @property
    def verdict(self) -> str:
        head, tail = VERDICTS[self.trust]
        if self.trust == TRUST_WEAK and self.ratio >= 1.0:
            tail = WEAK_BY_INSERTION
        return f"{head}: {tail}"

    @property
    def warning(self) -> str | None:
        return WARNING if self.trust == TRUST_POOR else None

    def record(self) -> dict:
        """The ``summary`` field of ``explain --json`` and of the page's API."""
        return {"looked_at": self.looked_at, "verdict": self.verdict, "trust": self.trust,
                "warning": self.warning, "details": self.details, "regions": dict(self.regions)}


def summarise(explanations, index: int, landmarks: np.ndarray | None = None) -> MapSummary:
    """Words for face ``index`` of an :class:`~livemask.explain.base.Explanations`; ``landmarks``
    (5, 2) in crop pixels (see :func:`crop_landmarks`) or None."""
    shares = region_shares(explanations.maps[index], landmarks)
    f = explanations.faithfulness
    if f is None:
        return MapSummary(looked_at(shares), TRUST_UNSCORED, "no faithfulness score", shares)
    ratio = float(f.ratio[index])
    details = (f"deletion area {f.deletion_auc[index]:.2f} vs random {f.random_deletion_auc[index]:.2f} "
               f"(ratio {ratio:.2f}, lower is better); insertion area {f.insertion_auc[index]:.2f} "
               f"vs random {f.random_insertion_auc[index]:.2f} (higher is better)")
    gain = float(f.insertion_auc[index] - f.random_insertion_auc[index])
    return MapSummary(looked_at(shares), trust_of(ratio, gain), details, shares, ratio)


def summaries(explanations, landmarks: np.ndarray | None = None) -> list[MapSummary]:
    """:func:`summarise` for every face; ``landmarks`` (N, 5, 2) in crop pixels or None."""
    return [summarise(explanations, i, None if landmarks is None else landmarks[i]) for i in range(len(explanations))]

"""What every explainer shares: inputs, targets, the score, timing, map normalising, scoring.

An :class:`Explainer` turns BGR face crops into the model's own input with
:meth:`MaskClassifier.prepare` (the colour order the model file states), runs the model
once through a compiled call that returns the *logits* (:class:`LogitScorer`), resolves the
class to explain by *name* through the class order stored in the model (by default each
face's predicted class), and hands the inputs and class indices to the method's one hook,
:meth:`Explainer._raw_maps`. It then brings the raw map to crop size, clips negative
evidence, normalises it to [0, 1] with an epsilon (an all-zero map stays zero), and scores
it with deletion and insertion curves (:mod:`livemask.explain.faithfulness`).

Every method explains and is measured on the same score, the target's log-odds
(:mod:`livemask.explain.scores`); the probability is what the verdict shows.

Occluded and deleted pixels are filled *in the model's input space*: ``grey`` uses
``spec.pixel_for(0.0)``, the input value that the model's own preprocessing maps to the
middle (0) of the network's [-1, 1] range; ``blur`` uses a Gaussian-blurred copy of the
crop (sigma = ``blur_sigma_fraction`` of the crop side); ``skin`` uses one flat colour per face,
the median of its forehead band (:data:`SKIN_BAND`), a stand-in for bare skin: a patch of mask
filled with it reads as no mask, where a blurred mask still reads as a mask.

The caller's model is never changed: the explainers build separate functional models that
share its layers and weights, and nothing sets activations, trainability or weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from livemask.core.errors import ConfigError, LivemaskError
from livemask.core.types import check_array
from livemask.explain import faithfulness as faith
from livemask.explain.faithfulness import Faithfulness
from livemask.explain.scores import LogitScorer, log_odds

log = logging.getLogger(__name__)

EPS = 1e-12  # keeps an all-zero map at 0 (not NaN) without flattening small real maps
FILLS = ("grey", "blur", "skin")
# the skin fill's sample, as fractions of the crop side: rows 16-36% (CenterFace's eyes sit at 41% of
# the crop's height, the nose tip at 58%: the band is forehead and brows, above any mask worn or pushed
# up), columns 30-70% (clear of the hair and background at the sides)
SKIN_BAND = ((0.16, 0.36), (0.30, 0.70))
MAX_FACES_PER_SCORE = 16  # faces whose faithfulness copies are built at once (about 35 MB at 64 px)

# a target: None (each face's predicted class), a class name for every face, one name per
# face, or a callable (probabilities (N, C), class_names) -> names
Targets = None | str | Sequence[str] | Callable[[np.ndarray, tuple[str, ...]], Sequence[str]]


def normalise(maps: np.ndarray) -> np.ndarray:
    """Clip negative evidence and scale each map (N, H, W) to [0, 1]; an all-zero map stays 0."""
    pos = np.maximum(np.asarray(maps, np.float32), 0.0)
    peak = pos.reshape(len(pos), -1).max(axis=1) if pos.size else np.zeros((len(pos),), np.float32)
    return (pos / (peak[:, None, None] + EPS)).astype(np.float32)


def resize_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of each map (N, h, w) to (N, size, size) float32."""
    maps = np.asarray(maps, np.float32)
    if maps.shape[1:] == (size, size):
        return maps.copy()
    out = np.zeros((len(maps), size, size), np.float32)
    for i, m in enumerate(maps):
        out[i] = cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)
    return out


def resolve_targets(targets: Targets, probabilities: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Class indices (N,) to explain, from names resolved through the model's class order."""
    n = len(probabilities)
    if targets is None:
        return probabilities.argmax(axis=1).astype(np.int64) if n else np.zeros((0,), np.int64)
    if callable(targets):
        targets = targets(probabilities, class_names)
    names = [targets] * n if isinstance(targets, str) else list(targets)
    if len(names) != n:
        raise ConfigError(f"explain targets: got {len(names)} class names for {n} faces")
    out = np.zeros((n,), np.int64)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ConfigError(f"explain targets: expected class names {list(class_names)}, got {name!r}")
        if name not in class_names:
            raise ConfigError(f"explain target {name!r} is not a class of the model ({', '.join(class_names)})")
        out[i] = class_names.index(name)
    return out


@dataclass(frozen=True)
class Explanations:
    """Maps for N faces by one method.

    maps: (N, S, S) float32 in [0, 1] at crop size; raw: (N, h, w) float32, the method's own
    map before clipping and normalising (Grad-CAM: the weighted feature-map sum at the layer's
    resolution; occlusion: mean log-odds drop per pixel); targets: (N,) the explained class
    index into ``class_names``; probabilities: (N, C) model output for the unchanged crops;
    log_odds: (N,) the explained score of the unchanged crops; ms_per_face: time for the map
    (prediction + method), per face of the batch.
    """

    method: str
    maps: np.ndarray
    raw: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray
    log_odds: np.ndarray
    class_names: tuple[str, ...]
    ms_per_face: float
    faithfulness: Faithfulness | None = None
    faithfulness_ms_per_face: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.maps) if isinstance(self.maps, np.ndarray) else -1
        check_array("Explanations.maps", self.maps, (None, None, None), np.float32)
        check_array("Explanations.raw", self.raw, (n, None, None), np.float32)
        check_array("Explanations.targets", self.targets, (n,), np.int64)
        check_array("Explanations.probabilities", self.probabilities, (n, len(self.class_names)), np.float32)
        check_array("Explanations.log_odds", self.log_odds, (n,), np.float32)
        if self.faithfulness is not None and len(self.faithfulness) != n:
            raise LivemaskError(f"Explanations: {n} maps but {len(self.faithfulness)} faithfulness rows")

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, index) -> Explanations:
        index = np.atleast_1d(np.arange(len(self))[index])
        faithful = self.faithfulness[index] if self.faithfulness is not None else None
        return Explanations(self.method, self.maps[index], self.raw[index], self.targets[index],
                            self.probabilities[index], self.log_odds[index], self.class_names, self.ms_per_face,
                            faithful, self.faithfulness_ms_per_face)

    @property
    def target_names(self) -> list[str]:
        return [self.class_names[i] for i in self.targets]


class Explainer:
    """Base explainer: a method overrides :meth:`_raw_maps` only.

    ``fill``: ``grey``, ``blur`` or ``skin`` (see module doc); ``blur_sigma_fraction``: the blur's sigma
    as a fraction of the crop side; ``faithfulness_steps``: points of the deletion and
    insertion curves (0 switches scoring off); ``seed``: the random reference order and
    tie-breaking (mixed with each face's pixels); ``scorer``: a :class:`LogitScorer` of the same
    classifier to share (explainers of one suite trace the logits call once).
    """

    method = "base"

    def __init__(self, classifier, fill: str = "blur", blur_sigma_fraction: float = 0.0625,
                 faithfulness_steps: int = 12, seed: int = 0, scorer: LogitScorer | None = None):
        self.classifier = classifier
        self.model = classifier.model
        self.spec = classifier.spec
        self.size = self.spec.input_size
        self.fill = fill
        self.blur_sigma = max(0.5, self.size * float(blur_sigma_fraction))
        self.faithfulness_steps = int(faithfulness_steps)
        self.seed = int(seed)
        self.scorer = scorer if scorer is not None else LogitScorer(classifier)  # may be shared

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    # -- the hook -------------------------------------------------------------------------
    def _raw_maps(self, x: np.ndarray, targets: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Raw maps (N, h, w) for model inputs ``x`` (N, S, S, 3), class indices ``targets`` (N,)
        and the model's logits (N, C) for ``x``; positive values are evidence for the target."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------
    def fill_values(self, x: np.ndarray) -> np.ndarray:
        """What occluded / deleted pixels become, per input (N, S, S, 3), in the model's input space."""
        if self.fill == "grey":
            return np.full_like(x, self.spec.pixel_for(0.0))
        if not len(x):
            return x.copy()
        if self.fill == "skin":
            s = x.shape[1]
            (r0, r1), (c0, c1) = SKIN_BAND
            band = x[:, round(s * r0):round(s * r1), round(s * c0):round(s * c1)].reshape(len(x), -1, x.shape[-1])
            return np.broadcast_to(np.median(band, axis=1)[:, None, None, :], x.shape).astype(x.dtype)
        return np.stack([cv2.GaussianBlur(img, (0, 0), sigmaX=self.blur_sigma, borderType=cv2.BORDER_REFLECT)
                         for img in x])

    def explain(self, crops_bgr: np.ndarray, targets: Targets = None, faithfulness: bool = True) -> Explanations:
        """Maps for BGR uint8 crops (N, S, S, 3) as cut by ``classifier.crops``."""
        return self.explain_prepared(self.classifier.prepare(crops_bgr), targets, faithfulness)

    def explain_prepared(self, x: np.ndarray, targets: Targets = None, faithfulness: bool = True) -> Explanations:
        s = self.size
        check_array("explain input", x, (None, s, s, 3), np.float32)
        n = len(x)
        t0 = time.perf_counter()
        logits = self.scorer.logits(x)
        probabilities = self.scorer.probabilities(logits)
        target_ids = resolve_targets(targets, probabilities, self.class_names)
        raw = np.asarray(self._raw_maps(x, target_ids, logits), np.float32)
        full = resize_maps(raw, s)
        maps = normalise(full)
        ms = (time.perf_counter() - t0) * 1000.0 / max(n, 1)
        scored, scored_ms = None, 0.0
        if faithfulness and self.faithfulness_steps > 0:
            t1 = time.perf_counter()
            scored = self.score(x, full, target_ids)
            scored_ms = (time.perf_counter() - t1) * 1000.0 / max(n, 1)
        log.debug("%s: %d face(s), %.1f ms/face (+%.1f ms/face faithfulness)", self.method, n, ms, scored_ms)
        return Explanations(self.method, maps, raw, target_ids, probabilities, log_odds(logits, target_ids),
                            self.class_names, ms, scored, scored_ms)

    def score(self, x: np.ndarray, importance: np.ndarray, targets: np.ndarray) -> Faithfulness:
        """Deletion / insertion curves for maps ``importance`` (N, S, S) of inputs ``x``."""
        k = self.faithfulness_steps
        parts = [faith.curves(self.scorer.scores, x[i:i + MAX_FACES_PER_SCORE],
                              self.fill_values(x[i:i + MAX_FACES_PER_SCORE]), importance[i:i + MAX_FACES_PER_SCORE],
                              targets[i:i + MAX_FACES_PER_SCORE], k, self.seed)
                 for i in range(0, len(x), MAX_FACES_PER_SCORE)]
        if not parts:
            return Faithfulness.empty(k)
        fields = Faithfulness.__dataclass_fields__
        return Faithfulness(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def warmup(self) -> None:
        """Trace the compiled calls once (the first real call is then fast); scoring uses the same
        logits call, so it needs no tracing of its own."""
        s = self.size
        self.explain_prepared(np.full((1, s, s, 3), self.spec.pixel_for(0.0), np.float32), faithfulness=False)

"""Why did the classifier say *mask* or *no mask*? Grad-CAM and occlusion maps for face crops.

Every explainer shares :class:`Explainer`: it turns BGR face crops into the model's own
input with :meth:`MaskClassifier.prepare` (the colour order the model file states),
resolves the class to explain by *name* through the class order stored in the model
(by default each face's predicted class), times the work, brings the method's raw map
to crop size, clips negative evidence and normalises it to [0, 1] with an epsilon (an
all-zero map stays zero), and scores the map's faithfulness with a deletion curve.
A method overrides one hook, :meth:`Explainer._raw_maps`.

* :class:`GradCAM` weights the feature maps of the last convolutional layer (found
  automatically, or named) by the spatially averaged gradient of the target's log-odds
  ``z_t - logsumexp(z_others)`` (the logits are the input of the model's
  ``ClassProbabilities`` layer; with two classes this is ``z_t - z_other``, and its
  gradient is a positive multiple of the softmax probability's, without the vanishing
  gradients of a saturated softmax). All faces go through one compiled call.
* :class:`Occlusion` covers the crop with a square patch at every stride step and
  records how much the target's probability drops; pixels get the mean drop of the
  patches covering them. All occluded copies of all faces go through the model in
  batches.

Occlusion patches and deleted pixels are filled *in the model's input space*: ``grey``
uses ``spec.pixel_for(0.0)``, the input value that the model's own preprocessing maps
to the middle (0) of the network's [-1, 1] range; ``blur`` uses a Gaussian-blurred
copy of the crop (sigma = half the patch side).

The caller's model is never changed: Grad-CAM builds a separate functional model that
shares the layers and weights, and nothing sets activations, trainability or weights.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from livemask.core.errors import ConfigError, LivemaskError
from livemask.core.types import check_array

log = logging.getLogger(__name__)

MAX_COPIES = 1024  # occluded / deleted copies held in memory at once (about 50 MB at 64 px)
EPS = 1e-12  # keeps an all-zero map at 0 (not NaN) without flattening small real maps
METHODS = ("gradcam", "occlusion")
METHOD_TITLES = {"gradcam": "Grad-CAM", "occlusion": "Occlusion"}
FILLS = ("grey", "blur")

# a target: None (each face's predicted class), a class name for every face, one name per
# face, or a callable (probabilities (N, C), class_names) -> names or a boolean per class
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
class Faithfulness:
    """Deletion curves for N maps: the target's probability as the most important pixels are
    filled first (``curves``) and in a random order (``random_curves``), at ``steps + 1``
    evenly spaced deleted fractions 0..1. AUC is the trapezoid area over the fraction axis:
    lower means the map found what the prediction rests on; ``ratio`` < 1 beats random."""

    curves: np.ndarray  # (N, K+1) float32
    random_curves: np.ndarray  # (N, K+1) float32

    def __post_init__(self) -> None:
        check_array("Faithfulness.curves", self.curves, (None, None), np.float32)
        check_array("Faithfulness.random_curves", self.random_curves, self.curves.shape, np.float32)

    @staticmethod
    def _auc(curves: np.ndarray) -> np.ndarray:
        if curves.shape[1] < 2:
            return np.zeros((len(curves),), np.float32)
        dx = 1.0 / (curves.shape[1] - 1)
        return ((curves[:, 1:] + curves[:, :-1]).sum(axis=1) * dx / 2).astype(np.float32)

    @property
    def deletion_auc(self) -> np.ndarray:
        return self._auc(self.curves)

    @property
    def random_auc(self) -> np.ndarray:
        return self._auc(self.random_curves)

    @property
    def ratio(self) -> np.ndarray:
        return (self.deletion_auc / np.maximum(self.random_auc, EPS)).astype(np.float32)

    def __getitem__(self, index) -> Faithfulness:
        index = np.atleast_1d(np.arange(len(self.curves))[index])
        return Faithfulness(self.curves[index], self.random_curves[index])


@dataclass(frozen=True)
class Explanations:
    """Maps for N faces by one method.

    maps: (N, S, S) float32 in [0, 1] at crop size; raw: (N, h, w) float32, the method's own
    map before clipping and normalising (Grad-CAM: the weighted feature-map sum at the layer's
    resolution; occlusion: mean probability drop per pixel); targets: (N,) the explained class
    index into ``class_names``; probabilities: (N, C) model output for the unchanged crops;
    ms_per_face: time for the map (prediction + method), per face of the batch.
    """

    method: str
    maps: np.ndarray
    raw: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray
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
        if self.faithfulness is not None and len(self.faithfulness.curves) != n:
            raise LivemaskError(f"Explanations: {n} maps but {len(self.faithfulness.curves)} faithfulness rows")

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, index) -> Explanations:
        index = np.atleast_1d(np.arange(len(self))[index])
        faith = self.faithfulness[index] if self.faithfulness is not None else None
        return Explanations(self.method, self.maps[index], self.raw[index], self.targets[index],
                            self.probabilities[index], self.class_names, self.ms_per_face, faith,
                            self.faithfulness_ms_per_face)

    @property
    def target_names(self) -> list[str]:
        return [self.class_names[i] for i in self.targets]

    @property
    def target_probabilities(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self)), self.targets] if len(self) else np.zeros((0,), np.float32)

    @property
    def predicted(self) -> list[str]:
        return [self.class_names[i] for i in self.probabilities.argmax(axis=1)] if len(self) else []


class Explainer:
    """Base explainer: subclasses override :meth:`_raw_maps` only.

    Every forward pass goes through the classifier's own compiled call
    (:meth:`MaskClassifier.predict_prepared`: padded to its fixed ``batch_sizes``, already
    traced in a live run). ``fill``: ``grey`` or ``blur`` (see module doc);
    ``faithfulness_steps``: points of the deletion curve (0 switches scoring off);
    ``seed``: the random deletion order and tie-breaking (mixed with each face's pixels).
    """

    method = "base"

    def __init__(self, classifier, fill: str = "grey", patch_fraction: float = 0.125,
                 faithfulness_steps: int = 16, seed: int = 0):
        if fill not in FILLS:
            raise ConfigError(f"explain.fill: expected one of {', '.join(FILLS)}, got {fill!r}")
        if not 0 < patch_fraction <= 1:
            raise ConfigError(f"explain.patch_fraction: expected 0 < value <= 1, got {patch_fraction}")
        if faithfulness_steps < 0:
            raise ConfigError(f"explain.faithfulness_steps: expected >= 0, got {faithfulness_steps}")
        self.classifier = classifier
        self.model = classifier.model
        self.spec = classifier.spec
        self.size = self.spec.input_size
        self.batch_size = classifier.batch_sizes[-1]
        self.fill = fill
        self.patch = max(1, round(self.size * patch_fraction))
        self.faithfulness_steps = int(faithfulness_steps)
        self.seed = int(seed)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    # -- the hook -------------------------------------------------------------------------
    def _raw_maps(self, x: np.ndarray, targets: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Raw maps (N, h, w) for model inputs ``x`` (N, S, S, 3) and class indices ``targets``."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, C) for model inputs, through the classifier's compiled call."""
        if len(x) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return self.classifier.predict_prepared(x)

    def fill_values(self, x: np.ndarray) -> np.ndarray:
        """What occluded / deleted pixels become, per input (N, S, S, 3), in the model's input space."""
        if self.fill == "grey":
            return np.full_like(x, self.spec.pixel_for(0.0))
        sigma = self.patch / 2.0
        return np.stack([cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT) for img in x]) \
            if len(x) else x.copy()

    def explain(self, crops_bgr: np.ndarray, targets: Targets = None, faithfulness: bool = True) -> Explanations:
        """Maps for BGR uint8 crops (N, S, S, 3) as cut by ``classifier.crops``."""
        x = self.classifier.prepare(crops_bgr)
        return self.explain_prepared(x, targets, faithfulness)

    def explain_prepared(self, x: np.ndarray, targets: Targets = None, faithfulness: bool = True) -> Explanations:
        s = self.size
        check_array("explain input", x, (None, s, s, 3), np.float32)
        n = len(x)
        t0 = time.perf_counter()
        probabilities = self.predict(x)
        target_ids = resolve_targets(targets, probabilities, self.class_names)
        raw = np.asarray(self._raw_maps(x, target_ids, probabilities), np.float32)
        maps = normalise(resize_maps(raw, s))
        ms = (time.perf_counter() - t0) * 1000.0 / max(n, 1)
        faith, faith_ms = None, 0.0
        if faithfulness and self.faithfulness_steps > 0:
            t1 = time.perf_counter()
            faith = self.deletion(x, resize_maps(raw, s), target_ids)
            faith_ms = (time.perf_counter() - t1) * 1000.0 / max(n, 1)
        log.debug("%s: %d face(s), %.1f ms/face (+%.1f ms/face faithfulness)", self.method, n, ms, faith_ms)
        return Explanations(self.method, maps, raw, target_ids, probabilities, self.class_names, ms, faith, faith_ms)

    def deletion(self, x: np.ndarray, importance: np.ndarray, targets: np.ndarray) -> Faithfulness:
        """Deletion curves: fill pixels in the order of ``importance`` (N, S, S), most important
        first, and in one seeded random order; record the target's probability at each step."""
        k = self.faithfulness_steps
        per_chunk = max(1, MAX_COPIES // (2 * (k + 1)))
        parts = [self._deletion(x[i:i + per_chunk], importance[i:i + per_chunk], targets[i:i + per_chunk])
                 for i in range(0, len(x), per_chunk)]
        if not parts:
            return Faithfulness(np.zeros((0, k + 1), np.float32), np.zeros((0, k + 1), np.float32))
        return Faithfulness(np.concatenate([p.curves for p in parts]),
                            np.concatenate([p.random_curves for p in parts]))

    def _deletion(self, x: np.ndarray, importance: np.ndarray, targets: np.ndarray) -> Faithfulness:
        n, s = len(x), self.size
        k = self.faithfulness_steps
        fill = self.fill_values(x)
        counts = np.round(np.linspace(0, s * s, k + 1)).astype(np.int64)
        copies = np.empty((n, 2, k + 1, s, s, 3), np.float32)
        for i in range(n):
            # seeded by the face's pixels: its score does not depend on the batch it came in
            rng = np.random.default_rng([self.seed, zlib.crc32(x[i].tobytes())])
            shuffled = rng.permutation(s * s)
            # sort by importance, ties in a random order (flat regions must not delete rows top-down)
            ranked = shuffled[np.argsort(-importance[i].reshape(-1)[shuffled], kind="stable")]
            for o, order in enumerate((ranked, rng.permutation(s * s))):
                rank = np.empty(s * s, np.int64)
                rank[order] = np.arange(s * s)
                rank = rank.reshape(s, s)
                for step, c in enumerate(counts):
                    gone = (rank < c)[..., None]
                    copies[i, o, step] = np.where(gone, fill[i], x[i])
        probs = self.predict(copies.reshape(-1, s, s, 3)).reshape(n, 2, k + 1, -1)
        picked = probs[np.arange(n), :, :, targets]  # (N, 2, K+1)
        return Faithfulness(np.ascontiguousarray(picked[:, 0]), np.ascontiguousarray(picked[:, 1]))

    def warmup(self) -> None:
        """Trace the compiled functions once (the first real call is then fast)."""
        s = self.size
        x = np.full((1, s, s, 3), self.spec.pixel_for(0.0), np.float32)
        self.explain_prepared(x, faithfulness=False)


def find_conv_layer(model, name: str | None = None):
    """The Grad-CAM layer: ``name``, or the last layer with a spatial (N, h, w, C) output that
    comes after a convolution (for livemask's model the rectified output of the last conv block)."""
    if name:
        try:
            layer = model.get_layer(name)
        except ValueError:
            spatial = [la.name for la in model.layers if len(getattr(la.output, "shape", ())) == 4]
            raise ConfigError(f"explain.layer: model has no layer {name!r} (spatial layers: "
                              f"{', '.join(spatial[-6:])})") from None
        if len(layer.output.shape) != 4:
            raise ConfigError(f"explain.layer: layer {name!r} output {tuple(layer.output.shape)} is not (N, h, w, C)")
        return layer
    import keras

    conv_types = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    seen_conv = False
    found = None
    for layer in model.layers:
        seen_conv = seen_conv or isinstance(layer, conv_types)
        shape = getattr(layer.output, "shape", ())
        if seen_conv and len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
            found = layer
    if found is None:
        raise ConfigError(f"model '{model.name}' has no convolutional layer with a spatial output for Grad-CAM")
    return found


class GradCAM(Explainer):
    """Grad-CAM (Selvaraju et al., 2017) on the log-odds of the target class."""

    method = "gradcam"

    def __init__(self, classifier, layer: str | None = None, **kwargs):
        super().__init__(classifier, **kwargs)
        import keras
        import tensorflow as tf

        from livemask.models.modelspec import ClassProbabilities

        self.layer = find_conv_layer(self.model, layer)
        head = next(la for la in self.model.layers if isinstance(la, ClassProbabilities))
        # a separate model sharing the caller's layers and weights; the caller's model is untouched
        self._features = keras.Model(self.model.inputs, [self.layer.output, head.input], name="livemask_gradcam")
        s, c = self.size, len(self.class_names)
        features = self._features

        def cam(x, targets):
            onehot = tf.one_hot(targets, c, dtype=tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(x)
                fmaps, logits = features(x, training=False)
                target_logit = tf.reduce_sum(logits * onehot, axis=1)
                others = tf.where(onehot > 0, tf.fill(tf.shape(logits), -1e9), logits)
                score = target_logit - tf.reduce_logsumexp(others, axis=1) if c > 1 else target_logit
            grads = tape.gradient(score, fmaps)  # faces are independent in inference mode
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            return tf.reduce_sum(weights * fmaps, axis=-1)

        signature = [tf.TensorSpec([None, s, s, 3], tf.float32), tf.TensorSpec([None], tf.int32)]
        self._cam_fn = tf.function(cam, autograph=False, input_signature=signature)  # one trace for any batch

    @property
    def layer_name(self) -> str:
        return self.layer.name

    def _raw_maps(self, x, targets, probabilities):
        if len(x) == 0:  # TF's batch norm refuses an empty batch
            return np.zeros((0, *self.layer.output.shape[1:3]), np.float32)
        out = []
        for start in range(0, len(x), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            out.append(self._cam_fn(x[chunk], targets[chunk].astype(np.int32)).numpy())
        return np.concatenate(out)


class Occlusion(Explainer):
    """Occlusion sensitivity (Zeiler & Fergus, 2014): drop of the target's probability when a
    square patch is filled; ``patch_fraction`` / ``stride_fraction`` of the crop side."""

    method = "occlusion"

    def __init__(self, classifier, patch_fraction: float = 0.125, stride_fraction: float = 0.125, **kwargs):
        super().__init__(classifier, patch_fraction=patch_fraction, **kwargs)
        if not 0 < stride_fraction <= 1:
            raise ConfigError(f"explain.stride_fraction: expected 0 < value <= 1, got {stride_fraction}")
        self.stride = max(1, round(self.size * stride_fraction))
        s, p = self.size, self.patch
        starts = list(range(0, s - p + 1, self.stride))
        if starts[-1] != s - p:
            starts.append(s - p)  # the last patch touches the far edge
        self.positions = [(y, x) for y in starts for x in starts]
        masks = np.zeros((len(self.positions), s, s, 1), np.float32)
        for k, (y, x) in enumerate(self.positions):
            masks[k, y:y + p, x:x + p] = 1.0
        self.masks = masks  # (P, S, S, 1): 1 where patch k is filled
        coverage = masks[..., 0].sum(axis=0)
        self._coverage = np.maximum(coverage, 1.0)

    def occluded_copies(self, x: np.ndarray, fill: np.ndarray) -> np.ndarray:
        """(N * P, S, S, 3): for each face every patch position filled, face-major."""
        m = self.masks[None]
        copies = x[:, None] * (1.0 - m) + fill[:, None] * m
        return copies.reshape(-1, self.size, self.size, 3)

    def _raw_maps(self, x, targets, probabilities):
        n, s, p = len(x), self.size, len(self.positions)
        out = np.zeros((n, s, s), np.float32)
        per_chunk = max(1, MAX_COPIES // p)  # bounded memory for many faces
        for start in range(0, n, per_chunk):
            xs, ts = x[start:start + per_chunk], targets[start:start + per_chunk]
            m = len(xs)
            probs = self.predict(self.occluded_copies(xs, self.fill_values(xs))).reshape(m, p, -1)
            base = probabilities[start:start + m][np.arange(m), ts]
            drop = base[:, None] - probs[np.arange(m)[:, None], np.arange(p)[None], ts[:, None]]  # (m, P)
            out[start:start + m] = np.einsum("np,pyx->nyx", drop, self.masks[..., 0]) / self._coverage
        return out


# ----------------------------------------------------------------------------------------
# Configured set of explainers (the ``explain:`` section of config.yaml) and rendering
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceView:
    """What a panel row shows for one face: its crop, the predicted label and probability."""

    crop_bgr: np.ndarray
    label: str
    probability: float


class ExplainSuite:
    """The configured explainers and the panel renderer.

    layer: Grad-CAM layer name, or None for the last convolutional feature map.
    patch_fraction / stride_fraction: occlusion patch side and step as fractions of the crop side.
    fill: ``grey`` (the model's own mid-grey, ``pixel_for(0.0)``) or ``blur`` (blurred crop).
    Forward passes use the classifier's compiled call and its ``batch_sizes``.
    faithfulness_steps: points of the deletion curve (0 = no score).
    tile: side in pixels of each crop / map tile in the panel; alpha: heat-map opacity.
    colormap: an OpenCV colour map name (jet, turbo, inferno, ...).
    """

    def __init__(self, classifier, layer: str | None = None, patch_fraction: float = 0.125,
                 stride_fraction: float = 0.125, fill: str = "grey",
                 faithfulness_steps: int = 16, seed: int = 0, tile: int = 160, alpha: float = 0.5,
                 colormap: str = "jet"):
        common = dict(fill=fill, faithfulness_steps=faithfulness_steps, seed=seed)
        self.classifier = classifier
        self.explainers: dict[str, Explainer] = {
            "gradcam": GradCAM(classifier, layer=layer, patch_fraction=patch_fraction, **common),
            "occlusion": Occlusion(classifier, patch_fraction=patch_fraction, stride_fraction=stride_fraction,
                                   **common),
        }
        cmap = getattr(cv2, f"COLORMAP_{str(colormap).upper()}", None)
        if cmap is None:
            raise ConfigError(f"explain.colormap: unknown OpenCV colour map {colormap!r}")
        if tile < 48:
            raise ConfigError(f"explain.tile: expected at least 48 pixels, got {tile}")
        if not 0 <= alpha <= 1:
            raise ConfigError(f"explain.alpha: expected 0 <= alpha <= 1, got {alpha}")
        self.renderer = PanelRenderer(tile=tile, alpha=alpha, colormap=cmap)

    @staticmethod
    def methods_for(method: str) -> tuple[str, ...]:
        if method == "all":
            return METHODS
        if method not in METHODS:
            raise ConfigError(f"unknown explain method {method!r} (choose from gradcam, occlusion, all)")
        return (method,)

    def explain(self, crops_bgr: np.ndarray, method: str = "gradcam", targets: Targets = None,
                faithfulness: bool = True) -> list[Explanations]:
        """One :class:`Explanations` per method for the same crops."""
        return [self.explainers[m].explain(crops_bgr, targets, faithfulness) for m in self.methods_for(method)]

    def render(self, crops_bgr: np.ndarray, results: list[Explanations], title: str = "") -> np.ndarray:
        faces = []
        if results:
            first = results[0]
            probs = first.probabilities
            for i in range(len(crops_bgr)):
                k = int(probs[i].argmax())
                faces.append(FaceView(crops_bgr[i], first.class_names[k], float(probs[i, k])))
        return self.renderer.panel(faces, results, title)

    def warmup(self) -> None:
        """Trace the shared forward pass and Grad-CAM's gradient call (occlusion needs no more)."""
        self.explainers["gradcam"].warmup()


FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=(235, 235, 235)) -> None:
    cv2.putText(img, text, org, FONT, scale, colour, 1, cv2.LINE_AA)


class PanelRenderer:
    """One row per face: the crop, one overlay per method (caption: method, time, deletion AUC
    vs random), and a colour-bar legend. Rows wrap into columns beyond ``rows_per_column``."""

    def __init__(self, tile: int = 160, alpha: float = 0.5, colormap: int = cv2.COLORMAP_JET,
                 rows_per_column: int = 4):
        self.tile = int(tile)
        self.alpha = float(alpha)
        self.colormap = colormap
        self.rows_per_column = rows_per_column
        self.pad = 8
        self.header = 24
        self.caption = 40

    def overlay(self, crop_bgr: np.ndarray, heat: np.ndarray) -> np.ndarray:
        t = self.tile
        base = cv2.resize(crop_bgr, (t, t), interpolation=cv2.INTER_LINEAR)
        m = cv2.resize(np.clip(heat, 0, 1), (t, t), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap((m * 255).astype(np.uint8), self.colormap)
        return cv2.addWeighted(base, 1 - self.alpha, colour, self.alpha, 0)

    def legend(self, height: int) -> np.ndarray:
        bar_h = height - 30
        ramp = np.linspace(255, 0, bar_h).astype(np.uint8)[:, None].repeat(14, axis=1)
        out = np.full((height, 60, 3), 30, np.uint8)
        out[15:15 + bar_h, 4:18] = cv2.applyColorMap(ramp, self.colormap)
        _text(out, "high", (21, 24), 0.38)
        _text(out, "low", (21, 12 + bar_h), 0.38)
        _text(out, "0-1", (21, bar_h // 2 + 15), 0.38)
        return out

    def row(self, face: FaceView, index: int, results: list[Explanations]) -> np.ndarray:
        t, pad = self.tile, self.pad
        n_tiles = 1 + len(results)
        width = pad + n_tiles * (t + pad) + 60
        height = self.header + t + self.caption
        out = np.full((height, width, 3), 30, np.uint8)
        from livemask.sinks.draw import class_colour

        cv2.rectangle(out, (0, 0), (width, self.header - 4), class_colour(face.label), cv2.FILLED)
        _text(out, f"face {index + 1}: {face.label} {face.probability:.0%}", (pad, self.header - 9), 0.5,
              (255, 255, 255))
        y0 = self.header
        out[y0:y0 + t, pad:pad + t] = cv2.resize(face.crop_bgr, (t, t), interpolation=cv2.INTER_LINEAR)
        _text(out, "input crop", (pad, y0 + t + 16))
        for k, res in enumerate(results):
            x0 = pad + (k + 1) * (t + pad)
            out[y0:y0 + t, x0:x0 + t] = self.overlay(face.crop_bgr, res.maps[index])
            target = res.class_names[int(res.targets[index])]
            line1 = f"{METHOD_TITLES.get(res.method, res.method)} [{target}] {res.ms_per_face:.0f} ms"
            _text(out, line1, (x0, y0 + t + 16), 0.4)
            if res.faithfulness is not None:
                f = res.faithfulness
                line2 = f"del AUC {f.deletion_auc[index]:.2f} / rand {f.random_auc[index]:.2f}"
                _text(out, line2, (x0, y0 + t + 33), 0.4)
        out[y0:y0 + t, width - 60:] = self.legend(t)
        return out

    def panel(self, faces: list[FaceView], results: list[Explanations], title: str = "") -> np.ndarray:
        title_h = 26
        if not faces:
            out = np.full((120, 420, 3), 30, np.uint8)
            _text(out, title, (8, 20), 0.5)
            _text(out, "no faces to explain", (8, 70), 0.6)
            return out
        rows = [self.row(f, i, results) for i, f in enumerate(faces)]
        rh, rw = rows[0].shape[:2]
        ncol = int(np.ceil(len(rows) / self.rows_per_column))
        nrow = min(len(rows), self.rows_per_column)
        out = np.full((title_h + nrow * (rh + 4), ncol * (rw + 4), 3), 20, np.uint8)
        _text(out, title, (8, 18), 0.5)
        for i, r in enumerate(rows):
            c, k = divmod(i, self.rows_per_column)
            y, x = title_h + k * (rh + 4), c * (rw + 4)
            out[y:y + rh, x:x + rw] = r
        return out

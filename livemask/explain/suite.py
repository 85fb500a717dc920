"""The configured set of explainers (the ``explain:`` section of config.yaml) and the panel."""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np

from livemask.core.errors import ConfigError
from livemask.core.params import OneOf, Range
from livemask.explain.base import FILLS, Explainer, Explanations, Targets
from livemask.explain.gradcam import GradCAM
from livemask.explain.occlusion import Occlusion
from livemask.explain.panel import FaceView, PanelRenderer
from livemask.explain.scores import LogitScorer
from livemask.explain.words import crop_landmarks

METHODS = ("gradcam", "occlusion")
Fraction = Annotated[float, Range(0, 1, lo_open=True)]


def methods_for(method: str) -> tuple[str, ...]:
    """The methods a request names: ``gradcam``, ``occlusion`` or ``all``."""
    if method == "all":
        return METHODS
    if method not in METHODS:
        raise ConfigError(f"unknown explain method {method!r} (choose from gradcam, occlusion, all)")
    return (method,)


class ExplainSuite:
    """The configured explainers and the panel renderer.

    layer: Grad-CAM layer name, or None for the feature map that feeds the last convolution.
    patch_fraction / stride_fraction: occlusion patch side and step as fractions of the crop side
    (a stride below the patch makes overlapping patches).
    fill: what occluded and deleted pixels become: ``blur`` (a Gaussian-blurred copy of the crop,
    sigma = blur_sigma_fraction of the crop side), ``grey`` (the model's own mid-grey) or ``skin``
    (each face's forehead colour, flat).
    faithfulness_steps: points of the deletion and insertion curves (0 = no score).
    seed: the random reference order and tie-breaking.
    tile: side in pixels of each crop / map tile in the panel; alpha: heat-map opacity.
    colormap: an OpenCV colour map name (jet, turbo, inferno, ...).

    The ranges are declared here and checked once, when config.yaml (or ``--set``) is loaded.
    """

    def __init__(self, classifier, layer: str | None = None, patch_fraction: Fraction = 0.125,
                 stride_fraction: Fraction = 0.125, fill: Annotated[str, OneOf(*FILLS)] = "blur",
                 blur_sigma_fraction: Fraction = 0.0625, faithfulness_steps: Annotated[int, Range(0, 1000)] = 12,
                 seed: Annotated[int, Range(0, 2**32 - 1)] = 0, tile: Annotated[int, Range(48, 4096)] = 160,
                 alpha: Annotated[float, Range(0, 1)] = 0.5, colormap: str = "jet"):
        cmap = getattr(cv2, f"COLORMAP_{str(colormap).upper()}", None)
        if cmap is None:
            raise ConfigError(f"explain.colormap: unknown OpenCV colour map {colormap!r}")
        common = dict(fill=fill, blur_sigma_fraction=blur_sigma_fraction, faithfulness_steps=faithfulness_steps,
                      seed=seed, scorer=LogitScorer(classifier))
        self.classifier = classifier
        self.explainers: dict[str, Explainer] = {
            "gradcam": GradCAM(classifier, layer=layer, **common),
            "occlusion": Occlusion(classifier, patch_fraction=patch_fraction, stride_fraction=stride_fraction,
                                   **common),
        }
        self.renderer = PanelRenderer(tile=tile, alpha=alpha, colormap=cmap)

    methods_for = staticmethod(methods_for)

    def explain(self, crops_bgr: np.ndarray, method: str = "gradcam", targets: Targets = None,
                faithfulness: bool = True) -> list[Explanations]:
        """One :class:`Explanations` per method for the same crops."""
        return [self.explainers[m].explain(crops_bgr, targets, faithfulness) for m in methods_for(method)]

    def render(self, crops_bgr: np.ndarray, results: list[Explanations], title: str = "", start: int = 0,
               count: int | None = None, rows: int | None = None, landmarks: np.ndarray | None = None,
               numbers: list[str] | None = None) -> np.ndarray:
        """The panel of these faces; ``start`` / ``count`` select one page of them, ``rows`` per column;
        ``landmarks`` (N, 5, 2) in crop pixels place the words' face regions (see
        :func:`livemask.explain.words.crop_landmarks`); ``numbers``: what each face is called (the live
        view's ``#track``), default ``face 1``, ``face 2``..."""
        faces = []
        if results:
            first = results[0]
            for i in range(len(crops_bgr)):
                k = int(first.probabilities[i].argmax())
                faces.append(FaceView(crops_bgr[i], first.class_names[k], float(first.probabilities[i, k]),
                                      None if landmarks is None else landmarks[i],
                                      None if numbers is None else numbers[i]))
        return self.renderer.panel(faces, results, title, start, count, rows)

    def crop_landmarks(self, detections) -> np.ndarray:
        """The detections' landmarks (N, 5, 2) in pixels of the classifier's crops."""
        spec = self.classifier.spec
        return crop_landmarks(detections, spec.input_size, spec.crop_margin, spec.crop_rule)

    def warmup(self) -> None:
        """Trace the compiled calls once (the shared logits call, Grad-CAM's gradient call) so the
        first request is fast; occlusion and scoring use only the logits call."""
        self.explainers["gradcam"].warmup()

"""Adapter between the web API and the explainers of :mod:`livemask.explain`.

The only module of the web package that touches the explain API: when that API changes,
only this file changes. It turns a set of explanations into JSON-ready dicts: for each
face and method the heat map over the crop as a base64 PNG, the target class, its
probability, the time per face, the faithfulness (deletion AUC against a random order), the
map in words (``summary``, from :mod:`livemask.explain.words`, as ``explain --json``), and on
request the map itself as a nested list (crop size, [0, 1]). Crop and overlay PNGs are
:data:`PAGE_TILE` pixels wide at least, so the page shows them large.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from livemask.core.errors import ConfigError

PAGE_TILE = 256  # side in pixels of the crop and overlay images sent to the page (at least)


def png_base64(image_bgr: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _r(v, k: int = 4) -> float:
    return round(float(v), k)


class WebExplainer:
    """Wraps an ``ExplainSuite`` (``explain(crops, method, targets)``, ``renderer.overlay/colormap``)."""

    def __init__(self, suite):
        self.suite = suite
        self.renderer = suite.renderer

    @staticmethod
    def check_method(method: str) -> tuple[str, ...]:
        from livemask.explain.suite import methods_for

        return methods_for(method)

    def check_target(self, target: str | None, class_names: tuple[str, ...]) -> None:
        if target is not None and target not in class_names:
            raise ConfigError(f"target {target!r} is not a class of the model ({', '.join(class_names)})")

    def explain(self, crops_bgr: np.ndarray, method: str, target: str | None, arrays: bool = False,
                detections=None) -> list[dict]:
        """One dict per face: ``{"crop_png", "explanations": [entry per method]}`` (call serialised);
        ``detections``: the faces' detections, whose landmarks place the summary's face regions."""
        from livemask.explain.words import summarise

        results = self.suite.explain(crops_bgr, method, targets=target)
        landmarks = None if detections is None else self.suite.crop_landmarks(detections)
        tile = max(self.renderer.tile, PAGE_TILE)
        faces = []
        for i in range(len(crops_bgr)):
            entries = []
            for res in results:
                t = int(res.targets[i])
                entry = {"method": res.method, "target": res.class_names[t],
                         "target_probability": _r(res.probabilities[i, t]), "ms": _r(res.ms_per_face, 2),
                         "overlay_png": png_base64(self.renderer.overlay(crops_bgr[i], res.maps[i], tile))}
                if res.faithfulness is not None:
                    entry["faithfulness"] = res.faithfulness.record(i)  # the five figures, as explain --json
                entry["summary"] = summarise(res, i, None if landmarks is None else landmarks[i]).record()
                if arrays:
                    entry["map"] = np.round(res.maps[i], 4).tolist()
                entries.append(entry)
            crop = cv2.resize(crops_bgr[i], (tile, tile), interpolation=cv2.INTER_LINEAR)
            faces.append({"crop_png": png_base64(crop), "explanations": entries})
        return faces

    def legend_png(self, width: int = 256, height: int = 14) -> str:
        """The colour map as a horizontal bar, low (0) on the left, high (1) on the right."""
        ramp = np.linspace(0, 255, width).astype(np.uint8)[None, :].repeat(height, axis=0)
        return png_base64(cv2.applyColorMap(ramp, self.renderer.colormap))

"""Adapter between the web API and the explainers of :mod:`livemask.explain`.

The only module of the web package that touches the explain API: when that API changes,
only this file changes. It turns a set of explanations into JSON-ready dicts: for each
face and method the heat map over the crop as a base64 PNG, the target class, its
probability, the time per face, the faithfulness (deletion AUC against a random order), the
map in words (``summary``, from :mod:`livemask.explain.words`, as ``explain --json``), and on
request the map itself as a nested list (crop size, [0, 1]). Crop and overlay PNGs are
:data:`PAGE_TILE` pixels wide at least, so the page shows them large.

:class:`ExplainerLoader` makes the explainer away from the request path: the server starts and
labels photos with the exported classifier while the Keras model (and TensorFlow) load in a
thread of their own, after start-up or on the first explain request (``serve --explain-load``).
A request waits for the load, bounded; past the bound it is answered 503 with a Retry-After
that the page honours; a load that cannot succeed (no TensorFlow in a lean install) is a 503
whose one-line message names the extra to install.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable

import cv2
import numpy as np

from livemask.core.errors import ConfigError

log = logging.getLogger(__name__)

LOAD_WAIT_S = 20.0  # a request waits this long for the Keras model to load before it is answered 503
RETRY_AFTER_S = 2  # the Retry-After of that 503 (seconds)

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


class ExplainNotReady(Exception):
    """The explainer is not ready: ``retry_after`` seconds (still loading) or None (it cannot load)."""

    def __init__(self, message: str, retry_after: int | None):
        super().__init__(message)
        self.retry_after = retry_after


class ExplainerLoader:
    """Makes the :class:`WebExplainer` once, in a thread of its own, from ``make_suite`` (an
    ``ExplainSuite`` factory that may import TensorFlow); :meth:`start` begins the load (again a no-op
    after the first call), :meth:`get` starts it if needed and waits for it, at most ``wait_s``."""

    def __init__(self, make_suite: Callable[[], object], wait_s: float = LOAD_WAIT_S):
        self._make_suite = make_suite
        self.wait_s = float(wait_s)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.explainer: WebExplainer | None = None
        self.error: str | None = None

    @classmethod
    def ready(cls, suite) -> ExplainerLoader:
        """A loader whose explainer is already made (tests, or a suite built before the server)."""
        loader = cls(lambda: suite)
        loader.explainer = WebExplainer(suite)
        loader._done.set()
        return loader

    @property
    def state(self) -> str:
        """``ready``, ``loading``, ``not loaded`` or ``unavailable``."""
        if self._done.is_set():
            return "ready" if self.explainer is not None else "unavailable"
        return "loading" if self._thread is not None else "not loaded"

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._done.is_set():
                self._thread = threading.Thread(target=self._load, name="livemask-explain-load", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        try:
            suite = self._make_suite()
            warmup = getattr(suite, "warmup", None)
            if warmup is not None:
                warmup()
            self.explainer = WebExplainer(suite)
        except Exception as err:  # ImportError (no TensorFlow), ModelFileError: shown as one line
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            self.error = f"explanations are not available: {first}"
            log.warning("%s", self.error)
            log.debug("explainer load failed", exc_info=True)
        finally:
            self._done.set()

    async def get(self) -> WebExplainer:
        """The explainer; :class:`ExplainNotReady` when it is still loading after ``wait_s`` or cannot load."""
        if not self._done.is_set():
            self.start()
            await asyncio.to_thread(self._done.wait, self.wait_s)
        if not self._done.is_set():
            raise ExplainNotReady("the explanation model is still loading; try again shortly", RETRY_AFTER_S)
        if self.explainer is None:
            raise ExplainNotReady(self.error or "explanations are not available", None)
        return self.explainer

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


async def explainer_or_503(loader: ExplainerLoader | None) -> WebExplainer:
    """For a route: the explainer, or an HTTP 503 (with Retry-After while the model is still loading)."""
    from fastapi import HTTPException

    if loader is None:
        raise HTTPException(503, "explanations are not available in this server")
    try:
        return await loader.get()
    except ExplainNotReady as err:
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
        raise HTTPException(503, str(err), headers=headers) from None

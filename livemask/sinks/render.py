"""The annotated frame of a result: face boxes and labels, plus the status overlay (FPS, latency, counts)."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from livemask.core.types import FrameResult
from livemask.sinks.draw import FaceAnnotator, count_labels, count_line, draw_status


class Renderer:
    """Draws faces and the status overlay on a copy of the frame; each sink that shows pixels owns one."""

    def __init__(self, overlay: bool = True):
        self.annotator = FaceAnnotator()
        self.overlay = overlay
        self._times: deque[float] = deque(maxlen=30)
        self.latency_ms = 0.0

    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)

    def render(self, result: FrameResult, extra: list[str] = (), tick: bool = True) -> np.ndarray:
        """Annotated copy of the frame; ``tick`` False redraws a frame without counting it for FPS."""
        if tick:
            now = time.monotonic()
            self._times.append(now)
            self.latency_ms = (now - result.frame.timestamp) * 1000.0
        image = result.frame.image.copy()
        if self.overlay:  # first, so that face labels near the top stay readable over it
            counts = count_labels(result.predictions)
            lines = [f"{self.fps():5.1f} fps  latency {self.latency_ms:4.0f} ms  infer {result.inference_ms:4.0f} ms",
                     count_line(counts), *extra]
            draw_status(image, lines)
        return self.annotator.annotate(image, result.detections, result.predictions, result.track_ids)

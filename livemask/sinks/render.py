"""The annotated frame of a result: face boxes and labels, plus the status overlay (FPS, latency, counts).

With the people stage on, the count line counts people by track (``people 3  masked 67%  in view 1``)
instead of boxes per class. ``blur`` pixelates or blurs faces before anything is drawn (recordings);
``snapshot_blur`` is applied by :meth:`Renderer.for_snapshot` to images saved from a sharp live view;
``recording_notice`` draws a red "REC" mark (the live view while a recording is written).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from livemask.core.types import FrameResult
from livemask.sinks.draw import FaceAnnotator, count_labels, count_line, draw_rec, draw_status
from livemask.sinks.privacy import FaceBlur


class Renderer:
    """Draws faces and the status overlay on a copy of the frame; each sink that shows pixels owns one."""

    def __init__(self, overlay: bool = True, blur: FaceBlur | None = None, snapshot_blur: FaceBlur | None = None,
                 recording_notice: bool = False):
        self.annotator = FaceAnnotator()
        self.overlay = overlay
        self.blur = blur
        self.snapshot_blur = snapshot_blur
        self.recording_notice = recording_notice
        self._times: deque[float] = deque(maxlen=30)
        self.latency_ms = 0.0

    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)

    def tick(self, result: FrameResult) -> None:
        """Count a result for the FPS and latency the overlay shows, without drawing it."""
        now = time.monotonic()
        self._times.append(now)
        self.latency_ms = (now - result.frame.timestamp) * 1000.0

    def render(self, result: FrameResult, extra: list[str] = (), tick: bool = True) -> np.ndarray:
        """Annotated copy of the frame; ``tick`` False redraws a frame without counting it for FPS."""
        if tick:
            self.tick(result)
        image = result.frame.image.copy()
        if self.blur is not None:
            self.blur.apply(image, result.detections.boxes)
        if self.overlay:  # first, so that face labels near the top stay readable over it
            lines = [f"{self.fps():5.1f} fps  latency {self.latency_ms:4.0f} ms  infer {result.inference_ms:4.0f} ms",
                     self.count_text(result), *extra]
            draw_status(image, lines)
        if self.recording_notice:
            draw_rec(image)
        return self.annotator.annotate(image, result.detections, result.predictions, result.track_ids)

    @staticmethod
    def count_text(result: FrameResult) -> str:
        """People by track when the people stage ran, else boxes per class in this frame."""
        if result.analytics is not None:
            p = result.analytics.people
            share = "-" if p.share_masked is None else f"{p.share_masked:.0%}"
            text = f"people {p.counted}  masked {share}  in view {p.in_view}"
            return text + (f"  static {p.static}" if p.static else "")
        return count_line(count_labels(result.predictions))

    def for_snapshot(self, image: np.ndarray, result: FrameResult | None) -> np.ndarray:
        """A shown image as it may be saved: faces blurred when asked (a copy), else ``image`` itself."""
        if self.snapshot_blur is None or self.blur is not None or result is None:
            return image
        return self.snapshot_blur.apply(image.copy(), result.detections.boxes)

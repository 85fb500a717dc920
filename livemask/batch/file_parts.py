"""The parts of one batch file's run: its source (a sampled video or one photo), the people counts and the
annotated photo sinks, and :class:`FileRun`, what the composition root hands :func:`~livemask.batch.worker.
process_input` for one input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livemask.batch.inputs import BatchInput
from livemask.core.errors import LivemaskError, SourceError
from livemask.core.images import read_image
from livemask.engine.sources import FileSource, Source

MASKED, UNMASKED = "mask", "no_mask"


@dataclass
class FileRun:
    """One input's engine and what :func:`~livemask.batch.worker.process_input` reads back after the run."""

    engine: Any  # livemask.engine.engine.Engine over the file's capture
    source: Source
    counts: PeopleCounts
    tracking: bool
    people: Any = None  # the people stage (None without tracking)
    outputs: list[str] = field(default_factory=list)  # files the run writes into the input's folder


# -- sources ------------------------------------------------------------------------------------------
class SampledVideoSource(FileSource):
    """A video file or URL read to the end, handing on every ``every``-th frame (the others only grabbed)."""

    def __init__(self, path: str, every: int = 1, url: bool = False, timeout_s: float = 10.0):
        super().__init__(path)
        self.every = int(every)
        self.url = url
        self.timeout_ms = int(timeout_s * 1000)

    def _open(self) -> None:
        if not self.url:
            return super()._open()
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        cap = cv2.VideoCapture(self.name, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: cannot open as a video")
        self.cap = cap
        self._describe(cap)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def _read(self) -> np.ndarray | None:
        for _ in range(self.every - 1 if self.frames_read else 0):
            if not self.cap.grab():
                return self._ended()
            self.frames_read += 1
        return super()._read()

    def _ended(self) -> None:
        if self.frame_count and self.frames_read < self.frame_count - 2:
            raise SourceError(f"{self.path}: video ends at frame {self.frames_read} of {self.frame_count} "
                              "(truncated or corrupt file)")
        return None


class ImageSource(Source):
    """One photo as a one-frame source."""

    def __init__(self, path: str):
        super().__init__(path)
        self.done = False

    def _open(self) -> None:
        self.image = read_image(self.name)  # InputImageError names the file
        self.size = (self.image.shape[1], self.image.shape[0])
        self.frame_count = 1

    def _read(self) -> np.ndarray | None:
        if self.done:
            return None
        self.done = True
        return self.image

    def position_ms(self) -> float | None:
        return 0.0


class PeopleCounts:
    """A sink: people by class and no-mask times (faces per label are in the engine's summary).

    A video's people are the people stage's (``people``): tracks that lasted and showed life, each under
    the label it carried most often; faces it marks static (pictures) are not people. A photo's are its
    faces by label (one frame: nothing can show life); without tracking, the most faces of a class seen
    in one frame."""

    name = "people"
    threaded = False

    def __init__(self, people=None, photo: bool = False):
        self.people = people  # the run's people stage: its alert count goes into the summary, as `run` has it
        self.from_people = people is not None and not photo  # a video with the people stage: it counts
        self.last_label: dict[int, str] = {}
        self.peak: dict[str, int] = {}  # without tracking: the most faces of a class in one frame
        self.first_no_mask = self.last_no_mask = None

    def open(self, info) -> None:
        pass

    def write(self, result) -> None:
        labels = result.predictions.labels
        if not self.from_people:  # the counts by_label reads when the people stage does not count
            per_frame: dict[str, int] = {}
            for label in labels:
                per_frame[label] = per_frame.get(label, 0) + 1
            for label, n in per_frame.items():
                self.peak[label] = max(self.peak.get(label, 0), n)
            if result.track_ids is not None:
                for tid, label in zip(result.track_ids, labels, strict=True):
                    self.last_label[int(tid)] = label
        if UNMASKED in labels:
            pos = (result.frame.position_ms or 0.0) / 1000.0
            self.first_no_mask = pos if self.first_no_mask is None else self.first_no_mask
            self.last_no_mask = pos

    def close(self, summary: dict) -> None:
        if self.people is not None and self.people.rule is not None:  # alert lines are in the event log only
            summary["alerts"] = {"fired": self.people.fired, "snapshots": 0, "snapshot_errors": 0}

    def by_label(self, tracking: bool) -> dict[str, int]:
        if self.from_people:
            return self.people.by_label()
        if not tracking:
            return dict(self.peak)
        out: dict[str, int] = {}
        for label in self.last_label.values():
            out[label] = out.get(label, 0) + 1
        return out


class AnnotatedImage:
    """A sink for a one-photo input: its annotated copy, written where the file's suffix says."""

    name = "image"
    threaded = False

    def __init__(self, path: Path, renderer):
        self.path, self.renderer = path, renderer

    def open(self, info) -> None:
        pass

    def write(self, result) -> None:
        if not cv2.imwrite(str(self.path), self.renderer.render(result)):
            raise LivemaskError(f"{self.path}: cannot write the annotated image")

    def close(self, summary: dict) -> None:
        pass


def make_source(item: BatchInput, every: int) -> Source:
    if item.kind == "image":
        return ImageSource(item.path)
    return SampledVideoSource(item.path, every, url=item.kind == "url")

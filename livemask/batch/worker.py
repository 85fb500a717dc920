"""The per-file job of a batch: :func:`process_input` (one input -> one complete output folder -> a row).

Engines call only this function, with :class:`Models` built once per worker process (by the composition
root, :func:`livemask.apps.batch_cmd.build_models`) and the batch's :class:`FileOptions`. Each file runs on
the engine of ``livemask run`` with the batch's sinks, so its ``events.jsonl`` holds the same lines and
summary as ``livemask run --headless --events`` on that file.

Frame sampling (``every`` K > 1): the source decodes every frame but hands on only every K-th one
(``position_s`` stays the true position in the file; ``frame_id`` counts processed frames). The detector then
runs on every sampled frame (carrying boxes across K x detect_every frames is too far), and the tracker's
``max_age`` and ``vote_frames`` are divided by K in the composition root, so a track survives and votes over
the same span of video time as without sampling. A video's people are the people stage's (by track,
pictures left out; see :class:`PeopleCounts`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livemask.batch.inputs import BatchInput
from livemask.batch.out_folder import EVENTS, SUMMARY_JSON, partial_dir, publish, write_json_atomic
from livemask.core.errors import LivemaskError, SourceError
from livemask.core.images import read_image
from livemask.engine.capture import Capture
from livemask.engine.sources import FileSource, Source

log = logging.getLogger(__name__)

MASKED, UNMASKED = "mask", "no_mask"


@dataclass
class Models:
    """What a worker process loads once and reuses for every file."""

    detector: Any
    classifier: Any
    tracker_factory: Callable[[], Any]  # a fresh tracker per file
    detect_every: int = 1
    stage_queue: int = 2
    queue_size: int = 4
    overlap: bool = True  # detect and classify in overlapping threads (False: in turn, about one core)
    load_s: float = 0.0  # seconds it took to build these (model loading and warm-up)
    people_factory: Callable[[], Any] | None = None  # a fresh people stage per file (counts, static faces, alerts)


@dataclass(frozen=True)
class FileOptions:
    every: int = 1  # process every K-th frame
    write_video: bool = False  # annotated video (videos) or annotated image (photos)
    blur_faces: bool = False  # blur every face in the annotated output

    def __post_init__(self) -> None:
        if self.every < 1:
            raise LivemaskError(f"--every must be at least 1, got {self.every}")


@dataclass
class FileResult:
    """One row of summary.csv."""

    path: str
    name: str
    status: str  # ok | failed | skipped
    error: str | None = None
    duration_s: float | None = None  # length of the video (frames in the file / fps)
    frames: int = 0  # frames processed
    people: dict[str, int] = field(default_factory=dict)  # people by label (see PeopleCounts)
    share_masked: float | None = None  # masked people / all people
    static_faces: int | None = None  # tracks the people stage marked static (pictures), not people
    first_no_mask_s: float | None = None  # position of the first frame with a no_mask face
    last_no_mask_s: float | None = None
    processing_s: float | None = None
    fps: float | None = None  # frames processed per second of processing
    worker: str | None = None  # host:pid
    worker_file: int | None = None  # this was the worker's n-th file
    model_load_s: float | None = None  # model loading paid for this file (0 after the worker's first file)
    attempts: int = 1
    note: str | None = None

    def row(self, class_names: list[str]) -> dict:
        out = asdict(self)
        people = out.pop("people")
        counted = self.status == "ok" or bool(people)  # failed / not started: no counts, not zero
        out["people"] = sum(people.values()) if counted else None
        for name in class_names:
            out[f"people_{name}"] = people.get(name, 0) if counted else None
        return out


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def limit_threads(threads: int) -> None:
    """Threads per worker for OpenCV and TensorFlow; call before TensorFlow is imported."""
    threads = max(int(threads), 1)
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    cv2.setNumThreads(threads)


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


class Abandoned(Exception):
    """The batch was stopped (second Ctrl-C) or its driver died while this file was running."""


def _make_source(item: BatchInput, every: int) -> Source:
    if item.kind == "image":
        return ImageSource(item.path)
    return SampledVideoSource(item.path, every, url=item.kind == "url")


def process_input(item: BatchInput, out_dir: str | Path, models: Models, options: FileOptions,
                  should_stop: Callable[[], bool] = lambda: False, worker_file: int = 1,
                  attempts: int = 1) -> FileResult:
    """Process one input into ``out_dir/<item.name>/`` (complete, or not there at all) and return its row.

    The file runs on the engine of ``livemask run`` (:class:`~livemask.engine.engine.Engine`) with the
    batch's sinks: the event log, the people counts and, with ``write_video``, the annotated video or
    photo. Never raises for a bad input: a file that cannot be opened or breaks while reading gives a
    ``failed`` row and leaves no output folder. ``should_stop`` is polled every 0.1 s; when it turns
    true the run stops, the partial output is removed and the row is ``skipped`` ("abandoned").
    """
    from livemask.engine.engine import Engine
    from livemask.engine.pipeline import FrameProcessor
    from livemask.sinks.privacy import FaceBlur
    from livemask.sinks.recording import EventLog, VideoSink
    from livemask.sinks.render import Renderer

    out_dir = Path(out_dir)
    started = time.monotonic()
    row = FileResult(item.path, item.name, "failed", worker=worker_id(), worker_file=worker_file,
                     model_load_s=models.load_s if worker_file == 1 else 0.0, attempts=attempts)
    tmp = partial_dir(out_dir, item.name)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tracker = models.tracker_factory()
    people = models.people_factory() if models.people_factory is not None and tracker.enabled else None
    counts = PeopleCounts(people, photo=item.kind == "image")
    stop_event, abandoned, done = threading.Event(), threading.Event(), threading.Event()
    source = engine = None
    outputs = [EVENTS]
    error: str | None = None
    run_summary: dict = {}

    def watch() -> None:  # the driver's stop request ends this file's run
        while not done.wait(0.1):
            if should_stop():
                abandoned.set()
                stop_event.set()
                return

    watcher = threading.Thread(target=watch, name="batch-stop-watch", daemon=True)
    watcher.start()
    try:
        source = _make_source(item, options.every)
        capture = Capture(source, models.queue_size, stop_event=stop_event)
        capture.open()
        sinks: list = [counts, EventLog(tmp / EVENTS)]  # counts close first: the summary line has their alerts
        if options.write_video:
            renderer = Renderer(overlay=False, blur=FaceBlur("blur") if options.blur_faces else None)
            if item.kind == "image":
                name = "annotated" + (Path(item.path).suffix.lower() or ".png")
                sinks.append(AnnotatedImage(tmp / name, renderer))
            else:
                name = "annotated.mp4"
                sinks.append(VideoSink(tmp / name, renderer, fps=(source.fps or 30.0) / options.every))
            outputs.append(name)
        processor = FrameProcessor(models.detector, models.classifier, tracker,
                                   1 if options.every > 1 else models.detect_every)
        engine = Engine(capture, processor, sinks, stage_queue=models.stage_queue, overlap=models.overlap,
                        stop_reason=lambda: "abandoned" if abandoned.is_set() else None, people=people)
        run_summary = engine.run()
        if abandoned.is_set():
            raise Abandoned
        if engine.written == 0:
            raise SourceError(f"{item.path}: no frame could be decoded (not a video, or corrupt)")
    except Abandoned:
        error = "abandoned"
    except LivemaskError as err:
        error = "abandoned" if abandoned.is_set() else str(err)
    except Exception as err:  # anything unexpected fails this file only
        log.debug("unexpected error on %s", item.path, exc_info=True)
        text = str(err).strip().splitlines()
        error = f"{type(err).__name__}: {text[-1] if text else 'no message'}"
    finally:
        done.set()
        watcher.join(timeout=1.0)

    frames = engine.written if engine is not None else 0
    elapsed = time.monotonic() - started
    row.processing_s = round(elapsed, 3)
    row.frames = frames
    if error is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        row.error = error
        row.status = "skipped" if error == "abandoned" else "failed"
        return row

    fps = source.fps or 0.0
    if item.kind != "image" and fps > 0:
        total = source.frame_count or source.frames_read
        row.duration_s = round(total / fps, 3)
    row.people = {name: 0 for name in models.classifier.class_names} | counts.by_label(tracker.enabled)
    n_people = sum(row.people.values())
    masked = set(people.masked) if people is not None else {MASKED}
    row.share_masked = round(sum(row.people.get(c, 0) for c in masked) / n_people, 4) if n_people else None
    row.static_faces = len(people.static_tracks) if people is not None else None
    row.first_no_mask_s, row.last_no_mask_s = counts.first_no_mask, counts.last_no_mask
    row.fps = round(frames / elapsed, 2) if elapsed > 0 else None
    row.status = "ok"
    write_json_atomic(tmp / SUMMARY_JSON, {
        "status": "ok", "input": item.fingerprint, "outputs": outputs, "every": options.every,
        "row": asdict(row), "run": run_summary,
    })
    if should_stop():  # the driver died or gave up while we were closing: publish nothing
        shutil.rmtree(tmp, ignore_errors=True)
        row.status, row.error = "skipped", "abandoned"
        return row
    publish(tmp, out_dir / item.name)
    return row

"""The per-file job of a batch: :func:`process_input` (one input -> one complete output folder -> a row).

Executors call only this function, with :class:`Models` built once per worker process (by the composition
root, :func:`livemask.apps.compose.batch_models`, which also wires each file's run) and the batch's
:class:`FileOptions`. Each file runs on
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

from livemask.batch.file_parts import MASKED, FileRun
from livemask.batch.inputs import BatchInput
from livemask.batch.out_folder import SUMMARY_JSON, partial_dir, publish, write_json_atomic
from livemask.core.errors import LivemaskError, SourceError, exception_line

log = logging.getLogger(__name__)


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
    # the composition root's wiring of one input: (models, item, folder, options, stop_event, stop_reason) -> FileRun
    file_run: Callable[..., FileRun] | None = None


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


class Abandoned(Exception):
    """The batch was stopped (second Ctrl-C) or its driver died while this file was running."""


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
    out_dir = Path(out_dir)
    started = time.monotonic()
    row = FileResult(item.path, item.name, "failed", worker=worker_id(), worker_file=worker_file,
                     model_load_s=models.load_s if worker_file == 1 else 0.0, attempts=attempts)
    tmp = partial_dir(out_dir, item.name)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stop_event, abandoned, done = threading.Event(), threading.Event(), threading.Event()
    run: FileRun | None = None
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
        run = models.file_run(models, item, tmp, options, stop_event,
                              lambda: "abandoned" if abandoned.is_set() else None)
        engine = run.engine
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
        error = exception_line(err, last=True)
    finally:
        done.set()
        watcher.join(timeout=1.0)

    frames = run.engine.written if run is not None else 0
    elapsed = time.monotonic() - started
    row.processing_s = round(elapsed, 3)
    row.frames = frames
    if error is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        row.error = error
        row.status = "skipped" if error == "abandoned" else "failed"
        return row

    source, people, counts = run.source, run.people, run.counts
    fps = source.fps or 0.0
    if item.kind != "image" and fps > 0:
        total = source.frame_count or source.frames_read
        row.duration_s = round(total / fps, 3)
    row.people = {name: 0 for name in models.classifier.class_names} | counts.by_label(run.tracking)
    n_people = sum(row.people.values())
    masked = set(people.masked) if people is not None else {MASKED}
    row.share_masked = round(sum(row.people.get(c, 0) for c in masked) / n_people, 4) if n_people else None
    row.static_faces = len(people.static_tracks) if people is not None else None
    row.first_no_mask_s, row.last_no_mask_s = counts.first_no_mask, counts.last_no_mask
    row.fps = round(frames / elapsed, 2) if elapsed > 0 else None
    row.status = "ok"
    write_json_atomic(tmp / SUMMARY_JSON, {
        "status": "ok", "input": item.fingerprint, "outputs": run.outputs, "every": options.every,
        "row": asdict(row), "run": run_summary,
    })
    if should_stop():  # the driver died or gave up while we were closing: publish nothing
        shutil.rmtree(tmp, ignore_errors=True)
        row.status, row.error = "skipped", "abandoned"
        return row
    publish(tmp, out_dir / item.name)
    return row

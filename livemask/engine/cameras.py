"""Several cameras in one process: one :class:`Camera` per source, one shared classifier, a :class:`Site` over them.

Each camera is a whole :class:`~livemask.engine.engine.Engine` of its own (capture, detect and
classify threads, its tracker, its people stage and its sinks) whose loop runs on the camera's own
thread, so a dead, slow or reconnecting camera holds none of the others back. The classifier is
one object shared by every camera (:class:`SharedClassifier`: the cameras' calls take turns).

A camera has a state: ``connecting``, ``live``, ``reconnecting k/n`` (try k of n after a lost
stream), ``ended`` (its source ended, or the run was stopped) or ``failed: reason`` (it could not be
opened, or was lost for good); a file that ``serve`` keeps for replay is ``waiting for a viewer`` before its
first viewer and ``ended`` at its end until replayed. A camera that cannot be opened does not stop the others; the
:class:`Site` reports it (``failed`` in its summary) and the command's exit status says so.
The composition root (:mod:`livemask.apps.compose`) builds the cameras from the ``cameras``
section (:class:`CameraOptions`).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from livemask.core.errors import ConfigError, LivemaskError
from livemask.core.params import Range, check_fields
from livemask.core.redact import one_line, redact_text
from livemask.core.types import Predictions
from livemask.engine.engine import Engine

log = logging.getLogger(__name__)

# a file kept for replay (``serve``: Capture.keep_for_replay): its camera's state before its first viewer, at its end
PLAYBACK_STATES = {"waiting": "waiting for a viewer", "ended": "ended"}
CAMERA_NAME = re.compile(r"[a-z0-9_-]{1,32}")


def check_camera_name(name: str, where: str = "cameras") -> str:
    """A camera's name: 1 to 32 of a-z, 0-9, _ and - (it names files, URLs and event lines)."""
    if not isinstance(name, str) or not CAMERA_NAME.fullmatch(name):
        raise ConfigError(f"{where}: bad camera name {str(name)[:40]!r} (expected 1 to 32 of a-z, 0-9, _ and -)")
    return name


@dataclass
class CameraOptions:
    """One camera of the ``cameras`` section of config.yaml; a key left out (None) takes the value of its
    section (``source``, ``pipeline``, ``alerts``)."""

    name: str
    source: str | int | None = None
    enabled: bool = True
    realtime: bool | None = None  # source.realtime
    detector_long_side: Annotated[int, Range(32, 4096, multiple_of=32, or_zero=True)] | None = None
    detect_every: Annotated[int, Range(1, 1000)] | None = None
    alert_after_s: Annotated[float, Range(0, 86_400)] | None = None  # alerts.after_s
    alert_cooldown_s: Annotated[float, Range(0, 86_400)] | None = None  # alerts.cooldown_s
    reconnect_tries: Annotated[int, Range(0, 10_000)] | None = None  # source.reconnect_tries

    def __post_init__(self) -> None:
        check_camera_name(self.name)
        check_fields(self)
        if self.source is None or not str(self.source).strip():
            raise ConfigError(f"cameras.{self.name}.source: missing (a camera index, a video file, a URL or an "
                              "image folder)")
        self.source = str(self.source)

    def overrides(self) -> dict:
        """This camera's settings as ``section.key`` overrides of the whole config."""
        keys = {"source.source": self.source, "source.realtime": self.realtime,
                "source.reconnect_tries": self.reconnect_tries,
                "pipeline.detector_long_side": self.detector_long_side, "pipeline.detect_every": self.detect_every,
                "alerts.after_s": self.alert_after_s, "alerts.cooldown_s": self.alert_cooldown_s}
        return {k: v for k, v in keys.items() if v is not None}


def parse_camera_arguments(items: list[str] | None) -> dict[str, str]:
    """``--camera NAME=SOURCE`` items as {name: source}; a bad or repeated name is a ConfigError."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, source = item.partition("=")
        name = name.strip()
        if not sep or not source.strip():
            raise ConfigError(f"--camera {name[:40]!r}: expected NAME=SOURCE")
        check_camera_name(name, "--camera")
        if name in out:
            raise ConfigError(f"--camera: camera {name!r} given twice")
        out[name] = source.strip()
    return out


class SharedClassifier:
    """One classifier for every camera, called from every camera's classify thread.

    ``batch`` True (when the classifier can classify crops): each caller cuts its faces' crops on its own
    thread and queues them; one worker thread takes every request waiting, classifies all their crops in
    one call and hands each caller its part, in arrival order (first come, first served: no camera
    waits behind luckier ones). False: the callers take turns on a lock. A frame without faces never
    waits. A failure of the classifier is raised in every caller of that call.
    """

    def __init__(self, classifier, batch: bool = True, max_faces: int = 64):
        self.classifier = classifier
        self.batch = bool(batch) and hasattr(classifier, "predict_crops") and hasattr(classifier, "crops")
        self.max_faces = int(max_faces)
        self._lock = threading.Lock()
        self.calls = 0  # classifier calls made
        self.requests = 0  # frames classified
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.classifier, name)

    def classify(self, image, detections):
        if len(detections) == 0:
            return Predictions.empty(tuple(self.classifier.class_names))
        if not self.batch:
            with self._lock:
                self.calls += 1
                self.requests += 1
                return self.classifier.classify(image, detections)
        request = _Request(self.classifier.crops(image, detections))
        self._start()
        self._queue.put(request)
        while not request.done.wait(0.5):
            if self._closed.is_set() and not request.done.is_set():
                raise LivemaskError("the shared classifier was closed")
        if request.error is not None:
            raise request.error
        return request.result

    def _start(self) -> None:
        with self._lock:
            if self._worker is None and not self._closed.is_set():
                self._worker = threading.Thread(target=self._work, name="shared-classifier", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while not self._closed.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch, faces = [first], len(first.crops)
            while faces < self.max_faces:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(more)
                faces += len(more.crops)
            try:
                crops = batch[0].crops if len(batch) == 1 else np.concatenate([r.crops for r in batch])
                predictions = self.classifier.predict_crops(crops)
                self.calls += 1
                self.requests += len(batch)
                start = 0
                for r in batch:
                    r.result = predictions[start:start + len(r.crops)] if len(batch) > 1 else predictions
                    start += len(r.crops)
            except BaseException as err:  # every caller of this call gets the error
                for r in batch:
                    r.error = err
            for r in batch:
                r.done.set()

    def close(self) -> None:
        self._closed.set()
        if self._worker is not None:
            self._worker.join(timeout=5)


class _Request:
    __slots__ = ("crops", "done", "error", "result")

    def __init__(self, crops):
        self.crops = crops
        self.result = None
        self.error: BaseException | None = None
        self.done = threading.Event()


def _reason(err: BaseException) -> str:
    return one_line(redact_text(str(err) or type(err).__name__), 300)


class Camera:
    """One camera: opens its source and runs its engine on its own thread; :attr:`state` says where it is."""

    def __init__(self, name: str, engine: Engine):
        self.name = name
        self.engine = engine
        self.capture = engine.capture
        self.stop_event: threading.Event = engine.stop_event
        self.summary: dict | None = None
        self.failure: str | None = None  # why it failed, when it did
        self._state = "connecting"
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        playback = getattr(self.capture, "playback", None)
        if self._state == "live" and playback in PLAYBACK_STATES:  # a file kept for replay
            return PLAYBACK_STATES[playback]
        if self._state in ("connecting", "live"):
            trying = getattr(self.capture.source, "reconnecting", None)
            if trying is not None:
                return f"{'reconnecting' if self._state == 'live' else 'connecting'} {trying[0]}/{trying[1]}"
        return self._state

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def start(self) -> Camera:
        self._thread = threading.Thread(target=self._run, name=f"camera[{self.name}]", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.capture.open()
        except BaseException as err:  # a camera that cannot be opened stops only itself
            stopped = self.stop_event.is_set()
            self.capture.stop()
            if stopped:
                self._state = "ended"
            else:
                self._fail(err)
            return
        self._state = "live"
        try:
            self.summary = self.engine.run()
            self._state = "ended"
        except BaseException as err:
            self.summary = self.engine.last_summary
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        self.failure = _reason(err)
        self._state = f"failed: {self.failure}"
        log.error("camera %s failed: %s", self.name, self.failure)

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def report(self) -> dict:
        """The camera's part of the site summary: its state and its engine's summary (None if it never ran)."""
        return {"state": self.state, "failure": self.failure, "summary": self.summary}


class Site:
    """Runs every camera at once; stops them all on ``stop_event``; reports each state change.

    ``on_state(camera, state)`` is called on the calling thread for every state a camera takes
    (``connecting`` first). :meth:`run` returns the site summary once every camera has ended.

    ``display``: the window of every camera (the calling thread must be the main one): opened before the
    cameras start, given their states (``set_states``) and a way to hold a paced file (``hold``), polled
    between state checks; when its ``poll`` returns False (the user quit) every camera is stopped. It is
    closed with the site summary after every camera has ended.
    """

    def __init__(self, cameras: list[Camera], stop_event: threading.Event,
                 on_state: Callable[[str, str], None] | None = None, poll_s: float = 0.1,
                 stop_timeout_s: float = 45.0, classifier: SharedClassifier | None = None, display=None):
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ConfigError("cameras: a camera name is used twice")
        self.cameras = cameras
        self.stop_event = stop_event
        self.on_state = on_state or (lambda name, state: None)
        self.poll_s = float(poll_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.classifier = classifier  # closed once every camera has ended
        self.display = display
        self._seen: dict[str, str] = {}
        self._finished: dict | None = None  # the summary, once every camera was stopped and joined

    def states(self) -> dict[str, str]:
        return {c.name: c.state for c in self.cameras}

    def _report_changes(self) -> None:
        for camera in self.cameras:
            state = camera.state
            if self._seen.get(camera.name) != state:
                self._seen[camera.name] = state
                log.info("camera %s: %s", camera.name, state)
                self.on_state(camera.name, state)

    def run(self) -> dict:
        started = time.monotonic()
        self._report_changes()
        display = self.display
        if display is not None:
            display.hold = self._hold
            display.set_states(self.states())
            display.open(None)
        for camera in self.cameras:
            camera.start()
        try:
            if display is None:
                while any(c.alive for c in self.cameras):
                    if self.stop_event.wait(self.poll_s):
                        break
                    self._report_changes()
            else:
                checked = 0.0
                while any(c.alive for c in self.cameras) and not self.stop_event.is_set():
                    if time.monotonic() - checked >= self.poll_s:
                        checked = time.monotonic()
                        self._report_changes()
                        display.set_states(self.states())
                    if not display.poll(5):
                        break
        finally:
            summary = self.finish(started)
            if display is not None:
                try:
                    display.close(summary)
                except Exception as err:  # closing the window must not hide the run's result
                    log.warning("window did not close cleanly: %s", _reason(err))
        return summary

    def finish(self, started: float | None = None) -> dict:
        """Stop every camera, wait for each to finish its outputs, and return the site summary (once; a
        second call, e.g. from a lost display's hook, returns the same summary)."""
        if self._finished is not None:
            return self._finished
        started = time.monotonic() if started is None else started
        for camera in self.cameras:
            camera.stop()
        deadline = time.monotonic() + self.stop_timeout_s
        for camera in self.cameras:
            camera.join(max(deadline - time.monotonic(), 0.1))
        if self.classifier is not None:
            self.classifier.close()
        self._report_changes()
        self._finished = self.summary(time.monotonic() - started)
        return self._finished

    def _hold(self, name: str, on: bool) -> None:
        """Pause (``on``) or resume one camera's paced file where it is; a live source keeps running."""
        for camera in self.cameras:
            if camera.name == name:
                camera.capture.hold() if on else camera.capture.release()

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.cameras if c.failed]

    def summary(self, elapsed: float) -> dict:
        shared = self.classifier
        return {"cameras": {c.name: c.report() for c in self.cameras}, "failed": self.failed,
                "duration_s": round(elapsed, 2),
                "classifier": None if shared is None else {"batched": shared.batch, "calls": shared.calls,
                                                           "frames": shared.requests}}


def describe_failure(failed: list[str], total: int) -> str:
    return f"{len(failed)} of {total} cameras failed: {', '.join(failed)} (the others' outputs are complete)"


def error_for(failed: list[str], total: int) -> LivemaskError:
    from livemask.core.errors import CameraFailed

    return CameraFailed(describe_failure(failed, total))

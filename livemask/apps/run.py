"""``livemask run``: live or recorded video through the pipeline, into a window or into files.

Window mode shows annotated frames in an OpenCV window (keys in :mod:`livemask.sinks.window`).
Headless mode writes an annotated video (the source's size and fps, one output frame
per input frame from a file) and/or a JSON-lines event log, with a progress bar for
files. SIGINT and SIGTERM end the run cleanly: both outputs are closed and complete.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from livemask.core.errors import LivemaskError
from livemask.core.types import FrameResult

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """The ``run`` section of config.yaml (see there for the meaning of each key)."""

    headless: bool = False
    output: str | None = None
    events: str | None = None
    snapshot_dir: str = "snapshots"
    window_name: str = "livemask"
    progress: bool = True
    overlay: bool = True


def add_arguments(parser) -> None:
    parser.add_argument("--source", help="camera index (0), video file, rtsp/http(s) URL or image folder "
                                         "(default: source.source in config.yaml)")
    parser.add_argument("--headless", action="store_true", default=None, help="no window; write files only")
    parser.add_argument("--output", help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--events", help="write one JSON line per frame and a summary line here")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace a file at its own fps and drop frames when behind, like a camera")


class Renderer:
    """Draws faces and the status overlay (FPS, latency, counts) on a copy of the frame."""

    def __init__(self, overlay: bool = True):
        from livemask.sinks.draw import FaceAnnotator

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
        from livemask.sinks.draw import count_labels, draw_status

        if tick:
            now = time.monotonic()
            self._times.append(now)
            self.latency_ms = (now - result.frame.timestamp) * 1000.0
        image = result.frame.image.copy()
        if self.overlay:  # first, so that face labels near the top stay readable over it
            counts = count_labels(result.predictions)
            lines = [f"{self.fps():5.1f} fps  latency {self.latency_ms:4.0f} ms  infer {result.inference_ms:4.0f} ms",
                     "  ".join(f"{name}: {n}" for name, n in counts.items()), *extra]
            draw_status(image, lines)
        return self.annotator.annotate(image, result.detections, result.predictions, result.track_ids)


class Outputs:
    """The optional annotated video and event log, plus the counts for the summary."""

    def __init__(self, video_path: str | None, events_path: str | None, fps: float):
        from livemask.sinks.recording import EventLog

        self.video_path, self.fps = video_path, fps
        self.recorder = None
        self.events = EventLog(events_path) if events_path else None
        self.frames = 0
        self.faces: dict[str, int] = {}

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        from livemask.sinks.recording import VideoRecorder

        if self.video_path and image is not None:
            if self.recorder is None:
                self.recorder = VideoRecorder(self.video_path, self.fps, (image.shape[1], image.shape[0]))
            self.recorder.write(image)
        if self.events is not None:
            self.events.write(result)
        self.frames += 1
        for label in result.predictions.labels:
            self.faces[label] = self.faces.get(label, 0) + 1

    def close(self, summary: dict) -> None:
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            if self.events is not None:
                self.events.write_summary(summary)
                self.events.close()


class StopRequest:
    """SIGINT/SIGTERM set the stop event (first time); the run then finishes its outputs."""

    def __init__(self, stop_event: threading.Event):
        self.stop_event = stop_event
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, _frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting
        self.signal = signum
        self.stop_event.set()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def exit_code(self) -> int:
        return 0 if self.signal is None else 128 + int(self.signal)


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)


def consume(pipeline, outputs: Outputs, renderer: Renderer, stop_event: threading.Event, window=None,
            progress=None, max_display_age_ms: float = 100.0) -> dict:
    """The consumer loop (main thread): render, write, show; returns display statistics.

    In a window on a live source only the newest result is shown, and a result older than
    ``max_display_age_ms`` is not shown (counted as ``stale``); every result is still written.
    """
    from livemask.engine.pipeline import Percentiles

    shown_latency = Percentiles()
    stale = superseded = 0
    live = pipeline.live
    while not stop_event.is_set():
        result = None
        if window is None or not window.paused:
            try:
                if window is None:
                    result = pipeline.get(timeout=0.1)
                elif live:
                    result, skipped = pipeline.get_latest()
                    superseded += skipped
                else:
                    result = pipeline.get_nowait()
            except queue.Empty:
                result = None
            if result is None and pipeline.ended:
                break
        if result is not None:
            extra = window.overlay_lines() if window is not None else []
            image = renderer.render(result, extra)
            outputs.write(result, image)
            if progress is not None:
                progress.update(1)
                if outputs.frames % 10 == 0:
                    progress.set_postfix(fps=f"{renderer.fps():.1f}", refresh=False)
            age_ms = (time.monotonic() - result.frame.timestamp) * 1000.0
            if window is None:
                shown_latency.add(age_ms)  # headless: "shown" = written
            elif live and age_ms > max_display_age_ms:
                stale += 1
            else:
                window.show(image, result)
                shown_latency.add((time.monotonic() - result.frame.timestamp) * 1000.0)
        if window is not None:
            key = window.wait_key(1 if result is not None else (30 if window.paused else 5))
            if key != -1 and window.handle_key(key) == "quit":
                break
            if window.paused and window.result is not None:  # keep the overlay (PAUSED, explain status) current
                window.show(renderer.render(window.result, window.overlay_lines(), tick=False), window.result)
            if window.closed_by_user():
                log.info("window closed")
                break
            window.update()
    return {"stale_not_shown": stale, "superseded": superseded, "capture_to_display_ms": shown_latency.summary()}


def build_pipeline(config: dict, source_options, pipeline_options, stop_event: threading.Event,
                   max_frames: int | None = None, source=None):
    """Open the source (failing fast, before the models load), then build detector, classifier and tracker.

    Returns (pipeline, classifier, tracker); the pipeline is not started yet.
    """
    from livemask.config import build
    from livemask.engine.pipeline import FrameProcessor, Pipeline, build_detector

    capture = source_options.make_capture(stop_event, max_frames, source)
    source = capture.source
    capture.open()  # a missing camera or file fails here, before the models load
    log.info("source %s: %s, %.2f fps%s", source.name, "x".join(map(str, source.size or ("?", "?"))),
             source.fps, f", {source.frame_count} frames" if source.frame_count else "")
    try:
        detector = build_detector(config, pipeline_options)
        classifier = build(config, "classifier")
        classifier.warmup()
        tracker = build(config, "tracker")
    except BaseException:
        capture.stop()
        raise
    processor = FrameProcessor(detector, classifier, tracker, pipeline_options.detect_every)
    return Pipeline(capture, processor, pipeline_options.stage_queue), classifier, tracker


def command(args, config) -> int:
    from livemask.config import apply_overrides, build
    from livemask.engine.stream import quiet_video_backend

    config = apply_overrides(config, {
        "source.source": args.source, "source.realtime": args.realtime, "run.headless": args.headless,
        "run.output": args.output, "run.events": args.events,
    }, "command line")
    options: RunOptions = build(config, "run")
    source_options = build(config, "source")
    pipeline_options = build(config, "pipeline")
    if args.max_frames is not None and args.max_frames < 1:
        raise LivemaskError(f"--max-frames must be at least 1, got {args.max_frames}")
    window = None
    if not options.headless:
        from livemask.sinks.window import check_display

        check_display()
    elif not (options.output or options.events):
        log.warning("headless without --output or --events: results are only counted")
    quiet_video_backend(getattr(args, "verbose", False))

    stop_event = threading.Event()
    with StopRequest(stop_event) as stop:
        pipeline, classifier, tracker = build_pipeline(config, source_options, pipeline_options, stop_event,
                                                       args.max_frames)
        capture, source = pipeline.capture, pipeline.capture.source
        outputs = Outputs(options.output, options.events, source.fps or 30.0)
        if not options.headless:
            from livemask.sinks.window import LiveWindow

            window = LiveWindow(options.window_name, classifier, config, options.snapshot_dir)
        total = args.max_frames if source.frame_count is None else min(source.frame_count, args.max_frames or 1 << 62)
        progress = _progress(total, options.headless and options.progress and not capture.live)
        error: BaseException | None = None
        display: dict = {}
        started = time.monotonic()
        try:
            if window is not None:
                window.open()
            pipeline.start()
            display = consume(pipeline, outputs, Renderer(options.overlay), stop_event, window, progress,
                              pipeline_options.max_display_age_ms)
        except LivemaskError as err:
            error = err
        except Exception as err:  # an unexpected failure still ends as one line, with complete outputs
            log.debug("unexpected error", exc_info=True)
            text = str(err).strip().splitlines()
            error = LivemaskError(f"{type(err).__name__}: {text[-1] if text else 'no message'}")
        finally:
            elapsed = time.monotonic() - started
            pipeline.stop()
            if progress is not None:
                progress.close()
            if window is not None:
                window.close()
            summary = _summary(source, pipeline, outputs, tracker, display, elapsed, stop, error)
            outputs.close(summary)
            log.info("summary: %s", summary)
    if error is not None:
        raise error
    if stop.signal is not None:
        log.warning("stopped by %s; outputs are complete", signal.Signals(stop.signal).name)
    return stop.exit_code


def _summary(source, pipeline, outputs: Outputs, tracker, display: dict, elapsed: float, stop: StopRequest,
             error: BaseException | None) -> dict:
    if error is not None:
        ended = "error"
    elif stop.signal is not None:
        ended = signal.Signals(stop.signal).name
    elif pipeline.ended:
        ended = "end of source"
    else:
        ended = "user"
    return {
        "source": source.name,
        "ended": ended,
        "error": None if error is None else str(error),
        **pipeline.stats(),
        "frames_written": outputs.frames,
        "faces": outputs.faces,
        "tracks": tracker.total_tracks if tracker.enabled else None,
        "fps": round(outputs.frames / elapsed, 2) if elapsed > 0 else None,
        "duration_s": round(elapsed, 2),
        **display,
        "video": str(outputs.video_path) if outputs.video_path else None,
    }

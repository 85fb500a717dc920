"""``livemask run``: live or recorded video through the engine, into a window or into files.

Window mode shows annotated frames in an OpenCV window (keys in :mod:`livemask.sinks.window`).
Headless mode writes an annotated video (the source's size and fps, one output frame
per input frame from a file) and/or a JSON-lines event log, with a progress bar for
files. SIGINT and SIGTERM end the run cleanly: every output is closed and complete.
The parts are built by :mod:`livemask.apps.compose`; the loop is :class:`livemask.engine.engine.Engine`.
"""

from __future__ import annotations

import logging
import signal
import threading

from livemask.core.errors import LivemaskError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--source", help="camera index (0), video file, rtsp/http(s) URL or image folder "
                                         "(default: source.source in config.yaml)")
    parser.add_argument("--headless", action="store_true", default=None, help="no window; write files only")
    parser.add_argument("--output", help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--events", help="write one JSON line per frame and a summary line here")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace a file at its own fps and drop frames when behind, like a camera")


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

    def reason(self) -> str | None:
        """The signal's name once one arrived (the summary's ``ended``)."""
        return None if self.signal is None else signal.Signals(self.signal).name

    @property
    def exit_code(self) -> int:
        return 0 if self.signal is None else 128 + int(self.signal)


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.engine.stream import quiet_video_backend

    config = compose.apply_overrides(config, {
        "source.source": args.source, "source.realtime": args.realtime, "run.headless": args.headless,
        "run.output": args.output, "run.events": args.events,
    }, "command line")
    options = compose.run_options(config)
    if args.max_frames is not None and args.max_frames < 1:
        raise LivemaskError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not options.headless:
        from livemask.sinks.window import check_display

        check_display()  # before the models load
    elif not (options.output or options.events):
        log.warning("headless without --output or --events: results are only counted")
    quiet_video_backend(getattr(args, "verbose", False))

    stop_event = threading.Event()
    with StopRequest(stop_event) as stop:
        engine = compose.run_engine(config, stop_event, args.max_frames, stop.reason)
        engine.run()
    if stop.signal is not None:
        log.warning("stopped by %s; outputs are complete", stop.reason())
    return stop.exit_code

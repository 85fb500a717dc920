"""``livemask run``: live or recorded video through the engine, into a window or into files.

Window mode shows annotated frames in an OpenCV window (keys in :mod:`livemask.sinks.window`).
Headless mode writes an annotated video (the source's size and fps, one output frame
per input frame from a file) and/or a JSON-lines event log, with a progress bar for
files. SIGINT, SIGTERM and SIGHUP end the run cleanly: every output is closed and complete,
and the exit status is 128 + the signal's number (130, 143, 129). Further signals while the
outputs are being finished are ignored (finishing is bounded: a threaded sink gets 30 s).
``--output`` and ``--events`` are checked before the models load (:func:`check_outputs`).
The parts are built by :mod:`livemask.apps.compose`; the loop is :class:`livemask.engine.engine.Engine`.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import threading
from pathlib import Path

from livemask.apps.signals import StopRequest
from livemask.core.errors import ConfigError, OutputError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--source", help="camera index (0), video file, rtsp/http(s) URL or image folder "
                                         "(default: source.source in config.yaml)")
    parser.add_argument("--headless", action="store_true", default=None, help="no window; write files only")
    parser.add_argument("--output", help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--events", help="write one JSON line per frame and a summary line here")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames (N >= 1)")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace a file at its own fps and drop frames when behind, like a camera")
    parser.add_argument("--alert-webhook", metavar="URL",
                        help="POST each alert's JSON to this http(s) URL (alerts.webhook; or LIVEMASK_ALERT_WEBHOOK)")
    parser.add_argument("--alert-command", metavar="CMD",
                        help="run CMD (split like a shell, run without one) with each alert's JSON on stdin")
    parser.add_argument("--alert-sound", action="store_true", default=None,
                        help="play a short sound on each alert (aplay, paplay or ffplay)")
    parser.add_argument("--blur-faces", nargs="?", const="blur", choices=("blur", "pixelate", "off"),
                        help="blur (default) or pixelate every face in recordings and snapshots")


def positive_int(text: str) -> int:
    """``--max-frames``: an integer >= 1 (0 or negative is a command-line error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _is_stream_device(path: Path) -> bool:
    """A character device or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO): written as a stream, not a file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _local_input(source) -> list[str]:
    """The source as a path to protect, when it is a local file or folder."""
    text = str(source) if source is not None else ""
    if text.startswith("env:"):
        text = os.environ.get(text[4:], "")
    return [text] if text.strip() and os.path.exists(text) else []


def check_outputs(source, output: str | None, events: str | None) -> None:
    """Before any work: an output that is the source or the other output, a folder, under /proc, /sys or
    /dev (a device or pipe such as ``/dev/null`` or ``/dev/stdout`` is allowed for ``--events``), of an
    unknown video type, or in a folder that cannot be created or written, is one OutputError line (exit 2)."""
    from livemask.core.outputs import check_output_file, prepare_out_dir
    from livemask.sinks.recording import FOURCC

    inputs = _local_input(source)
    given = {"--output": output, "--events": events}
    for flag, path in given.items():
        if path is None:
            continue
        others = {f: p for f, p in given.items() if f != flag}
        resolved = Path(path).expanduser().resolve()
        if flag == "--events" and _is_stream_device(Path(path).expanduser()):
            for item in [*inputs, *(p for p in others.values() if p)]:
                if Path(item).expanduser().resolve() == resolved:
                    raise OutputError(f"{flag} {path}: is also given as an input or output")
            continue
        check_output_file(path, inputs, flag, others)
        if flag == "--output" and resolved.suffix.lower() not in FOURCC:
            raise OutputError(f"{flag} {path}: unsupported video file type (use {', '.join(FOURCC)})")
        if resolved.exists() and not os.access(resolved, os.W_OK):
            raise OutputError(f"{flag} {path}: exists and is not writable")
        prepare_out_dir(resolved.parent, f"{flag} {path}: folder")


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.engine.stream import quiet_video_backend

    config = compose.apply_overrides(config, {
        "source.source": args.source, "source.realtime": args.realtime, "run.headless": args.headless,
        "run.output": args.output, "run.events": args.events,
        "alerts.webhook": args.alert_webhook, "alerts.command": args.alert_command, "alerts.sound": args.alert_sound,
        "privacy.blur_faces": args.blur_faces,
    }, "command line")
    compose.check_alerts(config)
    options = compose.run_options(config)
    if args.max_frames is not None and args.max_frames < 1:  # parsed by positive_int; kept for direct callers
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    check_outputs(config.get("source", {}).get("source"), options.output, options.events)
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

"""``livemask run``: live or recorded video through the engine, into a window or into files.

Window mode shows annotated frames in an OpenCV window (keys in :mod:`livemask.sinks.window`).
Headless mode writes an annotated video (the source's size and fps, one output frame
per input frame from a file) and/or a JSON-lines event log, with a progress bar for
files. SIGINT, SIGTERM and SIGHUP end the run cleanly: every output is closed and complete,
and the exit status is 128 + the signal's number (130, 143, 129). A lost X connection (window mode)
finishes the outputs the same way and exits with status 3 (:class:`DisplayLost`). Further signals while the
outputs are being finished are ignored (finishing is bounded: a threaded sink gets 30 s).
``--output``, ``--events`` and kiosk mode are checked before the models load (:mod:`livemask.apps.preflight`).
The parts are built by :mod:`livemask.apps.compose`; the loop is :class:`livemask.engine.engine.Engine`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from livemask.apps.preflight import check_kiosk, check_outputs
from livemask.apps.signals import StopRequest
from livemask.core.errors import ConfigError, DisplayLost

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
    parser.add_argument("--kiosk", action="store_true", default=None,
                        help="full-screen verdict for the person in front; q and Esc do nothing, the kiosk.quit_keys "
                             "sequence or SIGTERM ends the run (config section 'kiosk')")
    parser.add_argument("--snapshot-overlay", action="store_true", default=None,
                        help="window snapshots (key s) include the status and message lines shown on screen")
    parser.add_argument("--alert-webhook", metavar="URL",
                        help="POST each alert's JSON to this http(s) URL (alerts.webhook; or LIVEMASK_ALERT_WEBHOOK)")
    parser.add_argument("--alert-command", metavar="CMD",
                        help="run CMD (split like a shell, run without one) with each alert's JSON on stdin")
    parser.add_argument("--alert-sound", action="store_true", default=None,
                        help="play a short sound on each alert (aplay, paplay or ffplay)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the run lasts "
                             "(0: any free port, logged)")
    parser.add_argument("--camera", action="append", metavar="NAME=SOURCE",
                        help="one camera of a site (repeatable; name: 1-32 of a-z 0-9 _ -); adds to the config's "
                             "'cameras' section; all run in this one process, in one window with a tile per camera "
                             "(Tab or 1-9 focus a tile) or with --headless (docs/cameras.md)")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="with cameras: DIR/<camera>.jsonl per camera and DIR/site.jsonl (camera states, summary)")
    parser.add_argument("--record", action="store_true",
                        help="with cameras and --output-dir: also write DIR/<camera>.mp4 (annotated)")
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


def display_lost(engine) -> int:
    """The window's X connection broke (``xkill``, the X server gone): Qt is ending the process from inside
    a window call. Finish every output as SIGTERM would, say so in one line, and give the exit status."""
    engine.display_lost()
    print(f"livemask: error: {DisplayLost.message}", file=sys.stderr, flush=True)
    return DisplayLost.exit_code


def prepare(args, config):
    """The run's config with the command line applied, and its options, checked before anything loads."""
    from livemask.apps import compose

    if getattr(args, "_prepared", None) is not None:
        return args._prepared
    config = compose.apply_overrides(config, {
        "source.source": args.source, "source.realtime": args.realtime, "run.headless": args.headless,
        "run.output": args.output, "run.events": args.events, "kiosk.enabled": getattr(args, "kiosk", None),
        "run.snapshot_overlay": getattr(args, "snapshot_overlay", None),
        "alerts.webhook": args.alert_webhook, "alerts.command": args.alert_command, "alerts.sound": args.alert_sound,
        "privacy.blur_faces": args.blur_faces,
    }, "command line")
    config = compose.with_cameras(config, getattr(args, "camera", None))
    if getattr(args, "camera", None) and args.source is not None:
        raise ConfigError("give either --source (one source) or --camera NAME=SOURCE (several), not both")
    if args.source is None and compose.cameras(config):
        args._prepared = (config, None)  # several cameras: run_cameras checks its own settings
        return args._prepared
    if getattr(args, "output_dir", None) or getattr(args, "record", False):
        raise ConfigError("--output-dir and --record are for runs with cameras (--camera or the cameras section)")
    compose.check_alerts(config)
    compose.check_mqtt(config)  # a bad mqtt section fails here, before the source opens and the models load
    options = compose.run_options(config)
    check_kiosk(options, compose.kiosk_options(config))
    if args.max_frames is not None and args.max_frames < 1:  # parsed by positive_int; kept for direct callers
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    check_outputs(config.get("source", {}).get("source"), options.output, options.events)
    if not options.headless:
        from livemask.sinks.window import check_display

        check_display()  # before the models load
    compose.check_snapshot_dir(config, options)  # after the display check: a refused display leaves no folder
    if options.headless and not (options.output or options.events):
        log.warning("headless without --output or --events: results are only counted")
    args._prepared = (config, options)
    return args._prepared


def start_screen(args, config):
    """Called by the CLI before TensorFlow loads: in kiosk mode with a window, the kiosk's start screen
    (:class:`~livemask.sinks.kiosk.StartScreen`), which then stays on screen while everything loads;
    otherwise None. Bad settings fail here, before any window."""
    from livemask.apps import compose

    config, options = prepare(args, config)
    if options is None:  # several cameras: headless
        return None
    kiosk = compose.kiosk_options(config)
    if options.headless or not kiosk.enabled:
        return None
    from livemask.apps.kiosk_start import take
    from livemask.sinks.kiosk import StartScreen

    args._start_screen = take(options.window_name, kiosk) or StartScreen(options.window_name, kiosk)
    return args._start_screen


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.engine.sources import quiet_video_backend

    config, options = prepare(args, config)
    if options is None:
        return run_cameras(args, config)
    quiet_video_backend(getattr(args, "verbose", False))

    metrics = None
    if getattr(args, "metrics_port", None) is not None:
        metrics = compose.metrics_server(args.metrics_port)
    stop_event = threading.Event()
    try:
        with StopRequest(stop_event) as stop:
            def make():
                return compose.run_engine(config, stop_event, args.max_frames, stop.reason, metrics=metrics)

            start = getattr(args, "_start_screen", None)
            if start is not None:  # shown by the CLI before TensorFlow loaded
                engine = start.wait_for(make)
            else:
                engine = build_engine(compose, config, options, make)
            if engine.display is not None:
                engine.display.when_lost(lambda: display_lost(engine))
            engine.run()
    finally:
        if metrics is not None:
            metrics.close()
    if stop.signal is not None:
        log.warning("stopped by %s; outputs are complete", stop.reason())
    return stop.exit_code


def build_engine(compose, config, options, make):
    """The engine ``make()`` builds; in kiosk mode with a window, the kiosk's start screen is on screen meanwhile."""
    kiosk = compose.kiosk_options(config)
    if options.headless or not kiosk.enabled:
        return make()
    from livemask.apps.kiosk_start import take
    from livemask.sinks.kiosk import StartScreen

    screen = take(options.window_name, kiosk) or StartScreen(options.window_name, kiosk)
    return screen.wait_for(make)


def run_cameras(args, config) -> int:
    """Several cameras in this process (docs/cameras.md): per-camera outputs under --output-dir, one window
    with a tile per camera unless headless; exit 4 when a camera failed (the others ran to their end),
    128 + signal when stopped by one, 3 when the window's X connection was lost."""
    from pathlib import Path

    from livemask.apps import compose
    from livemask.core.output_paths import prepare_out_dir
    from livemask.engine.cameras import error_for
    from livemask.engine.sources import quiet_video_backend
    from livemask.sinks.site_log import SiteLog

    compose.check_alerts(config)
    compose.check_mqtt(config)  # a bad mqtt section or a missing paho-mqtt: one line before anything opens
    options = compose.run_options(config)
    names = list(compose.cameras(config))
    if compose.kiosk_options(config).enabled:
        raise ConfigError(f"kiosk mode shows one camera; {len(names)} cameras are configured (use --source)")
    if options.output or options.events:
        raise ConfigError("with cameras the outputs go to --output-dir DIR (DIR/<camera>.jsonl, DIR/<camera>.mp4 "
                          "with --record), not --output/--events")
    if args.record and not args.output_dir:
        raise ConfigError("--record needs --output-dir DIR (the videos are DIR/<camera>.mp4)")
    if not options.headless:
        from livemask.sinks.window import check_display

        check_display()  # before the models load
        compose.check_snapshot_dir(config, options)
    if not args.output_dir:
        log.warning("cameras without --output-dir: results are only counted")
    site_log = None
    if args.output_dir:
        prepare_out_dir(args.output_dir, "--output-dir")
        check_camera_outputs(compose, config, args.output_dir, args.record)
        site_log = SiteLog(Path(args.output_dir) / "site.jsonl")
    quiet_video_backend(getattr(args, "verbose", False))
    stop_event = threading.Event()
    summary = None
    link = compose.mqtt_link(config)  # one MQTT connection: "offline" only when every camera has ended
    try:
        with StopRequest(stop_event) as stop:
            window = clf = None
            if not options.headless:
                import cv2

                # OpenCV's video back-ends are set up once, on first use, and torn down by the C exit handlers
                # registered then; set up now, before the window arms its lost-connection hook, they are torn
                # down after it, so the cameras can still finish their videos when the X connection is lost
                cv2.videoio_registry.getBackends()
                clf = compose.classifier(config, len(names))
                clf.warmup()
                window = compose.site_window(config, names, clf, args.record)
            site = compose.run_site(config, stop_event, args.output_dir, args.record, args.max_frames, stop.reason,
                                    site_log.state if site_log else None,
                                    extra_sinks=window.sinks_for if window else None, classifier_=clf,
                                    display=window, mqtt_link=link)
            if window is not None:
                window.when_lost(lambda: site_display_lost(site, site_log, window))
            summary = site.run()
    finally:
        if link is not None:
            link.finish()
        if site_log is not None:
            site_log.close(summary)
    for name, part in summary["cameras"].items():
        run = part["summary"] or {}
        log.info("camera %s: %s, %s frames processed, %s dropped", name, part["state"],
                 run.get("frames_processed", 0), run.get("dropped", 0))
    if stop.signal is not None:
        log.warning("stopped by %s; outputs are complete", stop.reason())
        return stop.exit_code
    if site.failed:
        raise error_for(site.failed, len(names))
    return 0


def site_display_lost(site, site_log, window) -> int:
    """The window's X connection broke in a run with several cameras: finish every camera's outputs and the
    site log as SIGTERM would (each camera's summary says ``"ended": "display lost"``), say so in one line,
    and give the exit status (Qt then ends the process)."""
    window.ended_by = "display lost"
    summary = site.finish()
    if site_log is not None:
        site_log.close(summary)
    print(f"livemask: error: {DisplayLost.message}", file=sys.stderr, flush=True)
    return DisplayLost.exit_code


def check_camera_outputs(compose, config, output_dir: str, record: bool) -> None:
    """No output under --output-dir may be a camera's own file or folder (an input is never overwritten)."""
    from pathlib import Path

    from livemask.apps.preflight import _local_input
    from livemask.core.output_paths import check_output_file

    inputs = [p for cam in compose.cameras(config).values() for p in _local_input(cam.source)]
    for name in compose.cameras(config):
        video, events = compose.camera_outputs(output_dir, name, record)
        for path in (video, events):
            if path is not None:
                check_output_file(path, inputs, "--output-dir")
    check_output_file(Path(output_dir) / "site.jsonl", inputs, "--output-dir")

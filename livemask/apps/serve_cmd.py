"""``livemask serve``: the browser page and HTTP API (one process, FastAPI + uvicorn).

The composition root of the web package: it reads the config, builds the detector,
classifier and explain suite once, and hands them to :func:`livemask.web.app.create_app`.
Binding any address but loopback needs a token (``LIVEMASK_TOKEN`` or ``--token-file``);
without one the command refuses to start (exit 2), before any model is loaded.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from pathlib import Path

from livemask.core.errors import ConfigError, LivemaskError

log = logging.getLogger(__name__)

TOKEN_ENV = "LIVEMASK_TOKEN"


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1; any other address needs a token)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 = any free port)")
    parser.add_argument("--source", help="live source for the Live page: camera index, video file, rtsp/http(s) URL "
                                         "or image folder (default: no live source)")
    parser.add_argument("--camera", action="append", metavar="NAME=SOURCE",
                        help="one camera of the Site page /site (repeatable; adds to the config's 'cameras' section; "
                             "docs/cameras.md)")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help=f"file holding the access token (default: the {TOKEN_ENV} environment variable)")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="upload limit in MB (default: 10)")
    parser.add_argument("--serialise", choices=("worker", "lock"), default="worker",
                        help="how model calls are serialised: a lane per model (default) or one lock")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token_file: Path | None, environ=os.environ) -> str | None:
    """The token from ``--token-file`` or the environment; refuse a non-loopback host without one."""
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            why = getattr(err, "strerror", None) or err
            raise ConfigError(f"--token-file {token_file}: cannot read ({why})") from None
        if not token:
            raise ConfigError(f"--token-file {token_file}: the file is empty")
    elif environ.get(TOKEN_ENV, "").strip():
        token = environ[TOKEN_ENV].strip()
    if token is None and not is_loopback(host):
        raise ConfigError(f"serve --host {host}: a non-loopback address needs a token "
                          f"(set {TOKEN_ENV} or --token-file)")
    if token is not None and len(token) < 16:
        raise ConfigError(f"the access token must be at least 16 characters (got {len(token)})")
    return token


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, opened before the models load so that a busy port fails fast."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: accepted connections inherit it, and asyncio turns Nagle's algorithm off
    # (TCP_NODELAY) only for sockets that say IPPROTO_TCP; with proto 0 every request after the first on
    # a keep-alive connection waited about 40 ms for the client's delayed ACK (uvicorn issue 3149)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise LivemaskError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    sock.listen(2048)  # connections wait in the backlog until uvicorn serves them
    sock.set_inheritable(True)
    return sock


def command(args, config) -> int:
    from livemask.config import apply_overrides, build

    token = resolve_token(args.host, args.token_file)
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    from livemask.apps import compose

    config = compose.with_cameras(config, getattr(args, "camera", None))
    if getattr(args, "camera", None) and args.source is not None:
        raise ConfigError("give either --source (one source) or --camera NAME=SOURCE (several), not both")
    if args.source is None and compose.cameras(config):
        return serve_cameras(args, config, token)
    capture = None
    if args.source is not None:  # open the source first: a missing file or camera fails before the models load
        from livemask.engine.sources import quiet_video_backend

        quiet_video_backend(getattr(args, "verbose", False))
        # a file plays at its own frame rate, like a camera (frames are dropped, counted, when behind)
        config = apply_overrides(config, {"source.source": args.source, "source.realtime": True}, "command line")
        capture = build(config, "source").make_capture()
        capture.open()
    sock = bind(args.host, args.port)
    live = None
    try:
        import uvicorn

        from livemask.web.app import create_app
        from livemask.web.inference import InferenceRunner

        detector = build(config, "detector")
        classifier = build(config, "classifier")
        classifier.warmup()
        suite = build(config, "explain", classifier=classifier)
        suite.warmup()
        runner = InferenceRunner(detector, classifier, args.serialise)
        runner.warmup()
        from livemask.apps import compose

        # webcam frames: the video input size
        video_detector = compose.detector(config, build(config, "pipeline").detector_long_side)
        hub = None
        if capture is not None:
            from livemask.web.hub import FrameHub

            hub = FrameHub()
            # the people stage as in `run`: pictures left out of the counts, alerts as event lines on the page
            people = compose.people_stage(config, tuple(classifier.class_names))()
            live = LiveRun(compose.engine(config, capture, runner.routed_detector(video_detector),
                                          runner.routed_classifier(classifier), [hub, hub.events],
                                          people=people))
        max_bytes = int(args.max_upload_mb * 1024 * 1024)
        app = create_app(detector, classifier, suite, token=token, max_upload_bytes=max_bytes, hub=hub, runner=runner,
                         video_detector=video_detector, on_shutdown=None if live is None else live.stop)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"livemask: serving on http://{shown}:{port}/" + ("  (token required)" if token else ""), flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=max_bytes,
                                               timeout_graceful_shutdown=2))
        if live is not None:
            live.start()
        server.run(sockets=[sock])
    finally:
        if live is not None:
            live.stop()
        elif capture is not None:
            capture.stop()
        sock.close()
    if live is not None and live.error is not None:
        log.warning("live source ended with an error: %s", live.error)
    return 0


class LiveRun:
    """The live source on the engine (:class:`~livemask.engine.engine.Engine`), in a background thread,
    with the page's frame hub as its sink.

    The engine's detect and classify stages call the models through the server's inference
    runner, so the live source and the API requests take turns on them. A file source is
    paced at its frame rate; frames that arrive while inference is busy are dropped by the
    capture (and counted in the summary the hub shows).
    """

    def __init__(self, engine):
        self.engine = engine
        self.error: BaseException | None = None
        self.summary: dict | None = None
        self._thread = threading.Thread(target=self._run, name="live-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.summary = self.engine.run()
        except Exception as err:  # the page shows the summary; the server keeps answering photo requests
            self.error = err
            log.debug("live source failed", exc_info=True)

    def stop(self) -> None:
        self.engine.stop_event.set()
        if self._thread.ident is None:  # never started: the opened source still needs closing
            self.engine.capture.stop()
        else:
            self._thread.join(timeout=10)


def serve_cameras(args, config, token: str | None) -> int:
    """``serve`` with several cameras: every camera an engine in this process (files paced at their own frame
    rate), each with a frame hub; the Site page at /site. The photo API works as with one source."""
    import uvicorn

    from livemask.apps import compose
    from livemask.config import apply_overrides, build
    from livemask.engine.sources import quiet_video_backend
    from livemask.web.app import create_app
    from livemask.web.hub import FrameHub
    from livemask.web.inference import InferenceRunner
    from livemask.web.site import SiteView

    quiet_video_backend(getattr(args, "verbose", False))
    config = apply_overrides(config, {"source.realtime": True}, "command line")
    sock = bind(args.host, args.port)
    site_thread = None
    stop_event = threading.Event()
    try:
        detector = build(config, "detector")
        classifier = build(config, "classifier")
        classifier.warmup()
        suite = build(config, "explain", classifier=classifier)
        suite.warmup()
        runner = InferenceRunner(detector, classifier, args.serialise)
        runner.warmup()
        video_detector = compose.detector(config, build(config, "pipeline").detector_long_side)
        hubs: dict[str, FrameHub] = {}

        def sinks(name: str) -> list:
            hubs[name] = FrameHub()
            return [hubs[name], hubs[name].events]

        # the cameras' classify calls take turns with the API's in the runner's model lane
        site = compose.run_site(config, stop_event, None, extra_sinks=sinks,
                                classifier_=runner.routed_classifier(classifier), snapshots=False)
        view = SiteView(hubs, site.states)
        max_bytes = int(args.max_upload_mb * 1024 * 1024)
        app = create_app(detector, classifier, suite, token=token, max_upload_bytes=max_bytes, runner=runner,
                         video_detector=video_detector, on_shutdown=stop_event.set, site=view)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"livemask: serving on http://{shown}:{port}/site  ({len(hubs)} cameras)"
              + ("  (token required)" if token else ""), flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=max_bytes,
                                               timeout_graceful_shutdown=2))
        site_thread = threading.Thread(target=site.run, name="site", daemon=True)
        site_thread.start()
        server.run(sockets=[sock])
    finally:
        stop_event.set()
        if site_thread is not None:
            site_thread.join(timeout=15)
        sock.close()
    return 0

"""``livemask serve``: the browser page and HTTP API (one process, FastAPI + uvicorn).

The composition root of the web package: it reads the config, builds the detector and
classifier once, and hands them to :func:`livemask.web.app.create_app` with a loader of the
explain suite: the Keras model and TensorFlow load in a thread of their own, on the first
explain request (default) or right after start-up (``--explain-load background``).
Binding any address but loopback needs a token (``LIVEMASK_TOKEN`` or ``--token-file``);
without one the command refuses to start (exit 2), before any model is loaded. Only the bound
host names (and ``--allowed-host``) are answered, and requests from other websites are refused
(``--allowed-origin`` lists the exceptions); see ``docs/security.md``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
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
    parser.add_argument("--explain-load", choices=("first-request", "background"), default="first-request",
                        help="when the Keras model for explanations (and TensorFlow) loads: on the first explain "
                             "request (default: idle memory stays low) or in the background right after start-up")
    parser.add_argument("--serialise", choices=("worker", "lock"), default="worker",
                        help="how model calls are serialised: a lane per model (default) or one lock")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also answer requests whose Host is NAME (repeatable; default: only 127.0.0.1, "
                             "localhost, [::1] and --host)")
    parser.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                        help="also accept WebSockets and requests from pages of ORIGIN, e.g. "
                             "https://dash.example:8443 (repeatable; default: only the server's own origin)")
    parser.add_argument("--decode-budget-mb", type=float, default=256.0,
                        help="uploads and decoded images held at once by all requests, MB; past it 503 + "
                             "Retry-After (default: 256)")
    parser.add_argument("--ws-max-mb", type=float, default=2.0,
                        help="largest WebSocket message a client may send, MB (default: 2)")
    parser.add_argument("--ws-max-rate", type=float, default=60.0,
                        help="WebSocket messages a client may send per second (default: 60)")
    parser.add_argument("--worker-nice", type=int, default=None, metavar="N",
                        help="decoding and model threads run N nice steps below the thread that answers requests "
                             "(Linux; 0..19; 0 = same priority; default: 10, or 0 with --camera / a cameras section: "
                             "docs/cameras.md)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a client has to send a request's headers (default: 10)")


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
            if token_file.stat().st_size > 4096:
                raise ConfigError(f"--token-file {token_file}: over 4096 bytes; the file must hold one line, the token")
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            why = getattr(err, "strerror", None) or err
            raise ConfigError(f"--token-file {token_file}: cannot read ({why})") from None
        if not token:
            raise ConfigError(f"--token-file {token_file}: the file is empty")
        if "\n" in token or "\r" in token:
            raise ConfigError(f"--token-file {token_file}: the file must hold one line, the token "
                              f"(it has {len(token.splitlines())})")
        if any(not c.isprintable() or c.isspace() for c in token):
            raise ConfigError(f"--token-file {token_file}: the token must be printable, without spaces")
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


def _positive(flag: str, value: float, high: float) -> float:
    if not math.isfinite(value) or not 0 < value <= high:
        raise ConfigError(f"{flag} must be a number in (0, {high:g}], got {value}")
    return value


def check_limits(args) -> None:
    """Every number flag finite and in range; the host and origin lists well formed (exit 2 naming the flag)."""
    from livemask.web.guard import normal_origin, split_host

    _positive("--max-upload-mb", args.max_upload_mb, 1024)
    _positive("--decode-budget-mb", args.decode_budget_mb, 65536)
    _positive("--ws-max-mb", args.ws_max_mb, 100)
    _positive("--ws-max-rate", args.ws_max_rate, 10000)
    _positive("--header-timeout", args.header_timeout, 3600)
    if args.worker_nice is not None and not 0 <= args.worker_nice <= 19:
        raise ConfigError(f"--worker-nice must be an integer in [0, 19], got {args.worker_nice}")
    for name in args.allowed_host:
        parts = split_host(name)
        if parts is None or parts[1] is not None or not parts[0] or not name.isprintable():
            raise ConfigError(f"--allowed-host {name!r}: expected a host name or address without a port")
    for origin in args.allowed_origin:
        if normal_origin(origin) is None or not origin.isprintable():
            raise ConfigError(f"--allowed-origin {origin!r}: expected scheme://host[:port], e.g. https://dash.example")


WORKER_NICE = 10  # --worker-nice's default with one source or none
SITE_WORKER_NICE = 0  # ... and with cameras (docs/cameras.md, "The Site page in Chromium")


def worker_nice(given: int | None, cameras: bool) -> int:
    """``--worker-nice``: as given, else 10, or 0 for a site's cameras: their detect and classify calls partly
    run in the lowered threads, and a browser (or any other busy process) at normal priority on the same
    machine then takes the CPU from them (measured: the cameras' fps with the Site page open, nice 0 against 10)."""
    if given is not None:
        return given
    return SITE_WORKER_NICE if cameras else WORKER_NICE


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.config import apply_overrides

    token = resolve_token(args.host, args.token_file)
    check_limits(args)
    compose.check_mqtt(config)  # a bad mqtt section fails before the models load

    config = compose.with_cameras(config, getattr(args, "camera", None))
    if getattr(args, "camera", None) and args.source is not None:
        raise ConfigError("give either --source (one source) or --camera NAME=SOURCE (several), not both")
    several = args.source is None and bool(compose.cameras(config))
    args.worker_nice = worker_nice(args.worker_nice, several)
    if several:
        return serve_cameras(args, config, token)
    capture = None
    if args.source is not None:  # open the source first: a missing file or camera fails before the models load
        from livemask.engine.sources import quiet_video_backend

        quiet_video_backend(getattr(args, "verbose", False))
        # a file plays at its own frame rate, like a camera (frames are dropped, counted, when behind)
        config = apply_overrides(config, {"source.source": args.source, "source.realtime": True}, "command line")
        capture = compose.capture(config)
        capture.open()
    sock = bind(args.host, args.port)
    live = site = None
    link = compose.mqtt_link(config)  # the process's availability: "offline" when the server stops
    try:
        models = ServedModels.load(args, config)
        hub = None
        if capture is not None:
            from livemask.web.hub import FrameHub

            hub = FrameHub()
            if capture.keep_for_replay():  # a file plays from its first viewer, waits at its end for a replay
                hub.playback = capture
            # the people stage as in `run`: pictures left out of the counts, alerts as event lines on the page
            people = compose.people_stage(config, tuple(models.classifier.class_names))()
            kept = compose.kept_events(config)  # the event lines GET /v1/report reads (None: not kept)
            live = LiveRun(compose.engine(config, capture, models.runner.routed_detector(models.video_detector),
                                          models.runner.routed_classifier(models.classifier),
                                          [hub, hub.events, *([kept] if kept is not None else []),
                                           *compose.mqtt_sinks(config, link=link), models.metrics.camera()],
                                          people=people))
            models.metrics.camera().attach(live.engine)
            tell_playback(capture, live.engine)
        app = make_app(args, config, token, models, hub=hub, on_shutdown=None if live is None else live.stop)
        site = compose.site_watcher(config)
        if site is not None:
            from livemask.web.remote_site import add_site_route

            site.start()
            add_site_route(app, site)
        server = make_server(args, app, sock, token, "/")
        if live is not None:
            live.start()
        stopped_by = run_server(server, sock)
    finally:
        if site is not None:
            site.stop()
        if live is not None:
            live.stop()
        elif capture is not None:
            capture.stop()
        if link is not None:
            link.finish()
        sock.close()
    if live is not None and live.error is not None:
        log.warning("live source ended with an error: %s", live.error)
    return 0 if stopped_by is None else 128 + stopped_by


class ServedModels:
    """What the server loads once: the photo detector, the classifier (warmed up), the explainers' loader
    (the Keras model loads apart from start-up), the inference runner (a lane per model), the detector at
    video size for webcam and camera frames, and the metrics registry with the model load time."""

    def __init__(self, detector, classifier, explainers, runner, video_detector, metrics):
        self.detector, self.classifier, self.explainers = detector, classifier, explainers
        self.runner, self.video_detector, self.metrics = runner, video_detector, metrics

    @classmethod
    def load(cls, args, config, cameras: int = 1) -> ServedModels:
        import time

        from livemask.apps import compose
        from livemask.sinks.metrics import Metrics
        from livemask.web.explaining import ExplainerLoader
        from livemask.web.inference import InferenceRunner

        loading = time.monotonic()
        detector = compose.detector(config)
        classifier = compose.classifier(config, cameras)  # shared by the cameras, if any
        classifier.warmup()
        metrics = Metrics()
        metrics.model_load.set(time.monotonic() - loading)
        # the Keras model (and TensorFlow) load in a thread of their own, never on the start-up path
        explainers = ExplainerLoader(compose.explain_suite_factory(config, classifier))
        runner = InferenceRunner(detector, classifier, args.serialise, args.worker_nice)
        runner.warmup()
        return cls(detector, classifier, explainers, runner, compose.video_detector(config), metrics)


def make_app(args, config, token: str | None, models: ServedModels, hub=None, on_shutdown=None, site=None):
    """The app with the command line's limits and guards, the report page of the kept events and /metrics."""
    from livemask.apps import compose
    from livemask.web.app import create_app
    from livemask.web.live_routes import WebSocketLimits
    from livemask.web.metrics_route import add_metrics_route

    args.ws_limits = WebSocketLimits(int(args.ws_max_mb * 1024 * 1024), args.ws_max_rate)
    app = create_app(models.detector, models.classifier, models.explainers, token=token,
                     max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), hub=hub, runner=models.runner,
                     video_detector=models.video_detector, on_shutdown=on_shutdown, bind_host=args.host,
                     allowed_hosts=tuple(args.allowed_host), allowed_origins=tuple(args.allowed_origin),
                     decode_budget_bytes=int(args.decode_budget_mb * 1024 * 1024), ws_limits=args.ws_limits,
                     site=site)
    report_options = compose.report_options(config)
    if report_options.keep_events:  # the kept events of this and earlier runs, as a report page
        from livemask.web.report_route import add_report_route

        add_report_route(app, report_options.events_dir)
    add_metrics_route(app, models.metrics)
    return app


def make_server(args, app, sock: socket.socket, token: str | None, path: str, note: str = ""):
    """The uvicorn server (header-read timeout, WebSocket size) after the one line that says where it listens."""
    import uvicorn

    from livemask.web.server import server_config

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"livemask: serving on http://{shown}:{port}{path}{note}" + ("  (token required)" if token else ""),
          flush=True)
    # the model runtimes' own threads and the loaders below this thread, which runs the event loop
    from livemask.core.priority import lower_other_threads

    lower_other_threads(args.worker_nice)
    return uvicorn.Server(server_config(app, header_timeout_s=args.header_timeout,
                                        ws_max_bytes=args.ws_limits.max_message_bytes))


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
    rate, from their first viewer, waiting at their end for a replay), each with a frame hub; the Site page at
    /site. The photo API works as with one source."""
    from livemask.apps import compose
    from livemask.config import apply_overrides
    from livemask.engine.sources import quiet_video_backend
    from livemask.web.hub import FrameHub
    from livemask.web.site import SiteView

    quiet_video_backend(getattr(args, "verbose", False))
    config = apply_overrides(config, {"source.realtime": True}, "command line")
    sock = bind(args.host, args.port)
    site_thread = watcher = None
    stop_event = threading.Event()
    link = compose.mqtt_link(config)  # one availability for the process: "offline" when the server stops
    kept = compose.kept_events_file(config)  # one writer of the kept events, every line naming its camera
    try:
        models = ServedModels.load(args, config, len(compose.cameras(config)))
        hubs: dict[str, FrameHub] = {}

        def sinks(name: str) -> list:
            hubs[name] = FrameHub()
            return [hubs[name], hubs[name].events, *compose.camera_kept_events(config, name, kept),
                    models.metrics.camera(name)]

        # the cameras' classify calls take turns with the API's in the runner's model lane
        site = compose.run_site(config, stop_event, None, extra_sinks=sinks,
                                classifier_=models.runner.routed_classifier(models.classifier), snapshots=False,
                                mqtt_link=link)
        keep_files_for_replay(site, hubs)
        view = SiteView(hubs, site.states)
        app = make_app(args, config, token, models, on_shutdown=stop_event.set, site=view)
        watcher = add_remote_site(app, config, view, kept)
        server = make_server(args, app, sock, token, "/site", f"  ({len(hubs)} cameras)")
        site_thread = threading.Thread(target=site.run, name="site", daemon=True)
        site_thread.start()
        stopped_by = run_server(server, sock)
    finally:
        stop_event.set()
        if site_thread is not None:
            site_thread.join(timeout=15)
        if watcher is not None:
            watcher.stop()
        if link is not None:
            link.finish()
        sock.close()
    return 0 if stopped_by is None else 128 + stopped_by


def run_server(server, sock) -> int | None:
    """Serve until SIGINT/SIGTERM; the signal's number, or None.

    uvicorn stops on those signals and, once it has put back the handlers it found, raises the signal again;
    with Python's default handlers that killed the process before ``serve`` could end its cameras, send the
    MQTT ``offline`` and close its kept files. The handlers put in place here only note the signal: the
    command cleans up, then exits with 128 + its number (130, 143), as ``run`` does."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        server.run(sockets=[sock])
        return None
    got: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: got.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return got[0] if got else None


def add_remote_site(app, config, view, kept):
    """``mqtt.site``: the site watcher (started) with ``/v1/site`` and the kept events' trend per camera on the
    Site page (fed by ``kept``, the process's kept-events writer); the watcher, to stop at the end, or None."""
    from livemask.apps import compose
    from livemask.web.remote_site import add_site_route
    from livemask.web.site import add_trend_route

    options = compose.report_options(config)
    if options.keep_events:
        add_trend_route(app, options.events_dir, view, kept)
    watcher = compose.site_watcher(config)
    if watcher is None:
        return None
    watcher.local_cameras = set(view.hubs)  # this process's own cameras are tiles already
    watcher.start()
    add_site_route(app, watcher)
    return watcher


def keep_files_for_replay(site, hubs: dict) -> None:
    """Every file camera of the Site plays from its first viewer and waits at its end for a replay (its hub
    can start and replay it); every hub shows its camera's state."""
    for camera in site.cameras:
        hub = hubs[camera.name]
        hub.state_of = lambda camera=camera: camera.state
        if camera.capture.keep_for_replay():
            hub.playback = camera.capture
            tell_playback(camera.capture, camera.engine)


def tell_playback(capture, engine) -> None:
    """A file kept for replay tells the engine's sinks that follow it (the MQTT state) when it waits for a
    viewer, plays or has ended: no frame reaches them meanwhile."""
    if not capture.replayable:
        return
    for runner in engine.runners:
        listener = getattr(runner.sink, "playback_changed", None)
        if listener is not None:
            capture.playback_listeners.append(listener)
            listener(capture.playback)  # "waiting for a viewer" from the start

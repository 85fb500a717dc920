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
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help=f"file holding the access token (default: the {TOKEN_ENV} environment variable)")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="upload limit in MB (default: 10)")
    parser.add_argument("--serialise", choices=("worker", "lock"), default="worker",
                        help="how model calls are serialised: one worker thread (default) or one lock")


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
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise LivemaskError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    sock.set_inheritable(True)
    return sock


def command(args, config) -> int:
    from livemask.config import build

    token = resolve_token(args.host, args.token_file)
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    sock = bind(args.host, args.port)
    try:
        import uvicorn

        from livemask.web.app import create_app
        from livemask.web.inference import InferenceRunner

        detector = build(config, "detector")
        classifier = build(config, "classifier")
        classifier.warmup()
        suite = build(config, "explain", classifier=classifier)
        suite.warmup()
        hub = live = None
        if args.source is not None:
            hub, live = start_live(config, args.source)
        max_bytes = int(args.max_upload_mb * 1024 * 1024)
        runner = InferenceRunner(detector, classifier, args.serialise)
        runner.warmup()
        app = create_app(detector, classifier, suite, token=token, max_upload_bytes=max_bytes, hub=hub, runner=runner)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"livemask: serving on http://{shown}:{port}/" + ("  (token required)" if token else ""), flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws_max_size=max_bytes,
                                               timeout_graceful_shutdown=2))
        try:
            server.run(sockets=[sock])
        finally:
            if live is not None:
                live.stop()
    finally:
        sock.close()
    return 0


def start_live(config, source: str):
    """Returns (hub, loop); see :class:`LiveLoop` (temporary until the engine lands)."""
    raise LivemaskError("--source: the live page is not available yet")

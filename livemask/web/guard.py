"""Small ASGI middlewares: the Host/Origin check, the access token and the request-body limit.

:class:`HostOriginGuard` stops other websites from reading or driving the server through the
visitor's browser (DNS rebinding, cross-origin pages); see ``docs/security.md``. It runs on
every HTTP request and WebSocket, whatever the route, including routes added later:

* the ``Host`` header must name one of the allowed hosts (:func:`allowed_host_names`), or any
  IP address when the server listens on a wildcard address: DNS rebinding always sends the
  attacker's DNS name. Otherwise 403.
* an ``Origin`` header, when present (browsers send it on every WebSocket, every POST and every
  cross-origin ``fetch``), must be the server's own origin (its host and port equal ``Host``) or
  one listed with ``--allowed-origin``. Otherwise 403 (a WebSocket is refused in the handshake).
* a request a browser marks as coming from another site or origin (``Sec-Fetch-Site:
  cross-site`` or ``same-site``: an ``<img>`` or ``<script>`` of another page, which sends no
  ``Origin``) is refused unless it is a top-level navigation (a link the user follows) or its
  ``Referer`` is an allowed origin.

:class:`TokenGuard` checks a bearer token on every HTTP request and WebSocket except the
page's static assets (plain HTML/CSS/JS, no data): ``Authorization: Bearer TOKEN`` or
``?token=TOKEN`` (for the page and WebSockets, where a browser cannot set headers). The
comparison is constant-time. Without a configured token it lets everything through (the
composition root only allows that on a loopback address).

:class:`BodyLimit` answers 413 when ``Content-Length`` is over the limit, and otherwise
counts the bytes as they arrive and stops reading at the first chunk beyond it, so an
oversize upload is never held in memory or on disk in full.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException

OPEN_PREFIXES = ("/static/", "/favicon.ico")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def presented_token(scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("token")
    return values[0] if values else None


def token_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


async def _send_json(send, status: int, body: dict, extra_headers=()) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def split_host(value: str) -> tuple[str, str | None] | None:
    """``Host`` header or origin netloc -> (host name in lower case, port or None); None when malformed."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/@ \t"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:] if rest else None
    else:
        host, _, port = value.partition(":")
        port = port if _ else None
    if port is not None and not port.isdigit():
        return None
    return host, port


def normal_host(name: str) -> str:
    """A host name as :func:`split_host` gives it: lower case, IPv6 without brackets."""
    name = name.strip().lower()
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def allowed_host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names, the address the server listens on, and the ``--allowed-host`` names."""
    return frozenset({*LOOPBACK_NAMES, normal_host(bind_host), *(normal_host(h) for h in extra)} - {""})


def normal_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or None when ``origin`` is not an http(s) origin."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or split_host(parts.netloc) is None:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def _refuse(scope, receive, send, message: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # closed before it is accepted: the server answers the handshake with HTTP 403
        await send({"type": "websocket.close", "code": 1008, "reason": message})
        return
    await _send_json(send, 403, {"error": message})


class HostOriginGuard:
    """403 for a ``Host`` that is not ours and for a request from another website (module docstring)."""

    def __init__(self, app, bind_host: str = "127.0.0.1", allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = ()):
        self.app = app
        self.hosts = allowed_host_names(bind_host, allowed_hosts)
        self.any_ip = normal_host(bind_host) in WILDCARD_HOSTS
        origins = set()
        for origin in allowed_origins:
            normal = normal_origin(origin)
            if normal is None:
                raise ValueError(f"allowed origin {origin!r} is not scheme://host[:port]")
            origins.add(normal)
        self.origins = frozenset(origins)

    def host_ok(self, host: str | None) -> bool:
        parts = split_host(host) if host is not None else None
        if parts is None:
            return False
        return parts[0] in self.hosts or (self.any_ip and _is_ip(parts[0]))

    def origin_ok(self, origin: str, host: str) -> bool:
        normal = normal_origin(origin)
        if normal is None:
            return False
        return normal in self.origins or normal.split("://", 1)[1] == host.strip().lower()

    def refusal(self, scope) -> str | None:
        """Why the request is refused, or None."""
        host = _header(scope, b"host")
        if not self.host_ok(host):
            return "this server does not answer for that Host (see --allowed-host)"
        origin = _header(scope, b"origin")
        if origin is not None:
            if not self.origin_ok(origin, host):
                return "requests from another website are refused (see --allowed-origin)"
            return None
        site = (_header(scope, b"sec-fetch-site") or "").lower()
        if site in ("cross-site", "same-site"):
            navigation = (_header(scope, b"sec-fetch-mode") == "navigate"
                          and _header(scope, b"sec-fetch-dest") == "document" and scope.get("method") == "GET")
            referer = _header(scope, b"referer")
            if not navigation and not (referer and self.origin_ok(_referer_origin(referer), host)):
                return "requests from another website are refused (see --allowed-origin)"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            why = self.refusal(scope)
            if why is not None:
                await _refuse(scope, receive, send, why)
                return
        await self.app(scope, receive, send)


def _referer_origin(referer: str) -> str:
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}"


class TokenGuard:
    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if (self.token is None or scope["type"] not in ("http", "websocket")
                or scope["path"].startswith(OPEN_PREFIXES)):
            await self.app(scope, receive, send)
            return
        if token_ok(self.token, presented_token(scope)):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "token required"})
            return
        await _send_json(send, 401, {"error": "missing or wrong token (Authorization: Bearer TOKEN or ?token=)"},
                         [(b"www-authenticate", b"Bearer")])


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        message = f"upload over the limit of {self.max_bytes} bytes"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, {"error": message})
            return
        received = 0

        async def counting_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, message)  # re-raised by FastAPI's body parsing
            return msg

        await self.app(scope, counting_receive, send)

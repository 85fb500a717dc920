"""Two small ASGI middlewares: the access token and the request-body limit.

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
import json
from urllib.parse import parse_qs

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

"""The uvicorn server of ``livemask serve``: its config, with a header-read timeout.

uvicorn's HTTP/1.1 protocol (h11) waits for a request's headers as long as the client keeps
the connection open, so a few hundred clients that trickle their headers a byte at a time hold
as many connections for as long as they like. :class:`HeaderTimeoutProtocol` closes a connection
whose request headers are not complete :data:`DEFAULT_HEADER_TIMEOUT_S` seconds after it opened
(or after the previous response on a keep-alive connection). Once a request's headers are in, the
body and the response take as long as they need (the body size is bounded by the app).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
WS_MAX_QUEUE = 4  # WebSocket messages uvicorn buffers per connection before the app reads them


class HeaderTimeoutProtocol(H11Protocol):
    """h11 with a deadline on each request's headers (module docstring)."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    header_timeouts = 0  # connections closed for it, all servers of the process

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def handle_websocket_upgrade(self, event) -> None:
        """A WebSocket's headers are in: the connection is the WebSocket protocol's from now on, and the
        timer must not close it (it did, 10 s after it opened: a Live page's stream stopped there)."""
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        old = getattr(self, "_header_timer", None)
        if old is not None:
            old.cancel()
        waiting_for = self.cycle  # the request before the one whose headers are awaited (None: the first)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline, waiting_for)

    def _header_deadline(self, previous) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.cycle is not previous:
            return  # a new request's headers arrived in time
        if previous is not None and not previous.response_complete:
            return
        type(self).header_timeouts += 1
        self.transport.close()


def protocol_with_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` class with its own timeout (uvicorn takes a class)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": float(seconds)})


def server_config(app, *, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, ws_max_bytes: int = 2 * 1024 * 1024,
                  log_level: str = "warning", timeout_graceful_shutdown: int = 2):
    """The ``uvicorn.Config`` ``serve`` runs ``app`` with."""
    import uvicorn

    # no per-message deflate on WebSockets: what they carry is mostly JPEG (the tiles' mosaics, the Live view's
    # and the webcam's frames), which deflate cannot shrink; it only cost CPU on both ends
    return uvicorn.Config(app, log_level=log_level, http=protocol_with_timeout(header_timeout_s),
                          ws_max_size=int(ws_max_bytes), ws_max_queue=WS_MAX_QUEUE, ws_per_message_deflate=False,
                          timeout_graceful_shutdown=timeout_graceful_shutdown)

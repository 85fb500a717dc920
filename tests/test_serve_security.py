"""``serve`` against other websites and floods (issue 23): the Host/Origin check on every route and
WebSocket (real uvicorn, real Chromium on a page of another origin), the decode budget, the
webcam WebSocket's limits, the header-read timeout and the one image-header reader."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import socket
import struct
import threading
import time

import cv2
import httpx
import numpy as np
import pytest
from servehelpers import ServerThread, chromium_or_skip, encode, page_state

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from starlette.routing import Mount, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.engine.sink import RunInfo

EVIL = "evil.example"


def _result(frame_id: int, image: np.ndarray) -> FrameResult:
    det = Detections(np.array([[10, 10, 60, 70]], np.float32), np.full((1,), 0.9, np.float32))
    preds = Predictions(np.array([[0.9, 0.1]], np.float32), ("mask", "no_mask"))
    return FrameResult(Frame(frame_id, time.monotonic(), image, "test"), det, preds, np.array([1], np.int64))


class FeedingHub:
    """A FrameHub fed a frame every 40 ms from a thread, as the engine would."""

    def __init__(self):
        from livemask.web.hub import FrameHub

        self.hub = FrameHub()
        self.hub.open(RunInfo("test", 25.0, (160, 120), None, True, ("mask", "no_mask")))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)

    def _feed(self) -> None:
        image = np.full((120, 160, 3), 70, np.uint8)
        i = 0
        while not self.stop.wait(0.04):
            result = _result(i, image)
            self.hub.write(result)
            self.hub.events.write(result)
            i += 1

    def __enter__(self):
        self.thread.start()
        return self.hub

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def live_server(detector, classifier):
    from livemask.web.app import create_app

    with FeedingHub() as hub:
        app = create_app(detector, classifier, None, hub=hub)
        with ServerThread(app) as srv:
            srv.app = app
            yield srv


def ws_handshake(port: int, path: str, host: str, origin: str | None = None) -> int:
    """The HTTP status a WebSocket handshake gets (101 when accepted)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
        if origin is not None:
            req += f"Origin: {origin}\r\n"
        s.sendall((req + "\r\n").encode())
        head = s.recv(4096)
    return int(head.split(b"\r\n", 1)[0].split()[1])


# --------------------------------------------------------------------------- every route
def test_every_route_and_websocket_refuses_a_foreign_host_and_origin(live_server):
    """Enumerates app.routes, so a route added later (another page, /metrics, ...) is checked too."""
    port, url = live_server.port, live_server.url
    checked = 0
    for route in live_server.app.routes:
        path = route.path.replace("{", "").replace("}", "")
        if isinstance(route, WebSocketRoute):
            own = f"127.0.0.1:{port}"
            assert ws_handshake(port, path, f"{EVIL}:{port}") == 403, path
            assert ws_handshake(port, path, own, origin=f"http://{EVIL}") == 403, path
            assert ws_handshake(port, path, own, origin=f"http://127.0.0.1:{port + 1}") == 403, path
            assert ws_handshake(port, path, own, origin="null") == 403, path
            assert ws_handshake(port, path, own, origin=f"http://{own}") == 101, path  # the page's own origin
            checked += 1
            continue
        if isinstance(route, Mount):
            methods, path = {"GET"}, path.rstrip("/") + "/app.js"
        else:
            methods = route.methods
        for method in methods:
            for headers in ({"Host": EVIL}, {"Host": f"{EVIL}:{port}"}, {"Host": f"localhost.{EVIL}"},
                            {"Origin": f"http://{EVIL}"}, {"Origin": f"http://127.0.0.1:{port + 1}"},
                            {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}):
                r = httpx.request(method, url + path, headers=headers, timeout=10)
                assert r.status_code == 403, (method, path, headers, r.status_code)
                assert "access-control-allow-origin" not in r.headers
            checked += 1
    assert checked >= 10
    # our own names and origin are served
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert httpx.get(url + "/v1/summary", headers={"Host": host}).status_code == 200, host
    r = httpx.get(url + "/v1/summary", headers={"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200
    # a link followed from another site opens the page (the other site cannot read it)
    r = httpx.get(url + "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                                      "Sec-Fetch-Dest": "document"})
    assert r.status_code == 200


def test_allowed_host_and_origin_options(detector, classifier):
    from livemask.web.app import create_app

    app = create_app(detector, classifier, None, allowed_hosts=("cams.lan",),
                     allowed_origins=("https://dash.example:8443",))
    with TestClient(app, base_url="http://cams.lan:8000") as client:
        assert client.get("/v1/summary").status_code == 200
        assert client.get("/v1/summary", headers={"Origin": "https://dash.example:8443"}).status_code == 200
        assert client.get("/v1/summary", headers={"Origin": "https://dash.example"}).status_code == 403
        assert client.get("/v1/summary", headers={"Host": "other.lan"}).status_code == 403
    # a wildcard bind answers IP addresses (no DNS name, so no rebinding), still not foreign names
    with TestClient(create_app(detector, classifier, None, token=None, bind_host="0.0.0.0"),
                    base_url="http://192.168.1.20:8000") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"Host": EVIL}).status_code == 403


# --------------------------------------------------------------------------- Chromium
ATTACK_PAGE = """<!doctype html><html><body><img id="mjpg"><script>
const target = "http://127.0.0.1:%(port)d";
window.results = {ws_live: 0, ws_webcam: "none", fetch: "none", nocors: "none", post: "none", img: "none",
                  ws_live_closed: false};
const live = new WebSocket(target.replace("http", "ws") + "/v1/live");
live.onmessage = () => { window.results.ws_live += 1; };
live.onclose = () => { window.results.ws_live_closed = true; };
const cam = new WebSocket(target.replace("http", "ws") + "/v1/webcam");
cam.onopen = () => { window.results.ws_webcam = "open"; };
cam.onmessage = () => { window.results.ws_webcam = "message"; };
cam.onerror = () => { if (window.results.ws_webcam === "none") window.results.ws_webcam = "error"; };
fetch(target + "/v1/summary").then(r => r.text()).then(t => { window.results.fetch = t; },
                                                          e => { window.results.fetch = "error"; });
fetch(target + "/v1/summary", {mode: "no-cors"}).then(r => { window.results.nocors = r.type; },
                                                      e => { window.results.nocors = "error"; });
const form = new FormData();
form.append("file", new Blob([new Uint8Array(%(png)s)], {type: "image/png"}), "x.png");
fetch(target + "/v1/image", {method: "POST", body: form, mode: "no-cors"}).then(
  r => { window.results.post = r.type; }, e => { window.results.post = "error"; });
const img = document.getElementById("mjpg");
img.onload = () => { window.results.img = "loaded " + img.naturalWidth; };
img.onerror = () => { window.results.img = "error"; };
img.src = target + "/v1/stream.mjpg";
</script></body></html>"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as p:
        # evil.example resolves to 127.0.0.1 in this browser: a DNS rebinding attack, without DNS
        b = p.chromium.launch(executable_path=executable, headless=True,
                              args=[f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"])
        yield b
        b.close()


def _serve_page(html: str):
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_page_of_another_origin_in_chromium_gets_nothing(live_server, browser, astronaut_bgr):
    pytest.importorskip("playwright")
    stats = live_server.app.state.stats
    images_before = stats.requests["image"]
    png = list(encode(cv2.resize(astronaut_bgr, (64, 64)), ".png"))
    attacker = _serve_page(ATTACK_PAGE % {"port": live_server.port, "png": json.dumps(png)})
    context = browser.new_context()
    page = context.new_page()
    try:
        # control: the server's own page gets live frames over the same WebSocket
        page.goto(live_server.url + "/healthz")
        own = page.evaluate("""() => new Promise(done => { let n = 0;
            const ws = new WebSocket(location.origin.replace("http", "ws") + "/v1/live");
            ws.onmessage = () => { n += 1; if (n === 4) { ws.close(); done(n); } };
            setTimeout(() => done(n), 10000); })""")
        assert own == 4
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        with page_state(page, "cross-origin-attack"):
            page.wait_for_function("""() => { const r = window.results; return r.fetch !== "none"
                && r.nocors !== "none" && r.post !== "none" && r.img !== "none" && r.ws_live_closed
                && r.ws_webcam !== "none"; }""", timeout=20_000)
            time.sleep(1.0)  # frames a WebSocket would get keep coming every 40 ms
            results = page.evaluate("window.results")
        assert results["ws_live"] == 0, results
        assert results["ws_webcam"] == "error", results
        assert results["fetch"] == "error", results  # no CORS headers, and a 403
        assert results["img"] == "error", results  # the MJPEG stream is refused, not shown
        assert stats.requests["image"] == images_before, "the cross-origin POST reached /v1/image"
        # DNS rebinding: the attacker's name now points at the server; the page and the API refuse it
        response = page.goto(f"http://{EVIL}:{live_server.port}/")
        assert response.status == 403
        status = page.evaluate("() => fetch('/v1/summary').then(r => r.status)")
        assert status == 403
        frames = page.evaluate("""() => new Promise(done => { let n = 0;
            const ws = new WebSocket(location.origin.replace("http", "ws") + "/v1/live");
            ws.onmessage = () => { n += 1; }; ws.onclose = () => done(n); ws.onerror = () => done(n);
            setTimeout(() => done(n), 5000); })""")
        assert frames == 0
    finally:
        context.close()
        attacker.shutdown()


# --------------------------------------------------------------------------- decode budget
def _flat_png(size: int) -> bytes:
    return encode(np.full((size, size, 3), 128, np.uint8), ".png")


def test_concurrent_large_uploads_past_the_decode_budget_get_503_retry_after(detector, classifier):
    from livemask.web.app import create_app

    data = _flat_png(1500)  # a few KB, 6.75 MB decoded
    budget = 3 * 1500 * 1500 + len(data) + 1000  # one at a time
    app = create_app(detector, classifier, None, decode_budget_bytes=budget)
    with ServerThread(app) as srv:
        def post(_):
            r = httpx.post(srv.url + "/v1/image", files={"file": ("big.png", data, "image/png")}, timeout=120)
            return r.status_code, r.headers.get("retry-after"), r.json()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(8)))
        statuses = [a[0] for a in answers]
        assert set(statuses) <= {200, 503}, answers
        assert 200 in statuses and 503 in statuses, statuses
        for status, retry, body in answers:
            if status == 503:
                assert retry == "1" and body["error"].startswith("busy"), (retry, body)
            else:
                assert (body["width"], body["height"]) == (1500, 1500)
        decode = httpx.get(srv.url + "/v1/summary").json()["decode"]
        assert decode["in_use_mb"] == 0 and decode["refused"] == statuses.count(503)
        assert decode["peak_mb"] <= budget / 2**20 + 0.1
        # once the others are done, the same upload is served
        assert post(0)[0] == 200


def test_webcam_websocket_message_size_and_rate_limits(detector, classifier, astronaut_bgr):
    from livemask.web.app import create_app
    from livemask.web.live_routes import WebSocketLimits

    app = create_app(detector, classifier, None, ws_limits=WebSocketLimits(64 * 1024, 5.0))
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as err, client.websocket_connect("ws://127.0.0.1/v1/webcam") as ws:
            ws.send_bytes(b"\xff\xd8" + b"\0" * (64 * 1024))
            ws.receive_text()
        assert err.value.code == 1009
        frame = encode(cv2.resize(astronaut_bgr, (160, 160)))
        with pytest.raises(WebSocketDisconnect) as err, client.websocket_connect("ws://127.0.0.1/v1/webcam") as ws:
            for _ in range(20):
                ws.send_bytes(frame)
            while True:
                ws.receive_text()
        assert err.value.code == 1008
    with pytest.raises(Exception, match="max_message_bytes"):
        WebSocketLimits(0, 5.0)
    with pytest.raises(Exception, match="max_messages_per_s"):
        WebSocketLimits(4096, float("nan"))


# --------------------------------------------------------------------------- header timeout
def test_connections_that_trickle_headers_are_closed_after_the_header_timeout(detector, classifier):
    from livemask.web.app import create_app
    from livemask.web.server import server_config

    app = create_app(detector, classifier, None)
    with ServerThread(app, config=server_config(app, header_timeout_s=1.0)) as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
        started = time.monotonic()
        closed = [None] * len(socks)
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        for i in range(len(request)):
            for k, s in enumerate(socks):
                if closed[k] is None:
                    try:
                        s.sendall(request[i:i + 1])
                    except OSError:
                        closed[k] = time.monotonic() - started
            if all(c is not None for c in closed) or time.monotonic() - started > 6:
                break
            time.sleep(0.05)
        for k, s in enumerate(socks):
            if closed[k] is None:
                s.settimeout(0.5)
                try:
                    if s.recv(1) == b"":
                        closed[k] = time.monotonic() - started
                except TimeoutError:
                    pass  # still open
                except OSError:  # reset by the server
                    closed[k] = time.monotonic() - started
            s.close()
        assert all(c is not None and c < 4.0 for c in closed), closed
        # a request whose headers come in time is answered, also after a keep-alive pause under the timeout
        with httpx.Client(base_url=srv.url) as client:
            assert client.get("/healthz").status_code == 200
            time.sleep(0.5)
            assert client.get("/healthz").status_code == 200


def test_a_websocket_outlives_the_header_timeout(detector, classifier):
    """The header timer belongs to the HTTP request: a WebSocket upgraded from it stays open (it was closed
    at the header timeout, so a Live page's stream stopped after 10 s)."""
    from websockets.sync.client import connect

    from livemask.web.app import create_app
    from livemask.web.server import server_config

    app = create_app(detector, classifier, None)
    with ServerThread(app, config=server_config(app, header_timeout_s=1.0)) as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/v1/webcam", open_timeout=10) as ws:
            ws.send(b"not a jpeg")
            assert "error" in json.loads(ws.recv(timeout=10))
            time.sleep(2.5)  # well past the header timeout
            ws.send(b"still not a jpeg")
            assert "error" in json.loads(ws.recv(timeout=10))


# --------------------------------------------------------------------------- header reader
def os2_bmp(width: int, height: int) -> bytes:
    """A 24-bit OS/2 (BITMAPCOREHEADER, 12-byte) BMP, grey."""
    row = width * 3 + (-width * 3) % 4
    pixels = bytes([120]) * (row * height)
    offset = 14 + 12
    return (b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
            + struct.pack("<IHHHH", 12, width, height, 1, 24) + pixels)


def test_an_os2_bmp_is_read_by_the_server_as_by_the_command_line(live_server, tmp_path):
    from livemask.core.images import read_image

    data = os2_bmp(64, 64)
    path = tmp_path / "os2.bmp"
    path.write_bytes(data)
    assert read_image(path).shape == (64, 64, 3)  # the command line
    r = httpx.post(live_server.url + "/v1/image", files={"file": ("os2.bmp", data, "image/bmp")}, timeout=60)
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (64, 64)

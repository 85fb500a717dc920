"""``livemask serve`` API: FastAPI's TestClient and a real uvicorn on a free port, real model and photos."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import re
import select
import socket
import struct
import subprocess
import sys
import zlib

import cv2
import httpx
import numpy as np
import pytest
from servehelpers import ROOT, ServerThread, encode, masked_photos

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from livemask.core.records import face_records
from livemask.web.imagecheck import header_size

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def suite(classifier):
    from livemask.explain.suite import ExplainSuite

    return ExplainSuite(classifier)


@pytest.fixture(scope="session")
def app(detector, classifier, suite):
    from livemask.web.app import create_app

    return create_app(detector, classifier, suite)


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as c:  # the Host check answers only our names
        yield c


@pytest.fixture(scope="session")
def server(app):
    with ServerThread(app) as srv:
        yield srv


def expected_records(detector, classifier, image):
    det = detector.detect(image)
    return face_records(det, classifier.classify(image, det))


def upload(data: bytes, name: str = "photo.jpg"):
    return {"file": (name, data, "application/octet-stream")}


def test_summary_gives_the_class_names_in_words(client, classifier):
    body = client.get("/v1/summary").json()
    names = body["display_names"]
    assert list(names) == body["class_names"] == list(classifier.class_names)
    assert names["no_mask"] == "No mask" and not any("_" in words for words in names.values())


def test_astronaut_is_an_unmasked_face(client, detector, classifier, astronaut_bgr):
    r = client.post("/v1/image", files=upload(encode(astronaut_bgr, ".png"), "astronaut.png"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (512, 512)
    assert body["class_names"] == list(classifier.class_names)
    faces = body["faces"]
    assert len(faces) == 1
    face = faces[0]
    assert face["label"] == "no_mask" and face["probability"] > 0.8
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 300 and 30 < y1 < y2 < 220  # her face, not the flag or the suit
    assert set(face["probabilities"]) == set(classifier.class_names)
    # the same records as `image --json`: the same detector and classifier on the same pixels
    assert faces == expected_records(detector, classifier, astronaut_bgr)


def test_real_masked_photos_are_labelled_mask(client, detector, classifier, data_dir):
    from livemask.core.images import read_image

    photos = masked_photos(data_dir, detector)
    assert len(photos) >= 4
    labels = []
    for name, data in photos:
        r = client.post("/v1/image", files=upload(data, name))
        assert r.status_code == 200, r.text
        faces = r.json()["faces"]
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert faces == expected_records(detector, classifier, image), name
        assert image.shape == read_image(data_dir / "faces" / "with_mask" / name).shape
        largest = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
        labels.append(largest["label"])
    assert labels.count("mask") >= len(labels) - 1, labels


def test_explain_returns_maps_for_both_methods(client, classifier, astronaut_bgr):
    r = client.post("/v1/explain?method=all&arrays=true", files=upload(encode(astronaut_bgr)))
    assert r.status_code == 200, r.text
    body = r.json()
    face = body["faces"][0]
    assert face["label"] == "no_mask"
    assert [e["method"] for e in face["explanations"]] == ["gradcam", "occlusion"]
    size = classifier.input_size
    for e in face["explanations"]:
        assert e["target"] == "no_mask"
        overlay = cv2.imdecode(np.frombuffer(base64.b64decode(e["overlay_png"]), np.uint8), cv2.IMREAD_COLOR)
        assert overlay is not None and overlay.shape[2] == 3 and overlay.std() > 5
        m = np.asarray(e["map"], np.float32)
        assert m.shape == (size, size)
        assert m.min() >= 0 and m.max() == pytest.approx(1.0, abs=1e-3)
        f = e["faithfulness"]
        assert 0 <= f["deletion_auc"] <= 1 and f["ratio"] == pytest.approx(
            f["deletion_auc"] / f["random_deletion_auc"], rel=0.01, abs=1e-3)
    legend = cv2.imdecode(np.frombuffer(base64.b64decode(body["legend_png"]), np.uint8), cv2.IMREAD_COLOR)
    assert legend.shape[1] > legend.shape[0]
    crop = cv2.imdecode(np.frombuffer(base64.b64decode(face["crop_png"]), np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None


def test_explain_one_face_for_a_named_target_without_arrays(client, astronaut_bgr):
    r = client.post("/v1/explain?method=gradcam&target=mask&face=0", files=upload(encode(astronaut_bgr)))
    assert r.status_code == 200, r.text
    face = r.json()["faces"][0]
    assert face["index"] == 0
    (entry,) = face["explanations"]
    assert entry["method"] == "gradcam" and entry["target"] == "mask" and entry["target_probability"] < 0.2
    assert "map" not in entry
    r = client.post("/v1/explain?face=3", files=upload(encode(astronaut_bgr)))
    assert r.status_code == 422 and "1 face" in r.json()["error"]


@pytest.mark.parametrize("query, fragment", [("target=hat", "not a class of the model"),
                                             ("method=lime", "method"), ("face=-1", "face")])
def test_explain_bad_parameters_are_json_422(client, astronaut_bgr, query, fragment):
    r = client.post(f"/v1/explain?{query}", files=upload(encode(astronaut_bgr)))
    assert r.status_code == 422
    assert fragment in r.json()["error"]


def test_text_file_named_jpg_is_415(client):
    text = (ROOT / "README.md").read_bytes()
    r = client.post("/v1/image", files=upload(text, "photo.jpg"))
    assert r.status_code == 415
    assert r.json()["error"].startswith("not an image")


def test_truncated_image_is_415_not_500(client, astronaut_bgr):
    data = encode(astronaut_bgr, ".png")
    r = client.post("/v1/image", files=upload(data[:200], "cut.png"))
    assert r.status_code == 415, r.text
    assert "cannot be decoded" in r.json()["error"]


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_pixel_limit_is_checked_before_decoding(client):
    r = client.post("/v1/image", files=upload(_png_header(30000, 30000) + b"\0" * 100, "huge.png"))
    assert r.status_code == 413
    assert "900000000 pixels" in r.json()["error"]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_header_size_matches_the_decoded_image(astronaut_bgr, ext):
    image = astronaut_bgr[:301, :457]
    fmt, w, h = header_size(encode(image, ext))
    assert (fmt.lower(), w, h) == (ext[1:].replace('jpg', 'jpeg'), 457, 301)


def test_oversize_with_content_length_is_413(client):
    r = client.post("/v1/image", files=upload(b"\xff\xd8" + b"\0" * (10 * 1024 * 1024), "big.jpg"))
    assert r.status_code == 413
    assert "limit" in r.json()["error"]


def test_oversize_streamed_without_length_is_refused_while_streaming(server):
    """Chunked upload, no Content-Length: the server answers 413 after about 10 MB, long before the end."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = (b"POST /v1/image HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n")
    part = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n")

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    sock.sendall(head + chunk(part))
    block, sent, total = b"\0" * 65536, 0, 40 * 1024 * 1024
    while sent < total:
        if select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(chunk(block))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(block)
    reply = sock.recv(65536)
    sock.close()
    assert reply.split(b"\r\n")[0].split()[1] == b"413", reply[:200]
    assert sent < 24 * 1024 * 1024, f"server read {sent} bytes before refusing"


def test_health_summary_and_no_cors(client):
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/v1/summary", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403  # another website: refused (docs/security.md), and no CORS headers
    assert not any(k.lower().startswith("access-control") for k in r.headers)
    r = client.get("/v1/summary")
    assert r.status_code == 200
    assert not any(k.lower().startswith("access-control") for k in r.headers)
    s = r.json()
    assert s["requests"]["image"] >= 0 and s["inference"]["mode"] == "worker" and s["live"] is None
    assert s["detector"]["name"] == "centerface" and s["detector"]["precision"] == "float32"
    r = client.options("/v1/image", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_page_and_static_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>livemask</title>" in page.text
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}


def test_real_uvicorn_answers_labels(server, astronaut_bgr):
    r = httpx.post(server.url + "/v1/image", files=upload(encode(astronaut_bgr)), timeout=60)
    assert r.status_code == 200
    assert [f["label"] for f in r.json()["faces"]] == ["no_mask"]


def test_twenty_concurrent_uploads_all_answered_correctly(server, detector, classifier, astronaut_bgr):
    flipped = np.ascontiguousarray(astronaut_bgr[:, ::-1])
    small = cv2.resize(astronaut_bgr, (320, 320))
    images = [astronaut_bgr, flipped, small]
    expected = [expected_records(detector, classifier, cv2.imdecode(np.frombuffer(encode(im), np.uint8),
                                                                    cv2.IMREAD_COLOR)) for im in images]

    def post(i):
        r = httpx.post(server.url + "/v1/image", files=upload(encode(images[i % 3]), f"p{i}.jpg"), timeout=120)
        return i, r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(post, range(20)))
    for i, status, body in results:
        assert status == 200, body
        assert body["faces"] == expected[i % 3], i


# ------------------------------------------------------------------------------- token
@pytest.fixture(scope="module")
def guarded_server(detector, classifier):
    """A server with a token, bound to 0.0.0.0 (only to check the rule); all traffic goes to 127.0.0.1."""
    from livemask.web.app import create_app

    with ServerThread(create_app(detector, classifier, None, token=TOKEN), host="0.0.0.0") as srv:
        yield srv


def test_token_required_on_every_api_call(guarded_server, astronaut_bgr):
    url = guarded_server.url
    for path in ("/healthz", "/v1/summary", "/"):
        assert httpx.get(url + path).status_code == 401
        assert httpx.get(url + path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        assert httpx.get(url + path, params={"token": TOKEN[:-1]}).status_code == 401
        assert httpx.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(url + path, params={"token": TOKEN}).status_code == 200
    r = httpx.post(url + "/v1/image", files=upload(encode(astronaut_bgr)))
    assert r.status_code == 401 and "token" in r.json()["error"]
    r = httpx.post(url + "/v1/image", files=upload(encode(astronaut_bgr)), headers={"Authorization": f"Bearer {TOKEN}"},
                   timeout=60)
    assert r.status_code == 200 and r.json()["faces"][0]["label"] == "no_mask"
    # the page's assets carry no data and load without the token
    assert httpx.get(url + "/static/app.js").status_code == 200
    # the explain suite was not given: a clear 503, not a crash
    r = httpx.post(url + "/v1/explain", files=upload(encode(astronaut_bgr)), params={"token": TOKEN})
    assert r.status_code == 503


def _cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "livemask", "serve", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_serve_refuses_a_public_address_without_token():
    env = {k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"}
    proc = _cli("--host", "0.0.0.0", "--port", "0", env=env)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("livemask:")]
    assert lines == ["livemask: error: serve --host 0.0.0.0: a non-loopback address needs a token "
                     "(set LIVEMASK_TOKEN or --token-file)"]
    assert "Traceback" not in proc.stderr


def test_serve_refuses_an_empty_token_file(tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    proc = _cli("--host", "0.0.0.0", "--port", "0", "--token-file", empty)
    assert proc.returncode == 2 and "the file is empty" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_with_token_file_on_a_public_address(tmp_path, astronaut_bgr):
    """The real command: bound to 0.0.0.0 with a token file; requests (to 127.0.0.1) need the token."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--host", "0.0.0.0", "--port", "0",
                             "--token-file", str(token_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"serving on http://0\.0\.0\.0:(\d+)/\s+\(token required\)", line)
        assert m, (line, proc.poll())
        assert TOKEN not in line
        url = f"http://127.0.0.1:{m.group(1)}"
        assert httpx.get(url + "/healthz").status_code == 401
        assert httpx.get(url + "/healthz", headers={"Authorization": "Bearer nope"}).status_code == 401
        r = httpx.post(url + "/v1/image", files=upload(encode(astronaut_bgr)), params={"token": TOKEN}, timeout=60)
        assert r.status_code == 200 and r.json()["faces"][0]["label"] == "no_mask"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert TOKEN not in out + err


def test_the_served_connections_send_without_waiting_for_acks():
    """``serve`` binds its own listening socket; asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    connections whose socket says IPPROTO_TCP. Without it, every request after the first on a keep-alive
    connection waited for the client's delayed ACK (about 40 ms on Linux)."""
    import asyncio

    from livemask.apps.serve_cmd import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            seen.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one():
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.read()  # the server closes after looking at the socket
            writer.close()

    asyncio.run(asyncio.wait_for(accept_one(), 20))
    assert seen and seen[0] != 0

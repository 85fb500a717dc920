"""Issue 26: ``livemask serve`` with several cameras: the Site page in Debian's Chromium, and its API.

The server is the real command (``livemask serve --camera ...``) in its own process: two file cameras
(paced at their frame rate), a short file, a real MJPEG-over-HTTP camera on 127.0.0.1 (stopped and
restarted by a test) and one that cannot be opened.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from livehelpers import MODEL, MjpegServer, start_serve, stop_process, write_clip
from servehelpers import chromium_or_skip, page_state

pytest.importorskip("playwright")
pytest.importorskip("fastapi")

NAMES = ["front", "back", "door", "short", "gone"]
GONE = "/nonexistent/livemasktests/backdoorcameras/entrancecamera.mp4"  # longer than a tile's line, no hyphens
LIVE = ["front", "back", "door"]


class SiteServer:
    def __init__(self, url: str, door: MjpegServer, before_viewers: dict):
        self.url, self.door, self.before_viewers = url, door, before_viewers


@pytest.fixture(scope="module")
def site_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    front = write_clip(tmp / "front.mp4", 900, fps=15)  # 60 s: live through the module's tests
    back = write_clip(tmp / "back.mp4", 900, fps=15)
    short = write_clip(tmp / "short.mp4", 30, fps=15)  # 2 s: ended long before a late viewer comes
    door = MjpegServer(fps=15).start()
    proc, url = start_serve("--set", f"classifier.model_path={MODEL}", "--set", "source.reconnect_tries=1000",
                            "--camera", f"front={front}", "--camera", f"back={back}", "--camera", f"door={door.url}",
                            "--camera", f"short={short}", "--camera", f"gone={GONE}")
    try:
        # /v1/summary is not a viewer: the file cameras wait for one, the stream camera plays
        deadline = time.monotonic() + 60
        while True:
            before = {c["name"]: c for c in get_json(url + "/v1/summary")["cameras"]["cameras"]}
            opened = all(not before[n]["state"].startswith("connecting") for n in ("front", "back", "short"))
            if (before["door"]["frames"] > 0 and opened) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # a file that played without a viewer would have frames by now
        before = {c["name"]: c for c in get_json(url + "/v1/summary")["cameras"]["cameras"]}
        yield SiteServer(url, door, before)
    finally:
        stop_process(proc)
        door.stop()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def wait_for_states(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cams = {c["name"]: c for c in get_json(url + "/v1/cameras")["cameras"]}
        if all(cams[n]["frames"] > 2 for n in LIVE) and cams["gone"]["state"].startswith("failed"):
            return cams
        time.sleep(0.2)
    raise AssertionError(f"cameras not live: {cams}")


def wait_for_state(url: str, name: str, prefix: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cam = next(c for c in get_json(url + "/v1/cameras")["cameras"] if c["name"] == name)
        if cam["state"].startswith(prefix):
            return cam
        time.sleep(0.2)
    raise AssertionError(f"camera {name} never {prefix}: {cam}")


def test_a_file_camera_waits_for_its_first_viewer(site_server):
    before = site_server.before_viewers
    for name in ("front", "back", "short"):
        assert before[name]["state"] == "waiting for a viewer" and before[name]["frames"] == 0, before[name]
    assert before["door"]["state"] == "live" and before["door"]["frames"] > 0  # a stream is live anyway
    assert before["door"]["replayable"] is False and before["front"]["replayable"] is True


def test_api_lists_cameras_streams_one_and_filters_events(site_server):
    url = site_server.url
    cams = wait_for_states(url)
    assert list(cams) == NAMES
    assert cams["front"]["state"] == "live" and cams["front"]["fps"] > 0
    assert cams["gone"]["state"].startswith("failed: ") and "no such video file" in cams["gone"]["state"]
    summary = get_json(url + "/v1/summary")
    assert [c["name"] for c in summary["cameras"]["cameras"]] == NAMES
    assert summary["live"] is None
    for path in ("/v1/cameras/front/stream.mjpg", "/v1/stream.mjpg?camera=front"):  # one helper serves both
        with urllib.request.urlopen(url + path, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = r.read(4096)
            assert head.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in head
    with urllib.request.urlopen(url + "/v1/events?camera=back", timeout=10) as r:
        lines = []
        while len(lines) < 5:
            line = r.readline().decode()
            if line.startswith("data: "):
                lines.append(json.loads(line[6:]))
    assert all(x["camera"] == "back" for x in lines) and all("frame_id" in x or "alert" in x for x in lines)
    for path in ("/v1/cameras/nope/stream.mjpg", "/v1/cameras/nope/frame.jpg", "/v1/events?camera=nope",
                 "/v1/stream.mjpg?camera=nope"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + path, timeout=10)
        assert info.value.code == 404 and "nope" in json.loads(info.value.read())["error"]
    for path, code, words in (("/v1/live/replay?camera=nope", 404, "nope"),
                              ("/v1/live/replay?camera=door", 409, "not a file"),
                              ("/v1/live/replay?camera=front", 409, "has not ended"),
                              ("/v1/live/replay", 404, "camera")):
        request = urllib.request.Request(url + path, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == code and words in json.loads(info.value.read())["error"], path


def tile_loads(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.tile')].map(
        t => [t.dataset.camera, Number(t.dataset.loaded || 0)]))""")


def test_mosaic_layout_rows_of_tiles():
    from livemask.web.mosaic import Place, compose, layout

    places, w, h = layout([(320, 240)] * 5 + [(320, 180)], columns=4)
    assert (w, h) == (1280, 480)
    assert places[3] == Place(960, 0, 320, 240) and places[4] == Place(0, 240, 320, 240)
    assert places[5] == Place(320, 240, 320, 180)
    assert layout([]) == ([], 0, 0)
    import numpy as np

    tiles = [np.full((240, 320, 3), v, np.uint8) for v in (40, 200)]
    jpeg, places = compose(tiles)
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (240, 640)
    assert abs(image[:, :320].mean() - 40) < 3 and abs(image[:, 320:].mean() - 200) < 3


def test_site_page_shows_every_tile_updating_and_a_click_opens_the_live_view(site_server):
    from playwright.sync_api import sync_playwright

    url = site_server.url
    wait_for_states(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url + "/site")
        with page_state(page, "site-grid"):
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.locator(".tile").count() == len(NAMES)
            assert page.inner_text(".tile[data-camera='gone'] .tile-state").startswith("failed: ")
            # the failed camera's long line wraps after a "/" or a space, never inside a folder's or file's name
            after = page.evaluate("""() => {
                const el = document.querySelector(".tile[data-camera='gone'] .tile-state");
                const text = el.textContent, breaks = [];
                let top = null, at = 0;
                for (const node of el.childNodes) {
                    if (node.nodeType !== Node.TEXT_NODE) continue;
                    for (let i = 0; i < node.data.length; i++, at++) {
                        const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                        const rect = r.getClientRects()[0];
                        if (!rect || !rect.width) continue;
                        if (top !== null && rect.top > top + 2) breaks.push(text[at - 1]);
                        top = rect.top;
                    }
                }
                return breaks; }""")
            assert after and set(after) <= {"/", " "}, after
            assert page.inner_text(".tile[data-camera='front'] .tile-state") == "live"
            assert page.inner_text("#total-cameras") == str(len(NAMES))
            # every live tile keeps getting new frames, at 5 a second or more (the grid asks every 100 ms)
            page.wait_for_function("""() => ['front', 'back', 'door'].every(
                n => Number(document.querySelector(`.tile[data-camera='${n}']`).dataset.loaded || 0) >= 3)""",
                                   timeout=30_000)
            first, started = tile_loads(page), time.monotonic()
            page.wait_for_timeout(4000)
            last, elapsed = tile_loads(page), time.monotonic() - started
            rates = {n: (last[n] - first[n]) / elapsed for n in LIVE}
            assert all(r >= 5.0 for r in rates.values()), rates
            page.wait_for_selector("#site-events li[data-camera='front']", timeout=20_000)
            page.wait_for_selector("#site-events li[data-camera='back']", timeout=20_000)
            texts = page.locator("#site-events li").all_inner_texts()
            # every line names its camera (the 2 s file may still be playing for the API's first look)
            assert all(t.startswith(tuple(NAMES)) for t in texts), texts[:5]
            assert "worst-" in page.get_attribute(".tile[data-camera='front']", "class")  # a face in view
        page.click(".tile[data-camera='back']")
        with page_state(page, "site-camera-live"):
            # the single-source page's Live view of that camera: stream, state, events, freeze and explain
            page.wait_for_url("**/?mode=live&camera=back", timeout=10_000)
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.inner_text("#tab-live") == "Live: back" and page.locator("#tab-site").is_visible()
            page.wait_for_function("window.liveStats.frames >= 10", timeout=30_000)
            assert page.inner_text("#live-state") == "live" and page.is_hidden("#live-ended")
            page.wait_for_selector("#live-events li", timeout=20_000)
            page.wait_for_function("document.querySelector('#live-counts [data-label=no_mask]')?.textContent"
                                   ".endsWith(': 1')", timeout=30_000)
            page.click("#live-explain")  # the shared explainer loads on this first explain (503 meanwhile)
            page.wait_for_selector("#live-explained[data-state='explained']", timeout=120_000)
            assert "face(s)" in page.inner_text("#live-explained")
            assert page.locator("#live-explained .heatmap").count() >= 1
            shown = page.evaluate("window.liveStats.frames")  # the stream goes on (also past 10 s)
            page.wait_for_function(f"window.liveStats.frames >= {shown + 10}", timeout=20_000)
        page.click("#tab-site")
        page.wait_for_selector(".tile[data-camera='back']", timeout=10_000)
        page.goto(url + "/site#camera=front")  # an old link to a camera's view opens its Live view
        page.wait_for_url("**/?mode=live&camera=front", timeout=10_000)
        browser.close()
    assert not errors, errors


def test_a_late_viewer_of_a_file_sees_ended_with_replay_never_a_frozen_frame(site_server):
    from playwright.sync_api import sync_playwright

    url = site_server.url
    wait_for_state(url, "short", "ended")  # played for the first viewer (the API), 2 s, long ago
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url + "/site")
        with page_state(page, "site-ended-tile"):
            page.wait_for_selector(".tile[data-camera='short'] .tile-replay", timeout=20_000)
            assert page.inner_text(".tile[data-camera='short'] .tile-state") == "ended"
            page.click(".tile[data-camera='short'] .tile-replay")  # plays again, then ends again
            page.wait_for_function("document.querySelector(`.tile[data-camera='short']`).dataset.state === 'live'",
                                   timeout=10_000)
            page.wait_for_selector(".tile[data-camera='short'] .tile-replay", timeout=20_000)
        page.goto(url + "/?mode=live&camera=short")
        with page_state(page, "live-ended"):
            page.wait_for_selector("#live-ended:not([hidden]) #live-replay:not([hidden])", timeout=20_000)
            assert page.inner_text("#live-state") == "ended" and page.inner_text("#live-fps") == "-"
            assert page.evaluate("window.liveStats.states") == ["ended"]
            page.click("#live-replay")
            page.wait_for_function("window.liveStats.frames >= 10", timeout=20_000)
            page.wait_for_function("window.liveStats.states.join() === 'ended,live,ended'", timeout=20_000)
            page.wait_for_selector("#live-ended:not([hidden])", timeout=5_000)
        browser.close()
    assert not errors, errors


def test_a_killed_camera_tile_reads_reconnecting_then_live(site_server):
    from playwright.sync_api import sync_playwright

    url = site_server.url
    wait_for_states(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/site")
        state = ".tile[data-camera='door'] .tile-state"
        with page_state(page, "site-reconnecting"):
            page.wait_for_function(f"document.querySelector(\"{state}\")?.textContent === 'live'", timeout=20_000)
            site_server.door.stop()
            page.wait_for_function(f"document.querySelector(\"{state}\").textContent.startsWith('reconnecting')",
                                   timeout=30_000)
            assert page.inner_text(".tile[data-camera='front'] .tile-state") == "live"  # the others go on
            site_server.door.start()
            page.wait_for_function(f"document.querySelector(\"{state}\").textContent === 'live'", timeout=60_000)
        browser.close()


def test_the_tiles_websocket_sends_paced_acknowledged_mosaics_of_the_tiles_in_view(site_server):
    """``WS /v1/cameras/tiles``: a JSON head then one JPEG holding every listed tile at its place; nothing more
    until the page says it drew it; only the cameras it says are in view; nothing for none (a hidden tab).
    Last in the module: the 60 s files may have ended by now, the MJPEG camera ``door`` is live again."""
    import cv2
    import numpy as np
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    wait_for_states(site_server.url)
    ws_url = site_server.url.replace("http://", "ws://") + "/v1/cameras/tiles"

    def mosaic(ws) -> tuple[dict, np.ndarray]:
        head = json.loads(ws.recv(timeout=10))
        image = cv2.imdecode(np.frombuffer(ws.recv(timeout=10), np.uint8), cv2.IMREAD_COLOR)
        return head, image

    with connect(ws_url + "?fps=10", open_timeout=10) as ws:
        seqs: dict[str, list[int]] = {}
        head, image = mosaic(ws)  # two on their way at most: the first is answered after the second came
        heads = [head]
        for _ in range(6):
            head, image = mosaic(ws)
            heads.append(head)
            assert image is not None and head["tiles"]
            for t in head["tiles"]:
                assert t["camera"] in (*LIVE, "short") and t["w"] == 320 and t["h"] == 240  # short: if it plays
                assert t["x"] + t["w"] <= image.shape[1] and t["y"] + t["h"] <= image.shape[0]
                assert image[t["y"]:t["y"] + t["h"], t["x"]:t["x"] + t["w"]].mean() > 20  # a frame, not black
                seqs.setdefault(t["camera"], []).append(t["seq"])
            with pytest.raises(TimeoutError):  # the next one waits for the page's "drawn" of the one before
                ws.recv(timeout=0.4)
            ws.send(json.dumps({"drawn": heads[-2]["mosaic"]}))
        assert "door" in seqs
        assert all(s == sorted(set(s)) for s in seqs.values()), seqs  # every update of a tile is a newer frame
        ws.send(json.dumps({"visible": ["door"]}))
        ws.send(json.dumps({"drawn": head["mosaic"]}))
        time.sleep(0.3)
        for _ in range(4):
            head, _image = mosaic(ws)
            ws.send(json.dumps({"drawn": head["mosaic"]}))
        assert [t["camera"] for t in head["tiles"]] == ["door"]
        ws.send(json.dumps({"visible": []}))
        time.sleep(0.3)
        while True:  # what was on its way before the page said so
            try:
                head = json.loads(ws.recv(timeout=1.0))
            except TimeoutError:
                break
            ws.recv(timeout=5)
            ws.send(json.dumps({"drawn": head["mosaic"]}))
    with connect(ws_url, open_timeout=10) as ws, pytest.raises(ConnectionClosed) as closed:
        for _ in range(200):  # a page that floods it with messages (over 50 a second) is closed
            ws.send(json.dumps({"visible": []}))
        while True:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1008
    with pytest.raises(InvalidStatus) as refused:  # a pace out of range: refused before the handshake ends
        connect(ws_url + "?fps=0", open_timeout=10)
    assert refused.value.response.status_code == 403

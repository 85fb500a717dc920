"""Live page over a real clip (the real ``livemask serve --source``), the browser webcam with
Chromium's fake camera, and the FrameHub / WebSocket protocol underneath."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time

import cv2
import httpx
import numpy as np
import pytest
from livehelpers import start_serve
from servehelpers import ServerThread, chromium_or_skip, encode, page_state

pytest.importorskip("playwright")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.engine.sink import RunInfo
from livemask.web.hub import FrameHub, count_in_view

FPS = 25


def scene_with_face(astronaut_bgr) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(astronaut_bgr, (512, 480))
    return frame


def make_clip(path, astronaut_bgr, seconds: int = 16) -> None:
    """640x480 at 25 fps: 3 s with the astronaut moving right 2 px a frame (so the people stage sees a
    person, not a picture), 1 s of an empty grey scene, repeated."""
    face, empty = scene_with_face(astronaut_bgr), np.full((480, 640, 3), 90, np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (640, 480))
    for i in range(seconds * FPS):
        writer.write(empty if (i // FPS) % 4 == 3 else np.roll(face, 2 * (i % (4 * FPS)), axis=1))
    writer.release()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    chromium_or_skip()
    with sync_playwright() as p:  # one per thread: both browsers below come from it
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=chromium_or_skip(), headless=True)
    yield b
    b.close()


def test_live_page_over_a_clip_shows_frames_and_changing_counts(browser, astronaut_bgr, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, astronaut_bgr)
    proc, url = start_serve("--source", str(clip))  # loopback: no token
    try:
        # the MJPEG stream: real JPEG frames of the source's size
        with httpx.stream("GET", url + "/v1/stream.mjpg", timeout=30) as r:
            assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
            buf = b""
            for chunk in r.iter_bytes():
                buf += chunk
                if buf.count(b"--frame") >= 3:
                    break
        part = buf.split(b"--frame")[1]
        jpeg = part[part.index(b"\r\n\r\n") + 4:].rstrip(b"\r\n")
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url + "/?mode=live")
        with page_state(page, "live-stream"):
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.locator("#tab-live").is_visible()
            page.wait_for_function("window.liveStats.frames >= 20", timeout=30_000)
            page.wait_for_function("window.liveStats.countStates.length >= 3", timeout=30_000)
            states = [json.loads(s) for s in page.evaluate("window.liveStats.countStates")]
            assert {"mask": 0, "no_mask": 1} in [{k: s.get(k, 0) for k in ("mask", "no_mask")} for s in states]
            assert any(sum(s.values()) == 0 for s in states)  # the empty scene: nobody in view
            frame_ids = page.evaluate("Number(document.getElementById('live-img').dataset.frameId)")
            assert frame_ids > 0
            assert page.locator("#live-events li").count() >= 2
            assert "No mask" in page.inner_text("#live-events")
            # the list shows changes of who is in view and their labels, each with its time in the clip
            # (m:ss.s), newest first: no probabilities, so never a line for a probability change alone
            lines = page.eval_on_selector_all("#live-events li:not(.alert)", "els => els.map(e => e.textContent)")
            times = [re.match(r"^(\d+):(\d\d\.\d) ", t) for t in lines]
            assert all(times), lines
            seconds = [60 * int(m.group(1)) + float(m.group(2)) for m in times]
            assert seconds == sorted(seconds, reverse=True), lines
            assert not any("%" in t for t in lines), lines
            changes = [t[m.end():] for t, m in zip(lines, times)]
            assert all(a != b for a, b in itertools.pairwise(changes)), changes
            # the people stage: 2 s without a mask (alerts.after_s) is an alert line in the event list, and
            # the moving astronaut is counted as a person, unmasked
            page.wait_for_selector("#live-events li.alert", timeout=30_000)
            assert "alert #" in page.inner_text("#live-events li.alert >> nth=0")
            page.wait_for_function("/^[1-9][0-9]* \\(masked 0%\\)$/.test("
                                   "document.getElementById('live-people').textContent)", timeout=30_000)
        with page_state(page, "live-explained"):
            page.wait_for_function("document.querySelector('#live-counts [data-label=no_mask]')?.textContent"
                                   ".endsWith(': 1')", timeout=30_000)
            page.click("#live-explain")
            page.wait_for_selector("#live-explained[data-state='explained']", timeout=60_000)
            assert "face(s)" in page.inner_text("#live-explained")
            # the face's own caption says its label is the tracker's vote, the maps' captions the crop's own
            assert "voted over recent frames" in page.inner_text("#live-explained figcaption >> nth=0")
        summary = httpx.get(url + "/v1/summary").json()["live"]
        assert summary["frames"] >= 20 and summary["tracks_seen"] >= 1
        assert set(summary["people"]) >= {"in_view", "counted", "masked", "static"}  # the people stage ran
        context.close()
        assert not errors, errors
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_file_plays_for_its_first_viewer_then_says_ended_with_a_replay(browser, astronaut_bgr, tmp_path):
    """``serve --source FILE``: the file waits for a viewer (a late one still sees it play from its start), and
    at its end the page says "ended" with a replay button instead of a frozen last frame."""
    clip = tmp_path / "short.mp4"
    make_clip(clip, astronaut_bgr, seconds=2)
    proc, url = start_serve("--source", str(clip))
    try:
        time.sleep(3.0)  # longer than the clip: a file that played without a viewer would have ended
        live = httpx.get(url + "/v1/summary", timeout=10).json()["live"]
        assert live["state"] == "waiting for a viewer" and live["frames"] == 0 and live["replayable"], live
        assert httpx.post(url + "/v1/live/replay", timeout=10).status_code == 409  # not ended: nothing to replay
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(url + "/?mode=live")
        with page_state(page, "live-file-ended"):
            page.wait_for_function("window.liveStats.frames >= 10", timeout=30_000)
            first = page.evaluate("window.liveStats.states")
            assert first[:2] in (["live"], ["waiting for a viewer", "live"], ["live", "ended"]), first
            page.wait_for_selector("#live-ended:not([hidden]) #live-replay:not([hidden])", timeout=20_000)
            assert page.inner_text("#live-state") == "ended" and page.inner_text("#live-latency") == "-"
            shown = page.evaluate("window.liveStats.frames")
            summary = httpx.get(url + "/v1/summary", timeout=10).json()["live"]
            assert summary["ended"] and summary["state"] == "ended"
            page.click("#live-replay")
            page.wait_for_function(f"window.liveStats.frames >= {shown + 10}", timeout=30_000)
            page.wait_for_function("window.liveStats.states.slice(-3).join() === 'ended,live,ended'",
                                   timeout=30_000)
            assert page.is_visible("#live-replay")
        assert not errors, errors
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def make_y4m(path, astronaut_bgr, tmp_path) -> None:
    """A fake-camera file for Chromium: the astronaut scene, made with ffmpeg from a test clip."""
    frames = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(frames), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    scene = scene_with_face(astronaut_bgr)
    for i in range(FPS):
        writer.write(np.roll(scene, i * 2, axis=1))  # a little motion
    writer.release()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(frames), "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=60)


@pytest.fixture(scope="module")
def webcam_server(detector, classifier):
    from face_detector import CenterFaceDetector
    from livemask.web.app import create_app

    video_detector = CenterFaceDetector(input_long_side=320, score_threshold=0.4)  # as `serve` builds it
    with ServerThread(create_app(detector, classifier, None, video_detector=video_detector)) as srv:
        yield srv


def test_browser_webcam_with_fake_camera_shows_labelled_boxes(playwright, webcam_server, astronaut_bgr, tmp_path):
    if subprocess.run(["which", "ffmpeg"], capture_output=True).returncode:
        pytest.skip("ffmpeg not installed")
    y4m = tmp_path / "cam.y4m"
    make_y4m(y4m, astronaut_bgr, tmp_path)
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]
    b = playwright.chromium.launch(executable_path=chromium_or_skip(), headless=True, args=args)
    try:
        page = b.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(webcam_server.url + "/?mode=webcam")
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        with page_state(page, "webcam-labelled"):
            page.click("#cam-start")
            page.wait_for_function("window.camStats.results >= 8", timeout=60_000)
            page.wait_for_function("window.camStats.labels.includes('no_mask')", timeout=30_000)
            assert "No mask" in page.inner_text("#cam-faces")
            # the boxes are drawn on the overlay canvas over the video
            painted = page.evaluate("""() => { const c = document.getElementById('cam-overlay');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
            assert painted > 500
            stats = page.evaluate("window.camStats")
            assert stats["sent"] >= stats["results"] and len(stats["rtts"]) >= 1
            # a frame is sent when the camera has a new one: never one frame twice, never more than it delivers
            assert len(set(stats["sentFrames"])) == len(stats["sentFrames"]) == stats["sent"] <= stats["cameraFrames"]
            camera_fps, results_fps = (float(page.inner_text(sel)) for sel in ("#cam-fps", "#cam-rate"))
            assert 0 < results_fps <= camera_fps * 1.25 + 1, (camera_fps, results_fps)  # the two rates, shown apart
        page.click("#cam-stop")
        assert not errors, errors
    finally:
        b.close()


# ------------------------------------------------------------------- hub and protocol
def _result(frame_id: int, image: np.ndarray, boxes, labels, track_ids=None) -> FrameResult:
    names = ("mask", "no_mask")
    probs = np.array([[0.9, 0.1] if lb == "mask" else [0.2, 0.8] for lb in labels], np.float32).reshape(-1, 2)
    det = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full((len(labels),), 0.9, np.float32))
    ids = None if track_ids is None else np.array(track_ids, np.int64)
    return FrameResult(Frame(frame_id, time.monotonic(), image, "test"), det, Predictions(probs, names), ids)


def test_frame_hub_encodes_jpegs_only_for_viewers_once_per_size():
    from livemask.web.hub import TILE_WIDTH

    hub = FrameHub()
    image = np.full((480, 640, 3), 60, np.uint8)
    hub.open(RunInfo("test", 25.0, (640, 480), None, True, ("mask", "no_mask")))
    hub.write(_result(0, image, [[100, 100, 200, 220]], ["mask"], [1]))
    first = hub.latest()
    assert first._jpegs == {}  # nobody watching: nothing encoded
    tile = cv2.imdecode(np.frombuffer(first.tile_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert tile.shape == (TILE_WIDTH * 3 // 4, TILE_WIDTH, 3)  # the grid's size, aspect kept
    assert first.tile_jpeg is first.tile_jpeg  # made once, whatever the number of viewers
    hub.write(_result(1, image, [[100, 100, 200, 220]], ["mask"], [1]))
    second = hub.latest()
    assert set(second._jpegs) == {TILE_WIDTH}  # a size a viewer takes is encoded as frames arrive, no other
    full = cv2.imdecode(np.frombuffer(second.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (480, 640, 3)
    small = RunInfo("test", 25.0, (160, 120), None, True, ("mask", "no_mask"))
    hub.open(small)
    hub.write(_result(2, image[:120, :160], [[10, 10, 50, 60]], ["mask"], [1]))
    assert cv2.imdecode(np.frombuffer(hub.latest().tile_jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)


def test_a_waiting_viewer_is_woken_by_a_write_and_by_the_end_not_by_polling(monkeypatch):
    """Viewers wait for the hub's next frame; the sink's thread wakes them. With the state re-check made longer
    than the test's own limit, only the wake can end the waits in time."""
    import asyncio
    import threading

    from livemask.web import live_routes

    monkeypatch.setattr(live_routes, "RECHECK_S", 60.0)
    hub = FrameHub()
    image = np.full((120, 160, 3), 60, np.uint8)
    hub.open(RunInfo("test", 25.0, (160, 120), None, True, ("mask", "no_mask")))
    looks = []
    latest = hub.latest
    monkeypatch.setattr(hub, "latest", lambda: looks.append(1) or latest())

    def later(action, delay_s=0.3):
        threading.Timer(delay_s, action).start()

    async def viewer():
        later(lambda: hub.write(_result(0, image, [[10, 10, 50, 60]], ["mask"], [1])))
        first = await asyncio.wait_for(live_routes.newer(hub, -1), 20)
        later(lambda: hub.write(_result(1, image, [[10, 10, 50, 60]], ["mask"], [1])))
        second = await asyncio.wait_for(live_routes.newer(hub, first.seq), 20)
        later(lambda: hub.close({"frames": 2}))
        end = await asyncio.wait_for(live_routes.newer(hub, second.seq), 20)
        return first, second, end

    def own_loop(box):  # a loop of its own: Playwright's sync API keeps one running on this thread
        try:
            box["result"] = asyncio.run(viewer())
        except BaseException as err:  # handed to the test's thread
            box["error"] = err

    box: dict = {}
    thread = threading.Thread(target=own_loop, args=(box,))
    thread.start()
    thread.join(90)
    if "error" in box:
        raise box["error"]
    first, second, end = box["result"]
    assert (first.seq, second.seq, end) == (1, 2, None)
    assert len(looks) <= 6  # twice per wait: before and after it (polling every 5 ms looked about 180 times)
    assert hub._waiters == []


def test_frame_hub_keeps_the_newest_frame_events_and_tracks():
    hub = FrameHub()
    image = np.full((120, 160, 3), 60, np.uint8)
    hub.open(RunInfo("test", 25.0, (160, 120), None, True, ("mask", "no_mask")))
    assert hub.latest() is None and hub.summary()["info"]["size"] == [160, 120]
    for result in (_result(0, image, [[10, 10, 50, 60]], ["mask"], [1]),
                   _result(1, image, [[10, 10, 50, 60], [80, 10, 120, 60]], ["mask", "no_mask"], [1, 2])):
        hub.write(result)  # the threaded frame sink
        hub.events.write(result)  # the event lines, on the engine's thread
    latest = hub.latest()
    assert latest.seq == 2 and latest.counts == {"mask": 1, "no_mask": 1}
    decoded = cv2.imdecode(np.frombuffer(latest.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3) and np.abs(decoded.astype(int) - 60).max() > 100  # boxes drawn
    assert image.max() == 60  # the frame itself is not drawn on
    lines = hub.events_after(1)
    assert [s for s, _ in lines] == [2]
    assert [f["track_id"] for f in json.loads(lines[0][1])["faces"]] == [1, 2]
    hub.close({"ended": "end of source"})
    s = hub.summary()
    assert s["frames"] == 2 and s["tracks_seen"] == 2 and s["ended"] and s["summary"]["ended"] == "end of source"


def test_frame_hub_gives_the_lines_after_a_number_once_the_oldest_are_dropped():
    """A viewer asks for the lines after the last it got: the newer ones, oldest first, also once the kept list
    is full and its oldest lines are gone (then the viewer gets what is still kept)."""
    image = np.full((120, 160, 3), 60, np.uint8)
    hub = FrameHub(events_kept=5)
    for i in range(8):
        hub.events.write(_result(i, image, [[10, 10, 50, 60]], ["mask"], [1]))
    assert [s for s, _ in hub.events_after(0)] == [4, 5, 6, 7, 8]
    assert [s for s, _ in hub.events_after(5)] == [6, 7, 8]
    assert [json.loads(t)["frame_id"] for _, t in hub.events_after(6)] == [6, 7]
    assert hub.events_after(8) == [] and hub.events_after(9) == []


def test_frame_hub_lines_are_the_event_logs_with_people_static_faces_and_alerts(tmp_path):
    """With the people stage's analytics, the page's event stream carries exactly the event log's lines
    (``people``, ``static``, one ``alert`` line per alert), and a static face (a picture) is not counted."""
    from dataclasses import replace

    from livemask.core.types import Alert, Analytics, PeopleStats
    from livemask.sinks.recording import EventLog

    image = np.full((120, 160, 3), 60, np.uint8)
    result = _result(5, image, [[10, 10, 50, 60], [80, 10, 120, 60]], ["no_mask", "no_mask"], [1, 2])
    alert = Alert(1795800000.0, 1, "no_mask", 2.5, (10, 10, 50, 60), 5)
    result = replace(result, analytics=Analytics(PeopleStats(1, 3, 1, 1), np.array([False, True]), (alert,)))
    hub = FrameHub()
    hub.events.write(result)  # the frame sink dropped this frame (its encoder fell behind): the lines are kept
    assert hub.latest() is None and len(hub.events_after(0)) == 2
    hub.write(result)
    log = EventLog(tmp_path / "events.jsonl")
    log.write(result)
    log.close()
    from_log = [json.loads(t) for t in (tmp_path / "events.jsonl").read_text().splitlines()][:2]
    from_hub = [json.loads(t) for _, t in hub.events_after(0)]
    assert len(from_hub) == 2 and "alert" in from_hub[1] and from_hub[1] == from_log[1]
    assert abs(from_hub[0].pop("timestamp") - from_log[0].pop("timestamp")) < 0.01
    assert from_hub[0] == from_log[0]
    assert from_hub[0]["people"] == {"in_view": 1, "counted": 3, "masked": 1, "share_masked": 0.3333, "static": 1}
    assert [f.get("static", False) for f in from_hub[0]["faces"]] == [False, True]
    assert hub.latest().counts == {"mask": 0, "no_mask": 1}  # track 2 is a picture
    assert hub.summary()["people"]["counted"] == 3


def test_counts_are_tracks_not_boxes():
    image = np.zeros((50, 50, 3), np.uint8)
    r = _result(0, image, [[0, 0, 10, 10], [1, 1, 11, 11]], ["no_mask", "no_mask"], [7, 7])
    assert count_in_view(r) == {"mask": 0, "no_mask": 1}
    r = _result(0, image, [[0, 0, 10, 10], [1, 1, 11, 11]], ["no_mask", "no_mask"])
    assert count_in_view(r) == {"mask": 0, "no_mask": 2}


def test_webcam_websocket_answers_and_counts_stale_frames(detector, classifier, astronaut_bgr):
    from livemask.web.app import create_app

    scene = encode(scene_with_face(astronaut_bgr))
    with (TestClient(create_app(detector, classifier, None)) as client,
          client.websocket_connect("ws://127.0.0.1/v1/webcam") as ws):
        for _ in range(6):  # faster than the model: the server keeps only the newest
            ws.send_bytes(scene)
        answers = [json.loads(ws.receive_text())]
        while answers[-1]["frame"] < 6:
            answers.append(json.loads(ws.receive_text()))
        last = answers[-1]
        assert last["received"] == 6 and last["dropped"] == 6 - len(answers)
        assert [f["label"] for f in last["faces"]] == ["no_mask"]
        ws.send_bytes(b"not a jpeg")
        assert "not an image" in json.loads(ws.receive_text())["error"]


def test_websockets_need_the_token_too(detector, classifier):
    from livemask.web.app import create_app

    token = "ws-token-0123456789abcdef"
    with TestClient(create_app(detector, classifier, None, token=token)) as client:
        with pytest.raises(WebSocketDisconnect) as err, client.websocket_connect("ws://127.0.0.1/v1/webcam") as ws:
            ws.receive_text()
        assert err.value.code == 1008
        with client.websocket_connect(f"ws://127.0.0.1/v1/webcam?token={token}") as ws:
            ws.send_bytes(b"nope")
            assert "error" in json.loads(ws.receive_text())

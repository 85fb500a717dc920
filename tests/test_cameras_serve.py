"""Issue 26: ``livemask serve`` with several cameras: the Site page in Debian's Chromium, and its API.

The server is the real command (``livemask serve --camera ...``) in its own process: two file cameras
(paced at their frame rate) and one that cannot be opened.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from livehelpers import MODEL, write_clip
from servehelpers import chromium_or_skip, page_state

pytest.importorskip("playwright")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def site_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    front = write_clip(tmp / "front.mp4", 400, fps=10)
    back = write_clip(tmp / "back.mp4", 400, fps=10)
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0",
                             "--set", f"classifier.model_path={MODEL}", "--camera", f"front={front}",
                             "--camera", f"back={back}", "--camera", f"gone={tmp / 'none.mp4'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/site", line)
        assert match, (line, proc.stderr.read()[-2000:] if proc.poll() is not None else "")
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def wait_for_states(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cams = {c["name"]: c for c in get_json(url + "/v1/cameras")["cameras"]}
        if cams["front"]["frames"] > 2 and cams["back"]["frames"] > 2 and cams["gone"]["state"].startswith("failed"):
            return cams
        time.sleep(0.2)
    raise AssertionError(f"cameras not live: {cams}")


def test_api_lists_cameras_streams_one_and_filters_events(site_server):
    cams = wait_for_states(site_server)
    assert list(cams) == ["front", "back", "gone"]
    assert cams["front"]["state"] == "live" and cams["front"]["fps"] > 0
    assert cams["gone"]["state"].startswith("failed: ") and "no such video file" in cams["gone"]["state"]
    summary = get_json(site_server + "/v1/summary")
    assert [c["name"] for c in summary["cameras"]["cameras"]] == ["front", "back", "gone"]
    assert summary["live"] is None
    with urllib.request.urlopen(site_server + "/v1/cameras/front/stream.mjpg", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = r.read(4096)
        assert head.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in head
    with urllib.request.urlopen(site_server + "/v1/events?camera=back", timeout=10) as r:
        lines = []
        while len(lines) < 5:
            line = r.readline().decode()
            if line.startswith("data: "):
                lines.append(json.loads(line[6:]))
    assert all(x["camera"] == "back" for x in lines) and all("frame_id" in x or "alert" in x for x in lines)
    for path in ("/v1/cameras/nope/stream.mjpg", "/v1/cameras/nope/frame.jpg", "/v1/events?camera=nope"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(site_server + path, timeout=10)
        assert info.value.code == 404 and "nope" in json.loads(info.value.read())["error"]


def test_site_page_shows_every_tile_updating_and_a_click_opens_the_camera(site_server):
    from playwright.sync_api import sync_playwright

    wait_for_states(site_server)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(site_server + "/site")
        with page_state(page, "site-grid"):
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.locator(".tile").count() == 3
            assert page.inner_text(".tile[data-camera='gone'] .tile-state").startswith("failed: ")
            assert page.inner_text(".tile[data-camera='front'] .tile-state") == "live"
            assert page.inner_text("#total-cameras") == "3"
            # every live tile keeps getting new frames
            page.wait_for_function("""() => ['front', 'back'].every(
                n => Number(document.querySelector(`.tile[data-camera='${n}']`).dataset.loaded || 0) >= 10)""",
                                   timeout=30_000)
            page.wait_for_selector("#site-events li[data-camera='front']", timeout=20_000)
            page.wait_for_selector("#site-events li[data-camera='back']", timeout=20_000)
            texts = page.locator("#site-events li").all_inner_texts()
            assert all(t.startswith(("front", "back")) for t in texts), texts[:5]
            assert "worst-" in page.get_attribute(".tile[data-camera='front']", "class")  # a face in view
        page.click(".tile[data-camera='back']")
        with page_state(page, "site-camera"):
            page.wait_for_selector("#camera-view:not([hidden])", timeout=5_000)
            assert page.get_attribute("#camera-view", "data-camera") == "back"
            page.wait_for_function("document.getElementById('camera-img').naturalWidth > 0", timeout=10_000)
            page.wait_for_function("document.getElementById('camera-state').textContent === 'live'",
                                   timeout=5_000)
            assert page.is_hidden("#site-view")
        page.click("#nav-site")
        page.wait_for_selector("#site-view:not([hidden])", timeout=5_000)
        browser.close()
    assert not errors, errors

"""Issues 27 and 28 on the Site page of ``livemask serve --camera ...``: remote cameras from a real Mosquitto
(retained messages of another machine, published with mosquitto_pub), each tile's masked-share trend from the
kept events, the cameras' lines kept in one writer for ``/v1/report``, and one MQTT availability for the
process (a camera ending does not mark it offline; the server stopping does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from livehelpers import MODEL, start_serve, stop_process, write_clip
from mqttbroker import Broker, mosquitto_missing, retained
from servehelpers import chromium_or_skip

pytest.importorskip("playwright")
pytest.importorskip("fastapi")
pytestmark = pytest.mark.skipif(mosquitto_missing() is not None or shutil.which("mosquitto_pub") is None,
                                reason=str(mosquitto_missing() or "mosquitto_pub is not installed"))

DOOR_STATE = {"camera": "door", "source": "running", "in_view": 1,
              "in_view_by_class": {"mask": 0, "no_mask": 1, "mask_incorrect": 0}, "people_counted": 8,
              "people_masked": 6, "masked_share": 0.75, "alerts": 2, "alerting": False, "last_alert": None, "fps": 12.5}
# the seeded kept lines of camera "gone": the totals before the last hour, then one line at 5 minutes of it
BEFORE = (2, 1)
MINUTES = [(50, 3, 2), (40, 4, 2), (30, 5, 3), (20, 6, 3), (10, 7, 4)]  # minutes ago, counted, masked (run totals)


def seed_kept(folder, now: float) -> None:
    folder.mkdir()
    run = f"{now - 7200:.3f}"  # the run began before the window
    lines = [{"frame_id": 0, "timestamp": now - 65 * 60, "faces": [],
              "people": {"counted": BEFORE[0], "masked": BEFORE[1]}, "camera": "gone", "run": run}]
    for i, (ago, counted, masked) in enumerate(MINUTES):
        lines.append({"frame_id": i + 1, "timestamp": now - ago * 60 + 1, "faces": [{"label": "mask"}],
                      "people": {"counted": counted, "masked": masked}, "camera": "gone", "run": run})
    day = time.strftime("%Y%m%d", time.gmtime(now))
    (folder / f"events-{day}-1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def mosquitto_pub(port: int, topic: str, message: str) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-r", "-t", topic,
                    "-m", message], check=True, timeout=10)


def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.slow
def test_site_page_shows_remote_cameras_and_kept_trends_and_the_process_is_offline_only_at_its_end(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    try:
        _site_page_checks(tmp_path, broker)
    finally:  # also when a check fails: no broker outlives the test
        broker.stop()


def _site_page_checks(tmp_path, broker) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    kept = tmp_path / "kept"
    now = time.time()
    seed_kept(kept, now)
    mosquitto_pub(broker.port, "livemask/door-pc/available", "online")
    mosquitto_pub(broker.port, "livemask/door-pc/door/state", json.dumps(DOOR_STATE))
    front = write_clip(tmp_path / "front.mp4", 30, fps=10)  # plays for 3 s from its first viewer, then ended
    env = {k: v for k, v in os.environ.items() if k != "LIVEMASK_TOKEN"}
    env["LIVEMASK_MQTT_URL"] = broker.url
    proc, url = start_serve("--set", f"classifier.model_path={MODEL}", "--camera", f"front={front}",
                            "--camera", f"gone={tmp_path / 'none.mp4'}", "--set", f"report.events_dir={kept}",
                            "--set", "mqtt.prefix=livemask/here", "--set", "mqtt.site=true",
                            "--set", "mqtt.site_prefix=livemask", env=env)
    try:

        def site() -> dict:
            return {c["id"]: c for c in httpx.get(url + "/v1/site", timeout=10).json()["cameras"]}

        # this process's own camera is on the broker too, marked local (it is a tile already)
        assert until(lambda: site().get("livemask/here/front", {}).get("local") is True, 60), site()
        assert site()["livemask/door-pc/door"]["local"] is False
        # the file camera waits for its first viewer (the Site page below), and its MQTT state says so
        assert json.loads(retained(broker.port, "livemask/here/front/state"))["source"] == "waiting for a viewer"
        # the trend API: the share masked among the people counted since the hour began, minute by minute
        points = httpx.get(url + "/v1/cameras/trend", timeout=30).json()["cameras"]["gone"]
        shares = [round((m - BEFORE[1]) / (c - BEFORE[0]), 4) for _ago, c, m in MINUTES]
        assert [p["share"] for p in points] == shares and [p["counted"] for p in points] == [1, 2, 3, 4, 5]
        for point, (ago, _c, _m) in zip(points, MINUTES, strict=True):  # each point at the end of its line's minute
            assert ago * 60 - 61 <= now - point["t"] <= ago * 60 - 1, (point, ago)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_or_skip(), headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url + "/site")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            page.wait_for_selector("body[data-remote-ready='1']", timeout=20_000)
            door = page.locator(".tile.remote[data-camera='door']")
            door.wait_for(timeout=10_000)
            assert page.locator(".tile.remote").count() == 1  # not this machine's own front camera
            assert door.locator(".tile-remote").inner_text() == "remote: livemask/door-pc"
            assert door.locator(".tile-state").inner_text() == "live"
            assert "1" in door.locator(".tile-counts").inner_text()
            assert door.locator(".tile-share").inner_text() == "people so far 8, masked 75%"
            assert door.locator("img, video").count() == 0  # no video from a remote camera
            # the seeded kept events: 5 points drawn on the "gone" tile's chart
            page.wait_for_function("""() => {
                const c = document.querySelector(".tile[data-camera='gone'] canvas.tile-trend");
                return c && c.dataset.points === '5' && c.dataset.drawn === '5'; }""", timeout=20_000)
            green = page.evaluate("""() => {
                const c = document.querySelector(".tile[data-camera='gone'] canvas.tile-trend");
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 100 && d[i] < 80 && d[i + 3] > 0) n++;
                return n; }""")
            assert green > 20, "the trend line is not drawn"
            # and a link to today's report of what the server keeps
            assert page.locator("#nav-report").is_visible()
            assert page.get_attribute("#nav-report", "href").startswith("/v1/report")
            # the other machine's last will: its tile says offline within seconds
            mosquitto_pub(broker.port, "livemask/door-pc/available", "offline")
            page.wait_for_function("""document.querySelector(".tile.remote[data-camera='door']")
                                      .dataset.state === 'offline'""", timeout=10_000)
            browser.close()
        assert not errors, errors

        # the front camera has ended (a 3 s file); the process still serves: available stays online
        assert until(lambda: json.loads(retained(broker.port, "livemask/here/front/state") or "{}")
                     .get("source") == "ended", 30)
        assert retained(broker.port, "livemask/here/available") == "online"
        # every camera's lines in one writer, each naming its camera; /v1/report covers the cameras
        new = [p for p in kept.glob("events-*.jsonl") if not p.name.endswith("-1.jsonl")]
        lines = [json.loads(x) for p in new for x in p.read_text().splitlines()]
        assert lines and {x["camera"] for x in lines} == {"front"}
        doc = httpx.get(url + "/v1/report", params={"format": "json", "tz": "UTC", "from": "2000-01-01"},
                        timeout=60).json()
        assert doc["cameras"] == ["front", "gone"], doc.get("cameras")
        totals = {c["camera"]: c for c in doc["by_camera"]}
        frames = sum("frame_id" in x for x in lines)
        assert totals["gone"]["people"] == MINUTES[-1][1] and totals["front"]["frames"] == frames
    finally:
        stop_process(proc)
    # SIGTERM: the server stops, the command ends its cameras and its MQTT link, then exits 128 + 15
    assert proc.returncode == 143, proc.stderr.read()[-2000:]
    assert retained(broker.port, "livemask/here/available") == "offline"  # the process has ended


def test_trend_sums_runs_from_the_window_start_and_keeps_an_ended_runs_people(tmp_path):
    from livemask.report.trend import trend

    now = 2_000_000_000.0
    folder = tmp_path / "kept"
    folder.mkdir()

    def line(camera, run, ago_min, counted, masked):
        return json.dumps({"frame_id": 0, "timestamp": now - ago_min * 60, "faces": [], "camera": camera,
                           "run": run, "people": {"counted": counted, "masked": masked}}) + "\n"

    old, new = f"{now - 7200:.3f}", f"{now - 1800:.3f}"
    (folder / "events-20330518-1.jsonl").write_text("".join([
        line("a", old, 70, 10, 10),  # before the hour: run "old" had counted 10 already
        line("a", old, 45.5, 12, 11),  # +2 people, +1 masked
        line("a", old, 40.5, 13, 11),  # then run "old" ends
        line("a", new, 20.5, 2, 2),  # run "new" began in the hour: its 2 people count
        line("b", new, 10.5, 0, 0),  # nobody counted yet: no point
        "not json\n",
    ]))
    os.utime(folder / "events-20330518-1.jsonl", (now, now))  # written during the hour
    got = trend(sorted(folder.glob("*.jsonl")), now=now)
    assert [(p["counted"], p["share"]) for p in got["a"]] == [(2, 0.5), (3, 0.3333), (5, 0.6)]
    assert got["b"] == []
    assert trend(sorted(folder.glob("*.jsonl")), now=now + 7200) == {}  # nothing in that hour: no file read

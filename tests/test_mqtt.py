"""The MQTT sink against a real Mosquitto broker (started per test on a free 127.0.0.1 port) and a paho
subscriber: topics and payloads, the last will of a killed run, a broker that goes away and comes back,
a refused login, bad settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from mqttbroker import Broker, Recorder, mosquitto_missing, retained

from livemask.core.errors import ConfigError
from livemask.core.types import Alert, Analytics, Detections, Frame, FrameResult, PeopleStats, Predictions
from livemask.engine.sink import RunInfo
from livemask.sinks.mqtt import MqttOptions, MqttSink, parse_url

pytestmark = pytest.mark.skipif(mosquitto_missing() is not None, reason=str(mosquitto_missing()))

CLASSES = ("mask", "no_mask", "mask_incorrect")
IMAGE = np.zeros((48, 64, 3), np.uint8)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def result(i: int, t: float, faces: list[tuple[int, str]], alerts=(), counted=0, masked=0) -> FrameResult:
    """A frame at ``t`` s with tracked faces (track id, label); ``alerts``: track ids that fire on it."""
    n = len(faces)
    boxes = np.array([[10, 10, 30, 30]] * n, np.float32).reshape(n, 4)
    probs = np.zeros((n, 3), np.float32)
    for k, (_tid, label) in enumerate(faces):
        probs[k, CLASSES.index(label)] = 0.9
        probs[k, (CLASSES.index(label) + 1) % 3] = 0.1
    fired = tuple(Alert(1.7e9 + t, tid, "no_mask", 2.0, (10.0, 10.0, 30.0, 30.0), i, t) for tid in alerts)
    analytics = Analytics(PeopleStats(n, counted, masked, 0), np.zeros((n,), np.bool_), fired)
    return FrameResult(Frame(i, time.monotonic(), IMAGE, "test", t * 1000.0), Detections(boxes, np.ones(n, np.float32)),
                       Predictions(probs, CLASSES), np.array([f[0] for f in faces], np.int64), 1.0, analytics)


def info() -> RunInfo:
    return RunInfo("test", 30.0, (64, 48), None, True, CLASSES)


def test_urls_and_options_are_checked_and_never_show_the_password():
    a = parse_url("mqtts://bob:p%40ss@broker.local")
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.local", 8883, True, "bob", "p@ss")
    assert "p%40ss" not in a.shown and "***" in a.shown
    assert parse_url("mqtt://127.0.0.1:1884").port == 1884
    for url in ("http://h", "mqtt://", "mqtt://u:secretpw@h:99999", "mqtt://u:secretpw@h/topic", "h:1883"):
        with pytest.raises(ConfigError) as err:
            MqttOptions(url=url)
        assert "secretpw" not in str(err.value) and "\n" not in str(err.value)
    for bad in ({"prefix": "a/+/b"}, {"prefix": "/x"}, {"queue_size": 0}, {"reconnect_max_s": 0}):
        with pytest.raises(ConfigError):
            MqttOptions(url="mqtt://h", **bad)
    with pytest.raises(ConfigError):
        MqttSink(MqttOptions(url="mqtt://h"), camera="front/door")
    assert not MqttOptions().enabled


def test_topics_and_payloads_in_order_and_offline_at_the_end(broker):
    rec = Recorder(broker.port)
    sink = MqttSink(MqttOptions(url=broker.url, prefix="site1", home_assistant=True, event_min_s=0.2,
                                event_end_s=1.0), camera="door")
    sink.open(info())
    assert rec.wait_for(lambda: rec.on("site1/available") == ["online"], 10)
    # track 5: masked, then unmasked (update), alert; track 6 appears briefly (never announced); track 5 leaves
    t = 0.0
    for i in range(12):
        sink.write(result(i, t, [(5, "mask")] + ([(6, "mask")] if i == 3 else []), counted=1, masked=1))
        t += 0.1
    time.sleep(1.1)  # the state is sent at most once a second
    for i in range(12, 20):
        sink.write(result(i, t, [(5, "no_mask")], alerts=(5,) if i == 15 else (), counted=1, masked=0))
        t += 0.1
    time.sleep(1.1)
    sink.write(result(20, t + 2.0, []))  # 2 s later, nobody: track 5 ends
    summary: dict = {"people": {"counted": 1, "masked": 0}}
    sink.close(summary)
    assert rec.wait_for(lambda: rec.on("site1/available")[-1:] == ["offline"], 10)
    rec.close()

    events = rec.json("site1/events")
    assert [(e["type"], e["track_id"]) for e in events] == [("new", 5), ("update", 5), ("end", 5)]
    assert all(e["camera"] == "door" for e in events)
    assert events[1]["previous_label"] == "mask" and events[1]["label"] == "no_mask"
    assert events[2]["end_time"] is not None and events[2]["end_time"] > events[0]["start_time"]
    alerts = rec.json("site1/door/alert")
    assert len(alerts) == 1 and alerts[0]["track_id"] == 5 and alerts[0]["camera"] == "door"
    assert set(alerts[0]) >= {"time", "track_id", "label", "duration_s", "box", "snapshot", "frame_id"}
    states = rec.json("site1/door/state")
    assert len(states) >= 3, states
    assert states[0]["masked_share"] == 1.0 and states[0]["in_view_by_class"]["mask"] >= 1
    assert any(s["alerting"] for s in states) and states[-1]["source"] == "ended"
    assert states[-1]["masked_share"] == 0.0
    # the state and availability are retained (a new subscriber sees them); Home Assistant configs too
    assert json.loads(retained(broker.port, "site1/door/state"))["source"] == "ended"
    assert retained(broker.port, "site1/available") == "offline"
    config = json.loads(retained(broker.port, "homeassistant/binary_sensor/site1_door/alert/config"))
    assert config["availability_topic"] == "site1/available" and config["state_topic"] == "site1/door/state"
    stats = summary["mqtt_door"]
    assert stats["alerts_sent"] == 1 and stats["events"] == {"new": 1, "update": 1, "end": 1}
    assert stats["dropped"] == 0 and stats["unsent"] == 0 and stats["connects"] == 1


def test_a_broker_away_for_10_s_loses_no_alert_within_the_bound_and_counts_the_rest(tmp_path):
    broker = Broker(tmp_path / "broker", persist=True).start()
    rec = Recorder(broker.port, ("livemask/default/alert",), client_id="recorder-outage")  # keeps its session
    try:
        sink = MqttSink(MqttOptions(url=broker.url, queue_size=50, reconnect_max_s=2, finish_s=10))
        sink.open(info())
        assert sink.connected.wait(10)
        for i in range(5):
            sink.write(result(i, i * 0.1, [(1, "no_mask")], alerts=(1,)))
        assert rec.wait_for(lambda: len(rec.on("livemask/default/alert")) == 5, 10)
        broker.stop(graceful=True)
        # while the broker is away: 80 alerts over ~10 s; the queue holds 50, the rest is dropped and counted
        start = time.monotonic()
        slowest = 0.0
        for i in range(5, 85):
            t0 = time.monotonic()
            sink.write(result(i, i * 0.1, [(1, "no_mask")], alerts=(1,)))
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.12)
        away = time.monotonic() - start
        assert away >= 9.5
        assert slowest < 2.0, f"a write waited {slowest:.2f} s: the sink stalled the video (the outage is 10 s)"
        broker.start()
        summary: dict = {}
        sink.close(summary)
        stats = summary["mqtt"]
        assert stats["alerts_sent"] >= 53, json.dumps(stats)  # 5 before, about 50 queued (alerts and events)
        got = rec.wait_for(lambda: len(rec.on("livemask/default/alert")) >= stats["alerts_sent"], 10)
        assert got, (stats, [a["frame_id"] for a in rec.json("livemask/default/alert")], broker.log())
        # QoS 1 is "at least once": a message whose acknowledgement the stop cut off is sent again (dup)
        ids = list(dict.fromkeys(a["frame_id"] for a in rec.json("livemask/default/alert")))
        # every alert sent before, then those of the outage in order until the queue was full (50, and one more
        # when paho took it before the loss was noticed); the newer ones were dropped and counted, none lost
        assert ids == list(range(len(ids))), ids
        # alerts and track events share the queue: every message is either sent or counted as dropped
        messages = 85 + sum(stats["events"].values())
        assert len(ids) == stats["alerts_sent"] and len(ids) + stats["sent"]["event"] + stats["dropped"] == messages
        assert 29 <= stats["dropped"] <= 32 and stats["unsent"] == 0 and stats["reconnects"] == 1, stats
    finally:
        rec.close()
        broker.stop()


def test_a_refused_login_is_one_line_and_counted_and_the_run_goes_on(tmp_path, caplog):
    broker = Broker(tmp_path / "broker", users={"cam": "right-password"}).start()
    try:
        sink = MqttSink(MqttOptions(url=f"mqtt://cam:wrong-secret@127.0.0.1:{broker.port}", finish_s=1))
        with caplog.at_level("WARNING"):
            sink.open(info())
            sink.write(result(0, 0.0, [(1, "no_mask")], alerts=(1,)))
            deadline = time.monotonic() + 10
            while not sink.login_refused and time.monotonic() < deadline:
                sink.write(result(0, 0.0, [(1, "no_mask")], alerts=(1,)))
                time.sleep(0.05)
            summary: dict = {}
            sink.close(summary)
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("livemask.sinks.mqtt")]
        assert len(lines) == 1 and "refused" in lines[0], lines
        assert "wrong-secret" not in caplog.text and "wrong-secret" not in json.dumps(summary)
        assert summary["mqtt"]["login_refused"] == 1 and summary["mqtt"]["alerts_sent"] == 0
        assert summary["mqtt"]["unsent"] + summary["mqtt"]["dropped"] >= 1
        # the right password gets in
        ok = MqttSink(MqttOptions(url=f"mqtt://cam:right-password@127.0.0.1:{broker.port}", finish_s=2))
        ok.open(info())
        assert ok.connected.wait(10)
        ok.close({})
    finally:
        broker.stop()


# -- the command line: a real run into the broker ---------------------------------------------------------------
OFF = (2.4, 5.6)  # seconds of the clip without the drawn mask (as in test_alerts)


@pytest.fixture(scope="module")
def mask_clip(data_dir, tmp_path_factory):
    from clipmaker import mask_on_off_clip

    from face_detector import CenterFaceDetector

    return mask_on_off_clip(data_dir, CenterFaceDetector(), tmp_path_factory.mktemp("mqtt") / "mask_off.avi", OFF)[0]


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    from livehelpers import write_clip

    return write_clip(tmp_path_factory.mktemp("mqtt") / "face.mp4", 300, fps=30.0)


def env_with(url: str) -> dict:
    return dict(os.environ, LIVEMASK_MQTT_URL=url)


def test_a_run_publishes_online_state_one_alert_and_track_events_then_offline(broker, mask_clip, tmp_path):
    from livehelpers import read_alerts, read_events, run_cli

    rec = Recorder(broker.port)
    events = tmp_path / "e.jsonl"
    try:
        # at the clip's own pace: the state is looked at once a second of wall time, and the exported
        # classifier with the 8-bit detector runs this 8 s clip in about 1 s when not paced
        proc = run_cli("--source", str(mask_clip), "--realtime", "--headless", "--events", str(events),
                       "--set", f"run.snapshot_dir={tmp_path / 'snaps'}", env=env_with(broker.url))
        assert proc.returncode == 0, proc.stderr
        assert rec.wait_for(lambda: rec.on("livemask/available")[-1:] == ["offline"], 10)
    finally:
        rec.close()
    assert rec.on("livemask/available") == ["online", "offline"]
    alerts = read_alerts(events)
    assert len(alerts) == 1
    assert rec.json("livemask/default/alert") == [{**alerts[0], "camera": "default"}]
    states = rec.json("livemask/default/state")
    assert len(states) >= 3 and len({json.dumps(s) for s in states}) == len(states)  # sent on change only
    assert any(s["in_view_by_class"].get("mask") for s in states)
    assert any(s["in_view_by_class"].get("no_mask") or s["in_view_by_class"].get("mask_incorrect") for s in states)
    assert any(s["alerting"] for s in states) and states[-1]["source"] == "ended"
    _lines, summary = read_events(events)
    assert states[-1]["people_counted"] == summary["people"]["counted"] >= 1
    mine = [e for e in rec.json("livemask/events") if e["track_id"] == alerts[0]["track_id"]]
    kinds = [e["type"] for e in mine]
    assert kinds[0] == "new" and kinds[-1] == "end" and "update" in kinds and kinds.count("end") == 1, kinds
    assert all(e["camera"] == "default" for e in mine)
    assert any(e["type"] == "update" and e["label"] in ("no_mask", "mask_incorrect") for e in mine)
    assert summary["mqtt"]["alerts_sent"] == 1 and summary["mqtt"]["dropped"] == 0
    assert json.loads(retained(broker.port, "livemask/default/state"))["source"] == "ended"


def test_kill_9_of_a_run_makes_the_broker_publish_offline(broker, face_clip, tmp_path):
    from livehelpers import cli

    rec = Recorder(broker.port, ("livemask/available",))
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cli("--source", str(face_clip), "--headless", "--realtime"),
                                env=env_with(broker.url), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        assert rec.wait_for(lambda: rec.on("livemask/available") == ["online"], 120), err.read_text()
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert rec.wait_for(lambda: rec.on("livemask/available") == ["online", "offline"], 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rec.close()
    assert retained(broker.port, "livemask/available") == "offline"


def test_a_wrong_password_is_one_line_and_the_run_completes(tmp_path, face_clip):
    from livehelpers import read_events, run_cli

    broker = Broker(tmp_path / "broker", users={"cam": "right-password"}).start()
    events = tmp_path / "e.jsonl"
    try:
        proc = run_cli("--source", str(face_clip), "--headless", "--events", str(events), "--max-frames", "60",
                       env=env_with(f"mqtt://cam:Wr0ngSecret@127.0.0.1:{broker.port}"))
    finally:
        broker.stop()
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "livemask.sinks.mqtt" in line]
    assert len(lines) == 1 and "refused" in lines[0], proc.stderr
    for text in (proc.stderr, proc.stdout, events.read_text()):
        assert "Wr0ngSecret" not in text
    _lines, summary = read_events(events)
    assert summary["frames_processed"] == 60 and summary["mqtt"]["login_refused"] == 1


def test_a_bad_broker_url_is_a_usage_error_without_the_password(face_clip):
    from livehelpers import run_cli

    # (the other malformed URLs: test_urls_and_options_are_checked_and_never_show_the_password)
    proc = run_cli("--source", str(face_clip), "--headless", env=env_with("mqtt://u:Wr0ngSecret@host:99999"),
                   timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "mqtt.url" in lines[0] and "Wr0ngSecret" not in proc.stderr, proc.stderr


# -- the site: serve subscribes and lists every publishing camera -----------------------------------------------
def test_the_site_lists_cameras_of_two_publishers_and_shows_a_killed_one_offline(broker, detector, classifier):
    import sys
    from pathlib import Path

    from fastapi.testclient import TestClient

    from livemask.web.app import create_app
    from livemask.web.remote_site import SiteWatcher, add_site_route

    script = str(Path(__file__).with_name("mqtt_publisher.py"))
    pubs = [subprocess.Popen([sys.executable, script, broker.url, "livemask/hall-pc", "hall", "20"]),
            subprocess.Popen([sys.executable, script, broker.url, "livemask/door-pc", "door", "0"])]
    watcher = SiteWatcher(MqttOptions(url=broker.url, prefix="livemask/dashboard", site=True,
                                      site_prefix="livemask"))
    token = "site-token-0123456789abcdef"
    app = create_app(detector, classifier, None, token=token)
    add_site_route(app, watcher)
    watcher.start()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:  # the Host check answers only our names
            assert client.get("/v1/site").status_code == 401

            def cameras():
                return {c["id"]: c for c in client.get("/v1/site", headers=auth).json()["cameras"]}

            def both_online():
                got = cameras()
                return all(got.get(k, {}).get("online") for k in ("livemask/hall-pc/hall", "livemask/door-pc/door"))

            assert watcher.connected.wait(10)
            assert until(both_online, 30), cameras()
            assert until(lambda: cameras()["livemask/hall-pc/hall"]["last_alert"] is not None, 10)
            got = cameras()
            hall, door = got["livemask/hall-pc/hall"], got["livemask/door-pc/door"]
            assert hall["name"] == "hall" and hall["publisher"] == "livemask/hall-pc"
            assert hall["state"]["in_view_by_class"]["no_mask"] == 1 and hall["last_alert"]["camera"] == "hall"
            assert door["last_alert"] is None and door["state"]["camera"] == "door"
            pubs[1].send_signal(signal.SIGKILL)
            pubs[1].wait(10)
            killed = time.monotonic()
            assert until(lambda: not cameras()["livemask/door-pc/door"]["online"], 10)
            assert time.monotonic() - killed < 5  # the last will, published by the broker at once
            assert cameras()["livemask/hall-pc/hall"]["online"]
    finally:
        watcher.stop()
        for p in pubs:
            if p.poll() is None:
                p.kill()
            p.wait()


def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# -- several cameras, one process: one connection, one availability ---------------------------------------------
def test_three_cameras_share_one_link_and_one_ending_does_not_mark_the_process_offline(broker):
    from livemask.sinks.mqtt import MqttLink

    rec = Recorder(broker.port)
    options = MqttOptions(url=broker.url, prefix="site3", event_min_s=0.0, event_end_s=0.5, finish_s=5)
    link = MqttLink(options)
    sinks = {name: MqttSink(options, name, link) for name in ("door", "hall", "yard")}
    for sink in sinks.values():
        sink.open(info())
    assert link.connected.wait(10) and all(s.connected is link.connected for s in sinks.values())
    assert rec.wait_for(lambda: rec.on("site3/available") == ["online"], 10)
    for i in range(5):
        for k, sink in enumerate(sinks.values()):
            sink.write(result(i, i * 0.1, [(k + 1, "no_mask")], alerts=(k + 1,) if i == 2 else (), counted=1))
    door: dict = {"people": {"counted": 1, "masked": 0}}
    sinks["door"].close(door)  # the door camera ends; hall and yard go on
    assert rec.wait_for(lambda: any(s["source"] == "ended" for s in rec.json("site3/door/state")), 10)
    time.sleep(1.1)  # a state at most once a second: the next writes send hall's and yard's new state
    for i in range(5, 10):
        for k, name in ((1, "hall"), (2, "yard")):
            sinks[name].write(result(i, i * 0.1, [(k + 1, "mask")], counted=2, masked=1))
    assert rec.wait_for(lambda: all(any(s["people_counted"] == 2 for s in rec.json(f"site3/{n}/state"))
                                    for n in ("hall", "yard")), 10)
    assert rec.on("site3/available") == ["online"], "one camera's end marked the whole process offline"
    assert retained(broker.port, "site3/available") == "online"
    rest = {}
    for name in ("hall", "yard"):
        sinks[name].close(rest)
    assert rec.on("site3/available") == ["online"]
    link.finish()  # the process ends
    assert rec.wait_for(lambda: rec.on("site3/available") == ["online", "offline"], 10)
    rec.close()
    assert retained(broker.port, "site3/available") == "offline"
    assert link.connects == 1  # one connection for the three cameras
    for name, summary in (("door", door), ("hall", rest), ("yard", rest)):
        stats = summary[f"mqtt_{name}"]
        assert stats["camera"] == name and stats["alerts_sent"] == 1 and stats["unsent"] == 0, stats
        assert [a["camera"] for a in rec.json(f"site3/{name}/alert")] == [name]
        assert rec.json(f"site3/{name}/state")[-1]["source"] == "ended"
        kinds = [e["type"] for e in rec.json("site3/events") if e["camera"] == name]
        assert kinds[0] == "new" and kinds[-1] == "end", kinds


def test_a_dead_broker_never_stalls_the_cameras_of_a_shared_link():
    from mqttbroker import free_port

    from livemask.sinks.mqtt import MqttLink

    options = MqttOptions(url=f"mqtt://127.0.0.1:{free_port()}", queue_size=20, finish_s=1.0, reconnect_max_s=1)
    link = MqttLink(options)
    sinks = [MqttSink(options, name, link) for name in ("a", "b", "c")]
    for sink in sinks:
        sink.open(info())
    slowest = 0.0
    for i in range(100):
        for sink in sinks:
            t0 = time.monotonic()
            sink.write(result(i, i * 0.1, [(1, "no_mask")], alerts=(1,)))
            slowest = max(slowest, time.monotonic() - t0)
    assert slowest < 0.5, f"a write waited {slowest:.2f} s for a dead broker"
    summary: dict = {}
    t0 = time.monotonic()
    for sink in sinks:
        sink.close(summary)
    link.finish()
    assert time.monotonic() - t0 < 3 * options.finish_s + 3
    assert not link.connected.is_set() and link.connect_failures >= 1
    # the shared queue held 20 messages; every alert and event is either dropped or counted unsent
    queued = sum(summary[f"mqtt_{s.camera}"]["unsent"] for s in sinks)
    dropped = sum(summary[f"mqtt_{s.camera}"]["dropped"] for s in sinks)
    made = sum(100 + sum(s.events.values()) for s in sinks)
    assert queued + dropped == made and 0 < queued <= 20, (queued, dropped, made)
    assert sum(link.unsent.values()) == queued


@pytest.mark.slow
def test_a_cameras_run_publishes_online_once_and_offline_only_when_the_process_ends(broker, tmp_path):
    from livehelpers import read_events, run_cli, write_clip

    short = write_clip(tmp_path / "short.mp4", 10, fps=10)
    long = write_clip(tmp_path / "long.mp4", 40, fps=10)
    rec = Recorder(broker.port)
    try:
        proc = run_cli("--camera", f"short={short}", "--camera", f"long={long}", "--realtime", "--headless",
                       "--output-dir", str(tmp_path / "out"), env=env_with(broker.url))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert rec.wait_for(lambda: rec.on("livemask/available")[-1:] == ["offline"], 10)
    finally:
        rec.close()
    assert rec.on("livemask/available") == ["online", "offline"]
    with rec.lock:
        order = [(t, p) for t, p, _r in rec.messages]
    ended = {cam: max(i for i, (t, p) in enumerate(order) if t == f"livemask/{cam}/state"
                      and json.loads(p)["source"] == "ended") for cam in ("short", "long")}
    offline = order.index(("livemask/available", "offline"))
    assert ended["short"] < ended["long"] < offline, (ended, offline)  # the short camera ended first, online still
    for cam in ("short", "long"):
        _frames, summary = read_events(tmp_path / "out" / f"{cam}.jsonl")
        assert summary[f"mqtt_{cam}"]["camera"] == cam and summary[f"mqtt_{cam}"]["connects"] == 1

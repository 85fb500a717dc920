"""Alerts: the rule on a real clip where a drawn mask comes off for a few seconds; webhook (a local HTTP
receiver, a stalled one, a dead port), command and sound destinations; their counts; secrets."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from clipmaker import mask_on_off_clip
from livehelpers import read_alerts, read_events, run_cli, write_clip

from livemask.sinks.alerts import CommandNotifier, Notifier, SoundNotifier, WebhookNotifier, alert_sound

AFTER_S = 2.0
OFF = (2.4, 5.6)  # seconds of the clip without the drawn mask


class Receiver:
    """A local HTTP endpoint on a thread; records each POST (path, headers, JSON). ``fail_first`` answers 500."""

    def __init__(self, fail_first: int = 0):
        self.posts: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.posts.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                    "json": json.loads(body)})
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Stalled:
    """Accepts connections and never answers (a hung web service)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(2)
        for c in self.held:
            c.close()
        self.sock.close()


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


@pytest.fixture(scope="module")
def mask_clip(data_dir, tmp_path_factory):
    from face_detector import CenterFaceDetector

    path = tmp_path_factory.mktemp("alerts") / "mask_off.avi"
    return mask_on_off_clip(data_dir, CenterFaceDetector(), path, OFF)


def test_the_drawn_mask_is_called_mask_and_its_absence_no_mask(mask_clip, classifier):
    """The construction is honest only if the classifier calls the drawn mask a mask (checked first)."""
    from face_detector import CenterFaceDetector

    clip, fps, drawn = mask_clip
    det = CenterFaceDetector()
    cap = cv2.VideoCapture(str(clip))
    on, off = [], []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % 4 == 0:
            dets = det.detect(frame)
            if len(dets):
                k = dets.largest()
                label = classifier.classify(frame, dets[k]).labels[0]
                t = i / fps
                if drawn[i]:
                    on.append(label)
                elif OFF[0] + 0.2 <= t < OFF[1] - 0.2:
                    off.append(label)
        i += 1
    cap.release()
    assert len(on) >= 20 and len(off) >= 10
    assert on.count("mask") / len(on) >= 0.9, on
    assert sum(x in ("no_mask", "mask_incorrect") for x in off) / len(off) >= 0.9, off


def test_one_alert_when_the_mask_comes_off_to_event_log_webhook_command_and_snapshot(mask_clip, tmp_path):
    clip, _fps, _drawn = mask_clip
    receiver = Receiver()
    events, got = tmp_path / "e.jsonl", tmp_path / "command.json"
    script = tmp_path / "take.py"
    script.write_text("import sys, pathlib\npathlib.Path(sys.argv[1]).write_text(sys.stdin.read())\n")
    url = f"http://alice:s3cretpw@127.0.0.1:{receiver.port}/hook?token=t0ken123"
    try:
        proc = run_cli("--source", str(clip), "--headless", "--events", str(events),
                       "--alert-webhook", url, "--alert-command", f"{sys.executable} {script} {got}",
                       "--set", f"run.snapshot_dir={tmp_path / 'snaps'}")
    finally:
        receiver.close()
    assert proc.returncode == 0, proc.stderr
    alerts = read_alerts(events)
    assert len(alerts) == 1, alerts  # exactly one, although the face is unmasked for 3.2 s
    alert = alerts[0]
    assert alert["label"] in ("no_mask", "mask_incorrect")
    assert set(alert) == {"time", "track_id", "label", "duration_s", "box", "snapshot", "frame_id", "position_s"}
    assert alert["duration_s"] >= AFTER_S
    assert OFF[0] + AFTER_S <= alert["position_s"] <= OFF[1] + 0.5  # fired by frame time, in the unmasked stretch
    lines, summary = read_events(events)
    assert {f.get("track_id") for line in lines for f in line["faces"]} >= {alert["track_id"]}
    snapshot = cv2.imread(alert["snapshot"])
    assert snapshot is not None and min(snapshot.shape[:2]) >= 20
    # the same JSON reached the webhook (with the URL's credentials as HTTP basic auth) and the command
    assert [p["json"] for p in receiver.posts] == [alert]
    assert receiver.posts[0]["auth"] == "Basic " + base64.b64encode(b"alice:s3cretpw").decode()
    assert receiver.posts[0]["path"] == "/hook?token=t0ken123"
    assert json.loads(got.read_text()) == alert
    counts = summary["alerts"]
    assert counts["fired"] == 1 and counts["snapshots"] == 1
    assert counts["webhook"]["sent"] == 1 and counts["webhook"]["failed"] == 0
    assert counts["command"]["sent"] == 1
    assert summary["people"]["alerts"] == 1 and summary["people"]["counted"] >= 1
    # the secrets of the URL are nowhere in what the run printed or wrote
    for text in (proc.stderr, proc.stdout, events.read_text()):
        assert "s3cretpw" not in text and "t0ken123" not in text


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    # the astronaut photo, slowly panned: an unmasked face that moves, 4 s
    return write_clip(tmp_path_factory.mktemp("alerts") / "face.mp4", 120, fps=30.0)


@pytest.mark.parametrize("endpoint", ["dead", "stalled"])
def test_a_dead_or_stalled_webhook_does_not_block_the_run_and_is_counted(face_clip, tmp_path, endpoint):
    server = Stalled() if endpoint == "stalled" else None
    port = server.port if server else dead_port()
    events = tmp_path / "e.jsonl"
    try:
        proc = run_cli("--source", str(face_clip), "--headless", "--events", str(events),
                       "--alert-webhook", f"http://127.0.0.1:{port}/hook",
                       "--set", "alerts.after_s=0.3", "--set", "alerts.cooldown_s=0.5",
                       "--set", "alerts.webhook_timeout_s=1", "--set", "alerts.webhook_retries=2",
                       "--set", "alerts.webhook_backoff_s=0.2", "--set", "alerts.finish_s=1",
                       "--set", "alerts.queue_size=2", "--set", f"run.snapshot_dir={tmp_path}", timeout=120)
    finally:
        if server:
            server.close()
    assert proc.returncode == 0, proc.stderr
    _lines, summary = read_events(events)
    assert summary["frames_written"] == 120 and summary["ended"] == "end of source"
    fired = len(read_alerts(events))
    hook = summary["alerts"]["webhook"]
    assert fired >= 3 and summary["alerts"]["fired"] == fired
    assert hook["sent"] == 0
    assert hook["failed"] + hook["dropped"] + hook["unsent"] == fired  # every alert accounted for
    if endpoint == "dead":  # refused at once: each alert fails after its 3 tries (0.6 s of backoff)
        assert hook["failed"] >= 1 and hook["retries"] >= 2 and "alert webhook failed" in proc.stderr
    else:  # each try waits for its 1 s timeout: at the end the one in flight is given up, not waited for
        assert hook["unsent"] >= 1


def test_webhook_retries_with_backoff_then_succeeds():
    receiver = Receiver(fail_first=2)
    hook = WebhookNotifier(f"http://127.0.0.1:{receiver.port}/x", timeout_s=2, retries=3, backoff_s=0.05)
    hook.start()
    hook.submit({"track_id": 1})
    hook.finish(10)
    receiver.close()
    assert hook.stats()["sent"] == 1 and hook.retried == 2 and hook.failed == 0
    assert [p["json"] for p in receiver.posts] == [{"track_id": 1}]


def test_a_stalled_webhook_never_blocks_submit_and_drops_are_counted():
    server = Stalled()
    hook = WebhookNotifier(f"http://127.0.0.1:{server.port}/", timeout_s=5, retries=0, queue_size=4)
    hook.start()
    for i in range(50):  # returns at once although the first request hangs
        hook.submit({"n": i})
    hook.finish(0.3)
    server.close()
    s = hook.stats()
    assert s["sent"] == 0 and s["dropped"] >= 40
    assert s["sent"] + s["failed"] + s["dropped"] + s["unsent"] == 50


class Slow(Notifier):
    """A destination whose every send takes ``seconds`` and ignores the stop (like a request in flight)."""

    name = "slow"

    def __init__(self, seconds: float, fail: bool):
        super().__init__(queue_size=2)
        self.seconds, self.fail = seconds, fail

    def send(self, event: dict) -> None:
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("refused")


# finish(0.05) waits 0.05 s, stops, then 0.2 s more: sends that end before, inside and after those windows
@pytest.mark.parametrize("seconds", [0.0, 0.03, 0.12, 0.17, 0.2, 0.23, 0.4])
@pytest.mark.parametrize("fail", [False, True])
def test_every_alert_is_counted_once_whenever_the_send_in_flight_ends(seconds, fail):
    slow = Slow(seconds, fail)
    slow.start()
    for i in range(5):
        slow.submit({"n": i})
    slow.finish(0.05)
    time.sleep(max(seconds - 0.2, 0) + 0.3)  # a send given up on ends meanwhile: it must not count again
    s = slow.stats()
    assert s["sent"] + s["failed"] + s["dropped"] + s["unsent"] == 5, s
    assert s["dropped"] >= 2  # the channel holds 2; the first may already be in flight


def test_command_gets_the_json_and_failures_and_timeouts_are_counted(tmp_path):
    out = tmp_path / "x.json"
    good = CommandNotifier(f"{sys.executable} -c \"import sys,pathlib; pathlib.Path(sys.argv[1]).write_text("
                           f"sys.stdin.read())\" {out}")
    bad = CommandNotifier(f"{sys.executable} -c \"import sys; sys.exit(3)\"")
    slow = CommandNotifier(f"{sys.executable} -c \"import time; time.sleep(30)\"", timeout_s=0.5)
    missing = CommandNotifier("/nonexistent/livemask-alert-hook")
    for n in (good, bad, slow, missing):
        n.start()
        n.submit({"track_id": 7, "label": "no_mask"})
        n.finish(10)
    assert json.loads(out.read_text()) == {"track_id": 7, "label": "no_mask"}
    assert good.sent == 1 and (bad.failed, slow.failed, missing.failed) == (1, 1, 1)


def test_the_alert_sound_is_a_short_wav_and_a_missing_player_is_counted(caplog):
    import wave

    path = alert_sound()
    assert path.stat().st_size < 20_000
    with wave.open(str(path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
        assert 0.1 < seconds < 1.0 and wav.getnchannels() == 1
    silent = SoundNotifier(player=None)
    silent.player = None
    silent.start()
    silent.submit({})
    silent.finish(5)
    assert silent.failed == 1
    # a real program as the player: it must receive the WAV's path and read it as a WAV
    checker = [sys.executable, "-c", "import sys, wave; assert wave.open(sys.argv[1]).getnframes() > 1000"]
    sound = SoundNotifier(player=checker)
    sound.start()
    sound.submit({})
    sound.finish(5)
    assert sound.sent == 1 and sound.playing.returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--alert-webhook", "ftp://example.org/x"], "alerts.webhook: expected an http:// or https:// URL"),
    (["--alert-command", "no-such-program-livemask"], "alerts.command: program not found: no-such-program-livemask"),
    (["--set", "alerts.after_s=-1"], "alerts.after_s: expected a number"),
    (["--set", "privacy.blur_faces=smudge"], "privacy.blur_faces: expected one of"),
])
def test_bad_alert_and_privacy_settings_are_one_line_errors(face_clip, args, message):
    proc = run_cli("--source", str(face_clip), "--headless", *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("livemask: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_alert_for_a_masked_person_and_rule_counts(data_dir, tmp_path):
    events = tmp_path / "e.jsonl"
    clip = Path(data_dir) / "videos" / "masked_woman_laptop.mp4"
    proc = run_cli("--source", str(clip), "--headless", "--events", str(events), "--max-frames", "120",
                   "--set", f"run.snapshot_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    lines, summary = read_events(events)
    assert read_alerts(events) == [] and summary["alerts"]["fired"] == 0
    assert summary["people"]["counted"] == 1 and summary["people"]["share_masked"] == 1.0
    assert lines[-1]["people"]["counted"] == 1 and lines[-1]["people"]["in_view"] == 1


def test_snapshot_crop_is_the_alerted_face(mask_clip, tmp_path):
    """The snapshot holds the face of the alert's box (it matches the source frame's crop)."""
    from livemask.core.types import Alert
    from livemask.sinks.alerts import AlertSink

    clip, _fps, _drawn = mask_clip
    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    cap.release()
    assert ok
    alert = Alert(0.0, 1, "no_mask", 2.0, (100.0, 50.0, 200.0, 170.0), 0)
    crop = AlertSink().crop(frame, alert)
    assert crop.shape[:2] == (170 + 30 - 20, 200 + 25 - 75)  # the box grown by a quarter on each side
    assert np.array_equal(crop, frame[20:200, 75:225])

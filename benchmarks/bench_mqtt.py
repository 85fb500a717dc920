"""Does the MQTT sink slow the video, and how many messages a second does it pass to a local broker?

Part 1, video: the clip ../shared/data/videos/several_unmasked_faces.mp4 (real unmasked people, 640x360,
275 frames) through the engine of ``livemask run --headless`` (threaded capture / detect / classify stages,
tracking, the people stage with frequent alerts: ``after_s`` 0.3 s, ``cooldown_s`` 1 s) with

* no MQTT sink;
* the MQTT sink on a live Mosquitto (started here on a free 127.0.0.1 port);
* the MQTT sink on a dead broker (a local port where nothing listens: every connect is refused, retried).

The three are run in turn (the order rotating), ``--repeats`` times, and the median fps of each is reported
(fps = frames / wall time of the engine's run; the sink's end-of-run grace period is not in it).

Part 2, throughput to the live broker, received by ``mosquitto_sub`` (C) on the same machine:

* QoS 0 state messages: ``--qos0`` retained state messages handed to the sink's paho client the way its
  publisher thread does, timed from the first publish to the last message received;
* QoS 1 alerts: ``--qos1`` results each carrying one alert written to the sink (its queue, its publisher
  thread, paho, the broker), timed from the first write to the last alert received; lost = written - received;
* the time ``MqttSink.write`` takes on the engine's loop for a result without an alert (one tracked face).

Usage: python benchmarks/bench_mqtt.py [--repeats 5] [--qos0 20000] [--qos1 5000] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from common import machine, rotated, table
from mqttbroker import Broker, free_port, mosquitto_missing

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT.parent / "shared" / "data" / "videos" / "several_unmasked_faces.mp4"


def one_run(url: str | None, detector, classifier, snapshots: Path) -> dict:
    from livemask.engine.capture import Capture
    from livemask.engine.engine import Engine
    from livemask.engine.people import AlertRule, People, PeopleOptions
    from livemask.engine.pipeline import FrameProcessor
    from livemask.engine.sources import FileSource
    from livemask.engine.tracker import Tracker
    from livemask.sinks.mqtt import MqttOptions, MqttSink

    capture = Capture(FileSource(CLIP), queue_size=4, stop_event=threading.Event())
    capture.open()
    people = People(PeopleOptions(), AlertRule(("no_mask", "mask_incorrect"), after_s=0.3, cooldown_s=1.0), None)
    sinks = [MqttSink(MqttOptions(url=url, finish_s=1.0))] if url else []
    engine = Engine(capture, FrameProcessor(detector, classifier, Tracker(), 2), sinks, people=people)
    return engine.run()


def video(args, broker: Broker) -> None:
    from livemask.models.backends import needs_tensorflow, open_classifier

    if needs_tensorflow(args.model):
        from livemask.core.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
    from face_detector import CenterFaceDetector

    # `livemask run`'s video settings and defaults: 320 px, no coarse pass, the shipped 8-bit network
    detector = CenterFaceDetector(input_long_side=320, coarse_long_side=0, precision="int8")
    classifier = open_classifier(args.model)
    classifier.warmup()
    urls = {"MQTT off": None, "MQTT on, live broker": broker.url,
            "MQTT on, dead broker": f"mqtt://127.0.0.1:{free_port()}"}
    fps: dict[str, list[float]] = {k: [] for k in urls}
    last: dict[str, dict] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as snaps:
        one_run(None, detector, classifier, Path(snaps))  # warm-up, not counted
        for name in rotated(list(urls), args.repeats):
            summary = one_run(urls[name], detector, classifier, Path(snaps))
            fps[name].append(summary["fps"])
            last[name] = summary
    load_after = os.getloadavg()
    off = statistics.median(fps["MQTT off"])
    rows = []
    for name in urls:
        m = last[name].get("mqtt") or {}
        med = statistics.median(fps[name])
        rows.append([name, f"{med:.1f}", f"{100 * (med - off) / off:+.1f}%", " / ".join(f"{v:.1f}" for v in fps[name]),
                     last[name]["people"]["alerts"], m.get("alerts_sent", "-"),
                     "-" if not m else m["dropped"] + m["unsent"]])
    print(f"Video: {CLIP.name}, {last['MQTT off']['frames_written']} frames, {args.repeats} repeats, same process")
    print(f"Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    print()
    print(table(["configuration", "median fps", "vs off", "runs (fps)", "alerts per run", "alerts sent",
                 "not sent (dropped + unsent)"], rows))


def _result(i: int, alert: bool):
    import numpy as np

    from livemask.core.types import Alert, Analytics, Detections, Frame, FrameResult, PeopleStats, Predictions

    probs = np.array([[0.1, 0.9, 0.0]], np.float32)
    fired = (Alert(time.time(), 1, "no_mask", 2.0, (10.0, 10.0, 30.0, 30.0), i, i / 30),) if alert else ()
    return FrameResult(Frame(i, time.monotonic(), np.zeros((8, 8, 3), np.uint8), "bench", i * 1000 / 30),
                       Detections(np.array([[1, 1, 5, 5]], np.float32), np.ones(1, np.float32)),
                       Predictions(probs, ("mask", "no_mask", "mask_incorrect")), np.array([1], np.int64), 1.0,
                       Analytics(PeopleStats(1, 1, 0, 0), np.zeros(1, np.bool_), fired))


def _subscriber(port: int, topic: str, count: int, qos: int) -> subprocess.Popen:
    proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", str(qos),
                             "-C", str(count)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # subscribed
    return proc


def _received(proc: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """(messages received, time of the last one) once mosquitto_sub exits or ``timeout`` passes."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return len(out.splitlines()), time.perf_counter()


def throughput(args, broker: Broker) -> None:
    from livemask.engine.sink import RunInfo
    from livemask.sinks.mqtt import MqttOptions, MqttSink

    info = RunInfo("bench", 30.0, (8, 8), None, True, ("mask", "no_mask", "mask_incorrect"))
    rows = []
    rates0, rates1, lost0, lost1, write_us = [], [], [], [], []
    for _ in range(args.repeats):
        sink = MqttSink(MqttOptions(url=broker.url, queue_size=args.qos1 + 10, finish_s=30), camera="bench")
        sink.open(info)
        assert sink.connected.wait(10), "cannot connect to the broker"
        sub = _subscriber(broker.port, "livemask/bench/state", args.qos0, 0)
        payloads = [(b'{"camera":"bench","in_view":%d,"fps":30.0}' % i) for i in range(args.qos0)]
        t0 = time.perf_counter()
        for p in payloads:
            while not sink._publish("state", p, qos=0, retain=True):
                time.sleep(0.001)
        n, t1 = _received(sub, 60)
        rates0.append(n / (t1 - t0))
        lost0.append(args.qos0 - n)
        sub = _subscriber(broker.port, "livemask/bench/alert", args.qos1, 1)
        results = [_result(i, True) for i in range(args.qos1)]
        t0 = time.perf_counter()
        for r in results:
            sink.write(r)
        n, t1 = _received(sub, 60)
        rates1.append(n / (t1 - t0))
        lost1.append(args.qos1 - n)
        plain = [_result(args.qos1 + i, False) for i in range(2000)]
        t0 = time.perf_counter()
        for r in plain:
            sink.write(r)
        write_us.append((time.perf_counter() - t0) / len(plain) * 1e6)
        summary: dict = {}
        sink.close(summary)
    rows.append([f"QoS 0 state, {args.qos0} messages", f"{statistics.median(rates0):,.0f}",
                 " / ".join(f"{v:,.0f}" for v in rates0), sum(lost0)])
    rows.append([f"QoS 1 alerts through the sink, {args.qos1} alerts", f"{statistics.median(rates1):,.0f}",
                 " / ".join(f"{v:,.0f}" for v in rates1), sum(lost1)])
    print(f"Throughput to a local Mosquitto, received by mosquitto_sub, {args.repeats} repeats")
    print()
    print(table(["messages", "median msg/s", "runs (msg/s)", "lost (all runs)"], rows))
    print()
    print(f"MqttSink.write of a result without an alert (on the engine's loop): median "
          f"{statistics.median(write_us):.1f} us per result (runs: {' / '.join(f'{v:.1f}' for v in write_us)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--qos0", type=int, default=20000)
    parser.add_argument("--qos1", type=int, default=5000)
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.onnx"))
    parser.add_argument("--only", choices=("video", "throughput"))
    args = parser.parse_args()
    why = mosquitto_missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    if not CLIP.is_file() and args.only != "throughput":
        print(f"clip not found: {CLIP}", file=sys.stderr)
        return 2
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        broker = Broker(Path(folder)).start()
        try:
            if args.only != "video":
                throughput(args, broker)
                print()
            if args.only != "throughput":
                video(args, broker)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

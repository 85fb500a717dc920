"""A livemask MQTT publisher without models, for the site tests: ``python mqtt_publisher.py URL PREFIX CAMERA
[ALERT_EVERY]``. Writes a result with one tracked unmasked face every 50 ms (an alert every ALERT_EVERY
results, 0: none) to a real :class:`MqttSink` until killed."""

from __future__ import annotations

import sys
import time

import numpy as np

from livemask.core.types import Alert, Analytics, Detections, Frame, FrameResult, PeopleStats, Predictions
from livemask.engine.sink import RunInfo
from livemask.sinks.mqtt import MqttOptions, MqttSink

CLASSES = ("mask", "no_mask", "mask_incorrect")


def result(i: int, alert: bool) -> FrameResult:
    t = i * 0.05
    fired = (Alert(time.time(), 1, "no_mask", 2.0, (10.0, 10.0, 30.0, 30.0), i, t),) if alert else ()
    return FrameResult(Frame(i, time.monotonic(), np.zeros((8, 8, 3), np.uint8), "pub", t * 1000),
                       Detections(np.array([[1, 1, 5, 5]], np.float32), np.ones(1, np.float32)),
                       Predictions(np.array([[0.1, 0.9, 0.0]], np.float32), CLASSES), np.array([1], np.int64), 1.0,
                       Analytics(PeopleStats(1, 1, 0, 0), np.zeros(1, np.bool_), fired))


def main() -> None:
    url, prefix, camera = sys.argv[1:4]
    every = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    sink = MqttSink(MqttOptions(url=url, prefix=prefix), camera=camera)
    sink.open(RunInfo("pub", 20.0, (8, 8), None, True, CLASSES))
    i = 0
    while True:
        sink.write(result(i, every > 0 and i % every == every - 1))
        i += 1
        time.sleep(0.05)


if __name__ == "__main__":
    main()

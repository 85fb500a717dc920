"""Prometheus metrics of a run, per camera (prometheus-client; text exposition at ``/metrics``).

:class:`Metrics` owns one registry for the process. :meth:`Metrics.camera` gives the sink of one camera,
which records per result (on the engine's loop, a few counter updates): the capture-to-result latency
histogram, faces by class, people counted and masked (so the masked share), alerts fired, fps. The
engine's own counters are read when Prometheus scrapes (:meth:`CameraMetrics.attach`): frames read,
processed and dropped, source reconnects, results each sink dropped, alerts sent and failed by each
destination (webhook, command, sound, MQTT), MQTT drops and reconnects. ``livemask_model_load_seconds``
is the time the models took to load and warm up.

Names (all with the label ``camera``; counters end in ``_total`` in the exposition):
``livemask_frames_read``, ``livemask_frames_processed``, ``livemask_frames_dropped``,
``livemask_source_reconnects``, ``livemask_capture_to_result_seconds`` (histogram), ``livemask_fps``,
``livemask_faces`` (``class``), ``livemask_people_counted``, ``livemask_people_masked``,
``livemask_masked_share``, ``livemask_alerts_fired``, ``livemask_alerts_sent`` / ``livemask_alerts_failed``
(``destination``), ``livemask_sink_dropped`` (``sink``), ``livemask_mqtt_dropped``,
``livemask_mqtt_reconnects``; ``livemask_model_load_seconds`` (no camera).
"""

from __future__ import annotations

import logging
import threading
import time

from livemask.core.errors import ConfigError
from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


def _prometheus():
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError("metrics need prometheus-client: pip install 'livemask[serve]' "
                          "(or 'prometheus-client>=0.20,<1')") from None
    return prometheus_client


class Metrics:
    """The process's metrics registry, its per-camera sinks and, for ``run``, its HTTP server."""

    def __init__(self):
        pc = _prometheus()
        self.registry = pc.CollectorRegistry()
        self.cameras: dict[str, CameraMetrics] = {}
        r = self.registry
        self.latency = pc.Histogram("livemask_capture_to_result_seconds", "capture to result latency", ["camera"],
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.faces = pc.Counter("livemask_faces", "faces classified, by class", ["camera", "class"], registry=r)
        self.people = pc.Gauge("livemask_people_counted", "people counted so far (by track)", ["camera"], registry=r)
        self.masked = pc.Gauge("livemask_people_masked", "of the people counted, those masked", ["camera"],
                               registry=r)
        self.share = pc.Gauge("livemask_masked_share", "masked share of the people counted (NaN: none yet)",
                              ["camera"], registry=r)
        self.fired = pc.Counter("livemask_alerts_fired", "alerts fired", ["camera"], registry=r)
        self.fps = pc.Gauge("livemask_fps", "results per second over the last 2 s", ["camera"], registry=r)
        self.model_load = pc.Gauge("livemask_model_load_seconds", "time the models took to load and warm up",
                                   registry=r)
        self.registry.register(_EngineCollector(self))
        self.server = None
        self._server_thread: threading.Thread | None = None

    def camera(self, name: str = "default") -> CameraMetrics:
        if name not in self.cameras:
            self.cameras[name] = CameraMetrics(self, name)
        return self.cameras[name]

    def text(self) -> bytes:
        """The exposition (Prometheus text format)."""
        return _prometheus().generate_latest(self.registry)

    @property
    def content_type(self) -> str:
        return _prometheus().CONTENT_TYPE_LATEST

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread (0: any free port); returns the port."""
        if not 0 <= port <= 65535:
            raise ConfigError(f"--metrics-port must be 0..65535, got {port}")
        try:
            self.server, self._server_thread = _prometheus().start_http_server(port, host, self.registry)
        except OSError as err:
            raise ConfigError(f"--metrics-port {port}: cannot listen on {host}:{port} ({err.strerror or err})") \
                from None
        port = self.server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", host, port)
        return port

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class CameraMetrics:
    """The sink of one camera: records each result; :meth:`attach` hands it the engine for scrape-time counts."""

    threaded = False

    def __init__(self, metrics: Metrics, camera: str):
        self.metrics = metrics
        self.camera = camera
        self.name = "metrics" if camera == "default" else f"metrics-{camera}"
        m = metrics
        self.latency = m.latency.labels(camera)
        self.people, self.masked, self.share = m.people.labels(camera), m.masked.labels(camera), m.share.labels(camera)
        self.fired = m.fired.labels(camera)
        self.fps = m.fps.labels(camera)
        self.share.set(float("nan"))
        self._faces: dict[str, object] = {}
        self._times: list[float] = []
        self.engine = None

    def attach(self, engine) -> None:
        self.engine = engine

    def open(self, info: RunInfo) -> None:
        for name in info.class_names:  # every class shows, also at 0
            self._face_counter(name)

    def _face_counter(self, label: str):
        counter = self._faces.get(label)
        if counter is None:
            counter = self._faces[label] = self.metrics.faces.labels(self.camera, label)
        return counter

    def write(self, result: FrameResult) -> None:
        now = time.monotonic()
        self.latency.observe(max(now - result.frame.timestamp, 0.0))
        for label in result.predictions.labels:
            self._face_counter(label).inc()
        self._times.append(now)
        while now - self._times[0] > 2.0:
            self._times.pop(0)
        span = self._times[-1] - self._times[0]
        self.fps.set((len(self._times) - 1) / span if span > 0 else 0.0)
        analytics = result.analytics
        if analytics is not None:
            people = analytics.people
            self.people.set(people.counted)
            self.masked.set(people.masked)
            self.share.set(people.masked / people.counted if people.counted else float("nan"))
            if analytics.alerts:
                self.fired.inc(len(analytics.alerts))

    def close(self, summary: dict) -> None:
        people = summary.get("people") if isinstance(summary, dict) else None
        if people:  # the run's final counts (a track still in view is counted by then)
            self.people.set(people.get("counted", 0))
            self.masked.set(people.get("masked", 0))
            counted = people.get("counted", 0)
            self.share.set(people.get("masked", 0) / counted if counted else float("nan"))
        self.fps.set(0.0)

    def stats(self) -> dict:
        return {}


class _EngineCollector:
    """Counts the engine keeps itself, read at scrape time (plain integers: safe to read from another thread)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        fams = {
            "read": CounterMetricFamily("livemask_frames_read", "frames read from the source", labels=["camera"]),
            "processed": CounterMetricFamily("livemask_frames_processed", "frames through detection and "
                                             "classification", labels=["camera"]),
            "dropped": CounterMetricFamily("livemask_frames_dropped", "frames dropped (capture and stages)",
                                           labels=["camera"]),
            "reconnects": CounterMetricFamily("livemask_source_reconnects", "source reconnects", labels=["camera"]),
            "sink": CounterMetricFamily("livemask_sink_dropped", "results a threaded sink could not take",
                                        labels=["camera", "sink"]),
            "sent": CounterMetricFamily("livemask_alerts_sent", "alerts delivered, by destination",
                                        labels=["camera", "destination"]),
            "failed": CounterMetricFamily("livemask_alerts_failed", "alerts not delivered (failed, dropped or "
                                          "unsent), by destination", labels=["camera", "destination"]),
            "mqtt_dropped": CounterMetricFamily("livemask_mqtt_dropped", "MQTT alerts and events dropped "
                                                "(queue full)", labels=["camera"]),
            "mqtt_reconnects": CounterMetricFamily("livemask_mqtt_reconnects", "MQTT reconnects", labels=["camera"]),
        }
        for name, cam in list(self.metrics.cameras.items()):
            engine = cam.engine
            if engine is None:
                continue
            pipeline = engine.pipeline
            cs = engine.capture.stats
            fams["read"].add_metric([name], cs.frames)
            fams["processed"].add_metric([name], pipeline.processed)
            fams["dropped"].add_metric([name], cs.dropped + pipeline.dropped)
            fams["reconnects"].add_metric([name], cs.reconnects)
            for runner in engine.runners:
                fams["sink"].add_metric([name, runner.name], runner.dropped)
                sink = runner.sink
                for notifier in getattr(sink, "notifiers", ()):  # the alert sink's destinations
                    s = notifier.stats()
                    fams["sent"].add_metric([name, notifier.name], s["sent"])
                    fams["failed"].add_metric([name, notifier.name], s["failed"] + s["dropped"] + s["unsent"])
                if runner.name.startswith("mqtt") and hasattr(sink, "counts"):
                    c = sink.counts()
                    fams["sent"].add_metric([name, "mqtt"], c["alerts_sent"])
                    fams["mqtt_dropped"].add_metric([name], c["dropped"])
                    fams["mqtt_reconnects"].add_metric([name], c["reconnects"])
        yield from fams.values()

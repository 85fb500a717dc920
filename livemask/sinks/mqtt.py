"""Events out over MQTT: availability, per-camera state, alerts and person-track events to a broker.

Topics (``<prefix>`` from ``mqtt.prefix``, ``<camera>`` the camera's name, ``default`` for one source):

* ``<prefix>/available``: ``online`` / ``offline``, retained, QoS 1; the last will is ``offline``, so a
  killed process is seen as gone by the broker;
* ``<prefix>/<camera>/state``: retained JSON (:meth:`MqttSink.state`), QoS 0, published when it changes
  (the fps alone is not a change), at most once a second;
* ``<prefix>/<camera>/alert``: the alert record as the event log has it
  (:func:`livemask.core.records.alert_record`) plus ``camera``, QoS 1, not retained;
* ``<prefix>/events``: one JSON message per person track, ``new`` (the track lasted ``event_min_s``),
  ``update`` (its voted label changed), ``end`` (unseen for ``event_end_s`` of frame time, or the run ended),
  QoS 1, not retained;
* with ``home_assistant``: retained discovery configs under ``<discovery_prefix>/`` (masked-share and
  people-in-view sensors, an alert binary sensor per camera) with the availability topic.

A process has one connection to the broker, :class:`MqttLink` (the availability topic and its last will,
the publisher thread, the queue); each camera has its own :class:`MqttSink` on its engine, attached to the
process's link (several cameras) or to a link of its own (one source). A camera that ends publishes its
last state; ``offline`` is published only when the link finishes, at the process's end. The sink runs on
the engine's loop and only builds messages there; the link's publisher thread hands them to paho-mqtt.
Alerts and events wait in a bounded :class:`Channel` (``queue_size``; a full channel drops the
new message, counted) while the broker is away; the newest state waits in one slot. paho reconnects
with a backoff doubling from 1 s up to ``reconnect_max_s``. A refused login is logged once, counted, and
not retried; the run goes on. At the end the sink gets ``finish_s`` seconds to send what waits, then
publishes ``offline``; what is still unsent is counted. Credentials never appear in a log line or the
summary (:func:`livemask.core.redact.redact_url`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from livemask.core.errors import ConfigError
from livemask.core.params import Range, check_fields
from livemask.core.records import alert_record
from livemask.core.redact import redact_url, safe_message
from livemask.core.types import FrameResult
from livemask.engine.channel import BufferPolicy, Channel
from livemask.engine.sink import RunInfo

log = logging.getLogger(__name__)

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a camera name: one topic level, no wildcards
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
STATE_EVERY_S = 1.0  # at most one state message a second
ALERT_HOLD_S = 10.0  # the state's "alerting" stays true this long after an alert


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    shown: str  # the URL with the credentials masked


def parse_url(url: str) -> BrokerAddress:
    """``mqtt://[user:password@]host[:port]`` or ``mqtts://...``; a ConfigError (credentials masked) otherwise."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(f"mqtt.url: not a valid URL: {shown!r}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(f"mqtt.url: expected mqtt://[user:password@]host[:port] or mqtts://..., got {shown!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"mqtt.url: a broker URL has no path or query, got {shown!r}")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerAddress(parts.hostname, port or SCHEMES[parts.scheme], parts.scheme == "mqtts", user or None,
                         password, shown)


def paho_client():
    """paho-mqtt's client module, or a ConfigError saying how to install it."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise ConfigError("mqtt needs paho-mqtt: pip install 'livemask[serve]' (or 'paho-mqtt>=2.1,<3')") from None
    return mqtt


def check_camera_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"camera name {name!r}: expected 1-64 letters, digits, '_', '-' or '.' "
                          "(one MQTT topic level)")
    return name


@dataclass
class MqttOptions:
    """The ``mqtt`` section of config.yaml (see there for the meaning of each key). Off while ``url`` is empty."""

    url: str | None = None
    prefix: str = "livemask"
    client_id: str | None = None
    queue_size: Annotated[int, Range(1, 1_000_000)] = 1000
    home_assistant: bool = False
    discovery_prefix: str = "homeassistant"
    keepalive_s: Annotated[int, Range(5, 3600)] = 30
    reconnect_max_s: Annotated[int, Range(1, 600)] = 10
    finish_s: Annotated[float, Range(0, 600)] = 5.0
    event_min_s: Annotated[float, Range(0, 3600)] = 0.5
    event_end_s: Annotated[float, Range(0, 3600, lo_open=True)] = 2.0
    site: bool = False  # serve: subscribe and list every camera publishing under site_prefix (GET /v1/site)
    site_prefix: str | None = None  # None: prefix

    def __post_init__(self) -> None:
        check_fields(self)
        if self.url is not None and not str(self.url).strip():
            self.url = None
        if self.url is not None:
            parse_url(str(self.url))
        for key in ("prefix", "discovery_prefix", "site_prefix"):
            if key == "site_prefix" and self.site_prefix is None:
                continue
            if not _PREFIX.match(str(getattr(self, key))):
                raise ConfigError(f"mqtt.{key}: expected topic levels of letters, digits, '_', '-' or '.' "
                                  f"separated by '/', got {getattr(self, key)!r}")
        if self.client_id is not None and not (0 < len(self.client_id) <= 128):
            raise ConfigError("mqtt.client_id: expected 1-128 characters")

    @property
    def enabled(self) -> bool:
        return self.url is not None


class _Track:
    __slots__ = ("announced", "first_t", "label", "last_t", "probability")

    def __init__(self, t: float, label: str, probability: float):
        self.first_t = self.last_t = t
        self.label = label
        self.probability = probability
        self.announced = False


class MqttLink:
    """One connection to the broker for a whole process, shared by its cameras' sinks.

    It owns what belongs to the process, not to a camera: the paho client, ``<prefix>/available`` and its last
    will, the publisher thread, the bounded channel of alerts and events (every camera's, in order) and the
    newest state of each camera. A camera's sink :meth:`attach`\\ es to it and, when the camera ends,
    :meth:`flush`\\ es its own messages; ``offline`` is published only by :meth:`finish`, at the process's end.
    """

    def __init__(self, options: MqttOptions, client_id: str | None = None):
        if not options.enabled:
            raise ConfigError("mqtt.url is not set")
        self.options = options
        self.address = parse_url(options.url)
        self.prefix = options.prefix
        self.client_id = (options.client_id or client_id or f"livemask-{socket.gethostname()}-{os.getpid()}")[:128]
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self._wake = threading.Event()  # the publisher thread has work
        # items: (camera, kind, topic, payload); a full channel drops the new message (counted by its sink)
        self.channel: Channel[tuple[str, str, str, bytes]] = Channel(options.queue_size, BufferPolicy.DROP_NEWEST,
                                                                     self.stop_event, "mqtt")
        self._lock = threading.Lock()
        self.sinks: dict[str, MqttSink] = {}
        self._state_slots: dict[str, tuple[str, bytes]] = {}  # camera -> newest state not yet handed to paho
        self._last_states: dict[str, tuple[str, bytes]] = {}  # camera -> last state handed to paho (again on reconnect)
        self._discovery_due: set[str] = set()
        self._pending: dict[int, tuple[str, str]] = {}  # mid -> (camera, kind): handed to paho, not yet reported sent
        self._acked: set[int] = set()
        self._waiting: Counter = Counter()  # camera -> alerts and events queued, not yet handed to paho
        self.sent: dict[str, Counter] = {"": Counter()}  # camera ("": the process's availability) -> kind -> count
        self.unsent: Counter = Counter()  # camera -> alerts and events never sent (set by finish)
        self.connects = 0
        self.reconnects = 0
        self.disconnects = 0
        self.login_refused = 0
        self.connect_failures = 0
        self.refused_reason: str | None = None
        self.client = None
        self._thread: threading.Thread | None = None
        self._held: tuple[str, str, str, bytes] | None = None  # taken from the channel, not yet handed to paho
        self._ended = False

    @property
    def available_topic(self) -> str:
        return f"{self.prefix}/available"

    def attach(self, sink: MqttSink) -> None:
        """A camera's sink joins (its discovery configs are sent once connected); the connection starts."""
        with self._lock:
            if sink.camera in self.sinks:
                raise ConfigError(f"mqtt: camera {sink.camera!r} is attached twice")
            self.sinks[sink.camera] = sink
            self.sent.setdefault(sink.camera, Counter())
            if self.options.home_assistant:
                self._discovery_due.add(sink.camera)
        self.start()
        self._wake.set()

    def start(self) -> None:
        if self.client is not None:
            return
        self.client = self._make_client()
        a = self.address
        self.client.connect_async(a.host, a.port, keepalive=self.options.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt", daemon=True)
        self._thread.start()

    def _make_client(self):
        mqtt = paho_client()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311,
                             clean_session=True)
        a = self.address
        if a.username is not None:
            client.username_pw_set(a.username, a.password)
        if a.tls:
            client.tls_set()
        client.will_set(self.available_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, self.options.reconnect_max_s)
        # paho's own queue of unacknowledged QoS 1 messages is bounded too (publish() then answers QUEUE_SIZE)
        client.max_queued_messages_set(self.options.queue_size)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        return client

    # -- what the sinks hand over (the engines' threads) ----------------------------------------------
    def queue(self, camera: str, kind: str, topic: str, payload: bytes) -> bool:
        """Queue an alert or event; False when the channel was full (the message is dropped)."""
        with self._lock:
            self._waiting[camera] += 1
        if not self.channel.put((camera, kind, topic, payload)):  # never waits
            with self._lock:
                self._waiting[camera] -= 1
            return False
        self._wake.set()
        return True

    def set_state(self, camera: str, topic: str, payload: bytes) -> None:
        with self._lock:
            self._state_slots[camera] = (topic, payload)
        self._wake.set()

    def flush(self, camera: str, timeout: float) -> int:
        """Wait up to ``timeout`` s until ``camera``'s messages are sent (not while the broker is away and none
        of them waits); returns how many of its alerts and events are still unsent. Availability is untouched."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                waiting = self._waiting[camera]
                pending = [k for c, k in self._pending.values() if c == camera]
                busy = waiting or pending or camera in self._state_slots
            if not busy or time.monotonic() >= deadline or self.login_refused or self._ended:
                break
            if not self.connected.is_set() and not waiting:
                break
            time.sleep(0.01)
        return waiting + sum(k in ("alert", "event") for k in pending)

    # -- the publisher thread ---------------------------------------------------------------------
    def _publish_loop(self) -> None:
        # woken only when there is work (a message queued, a new state, a connect, the end): no polling, so a
        # busy machine does not hand the GIL to this thread dozens of times a second for nothing
        while True:
            self._wake.wait()
            self._wake.clear()
            if self.stop_event.is_set():
                return
            if not self.connected.is_set():
                continue  # _on_connect wakes it again
            self._publish_states()
            while self.connected.is_set() and not self.stop_event.is_set():
                if self._held is None:
                    try:
                        item = self.channel.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:  # the end marker: everything queued was handed over
                        self._publish_states()
                        return
                    self._held = item
                camera, kind, topic, payload = self._held
                if self._publish(camera, kind, topic, payload, qos=1, retain=False):
                    self._held = None
                    with self._lock:
                        self._waiting[camera] -= 1
                else:  # paho's own queue is full (unacknowledged messages): kept, tried again shortly
                    self.stop_event.wait(0.005)

    def _publish_states(self) -> None:
        with self._lock:
            due, self._discovery_due = [self.sinks[c] for c in self._discovery_due if c in self.sinks], set()
            states, self._state_slots = self._state_slots, {}
        for sink in due:
            for topic, config in sink.discovery():
                self._publish(sink.camera, "discovery", topic, json.dumps(config, separators=(",", ":")), 1, True)
        for camera, (topic, payload) in states.items():
            self._publish(camera, "state", topic, payload, qos=0, retain=True)

    def _publish(self, camera: str, kind: str, topic: str, payload: bytes | str, qos: int, retain: bool,
                 client=None) -> bool:
        """Hand one message to paho; False when it did not take it. Counted as sent when paho reports it
        (QoS 0: written to the socket; QoS 1: acknowledged by the broker)."""
        from paho.mqtt.client import MQTT_ERR_QUEUE_SIZE, MQTT_ERR_SUCCESS

        if kind == "state":
            with self._lock:
                self._last_states[camera] = (topic, payload)
        info = (client or self.client).publish(topic, payload, qos=qos, retain=retain)
        # a QoS 1 message is kept by paho unless its own queue is full (whatever the link's state: it is sent
        # again after a reconnect); a QoS 0 message only when it could be written
        if info.rc != MQTT_ERR_SUCCESS and (qos == 0 or info.rc == MQTT_ERR_QUEUE_SIZE):
            return False
        with self._lock:  # never held while calling paho (its network thread calls _on_publish)
            if info.mid in self._acked:
                self._acked.discard(info.mid)
                self.sent.setdefault(camera, Counter())[kind] += 1
            else:
                self._pending[info.mid] = (camera, kind)
        return True

    # -- paho callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused(str(reason_code))
            return
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
            log.info("mqtt: connected again to %s", self.address.shown)
        self._publish("", "available", self.available_topic, "online", qos=1, retain=True, client=client)
        with self._lock:
            if self.options.home_assistant:
                self._discovery_due = set(self.sinks)
            for camera, last in self._last_states.items():
                # a broker that restarted without persistence lost it
                self._state_slots.setdefault(camera, last)
        self.connected.set()
        self._wake.set()

    def _refused(self, reason: str) -> None:
        self.login_refused += 1
        self.refused_reason = reason
        if self.login_refused == 1:
            log.warning("mqtt: %s refused the connection (%s); events are not sent, the run goes on",
                        self.address.shown, safe_message(reason))
        self.client.disconnect()  # not retried: the same credentials would be refused again

    def _on_connect_fail(self, client, userdata) -> None:
        self.connect_failures += 1
        if self.connect_failures == 1:
            log.warning("mqtt: cannot reach %s; retrying every %d s at most, events wait (up to %d)",
                        self.address.shown, self.options.reconnect_max_s, self.options.queue_size)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._ended:
            self.disconnects += 1
            if self.disconnects == 1:
                log.warning("mqtt: lost the connection to %s (%s); reconnecting", self.address.shown,
                            safe_message(str(reason_code)))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            got = self._pending.pop(mid, None)
            if got is None:
                self._acked.add(mid)  # reported before publish() returned: counted by _publish
            else:
                self.sent.setdefault(got[0], Counter())[got[1]] += 1

    # -- the end of the process -------------------------------------------------------------------
    def finish(self, timeout: float | None = None) -> None:
        """Send what waits for up to ``timeout`` seconds (default ``finish_s``), publish ``offline``, disconnect;
        count the rest per camera (:attr:`unsent`)."""
        if self.client is None or self._ended:
            self._ended = True
            return
        timeout = self.options.finish_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self.channel.full() and time.monotonic() < deadline:  # room for the end marker: no alert makes way
            time.sleep(0.01)
        self.channel.close()
        self._wake.set()
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline:
            if not self.connected.is_set() and self.channel.qsize() <= 1 and self._held is None:
                break  # the broker is away and nothing but the end marker waits: no reason to wait for it
            self._thread.join(0.02)
        while self._pending_count() and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop_event.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self._ended = True
        if self.connected.is_set():
            self._publish("", "available", self.available_topic, "offline", qos=1, retain=True)
            until = time.monotonic() + min(max(deadline - time.monotonic(), 0.5), 2.0)
            while self._pending_count() and self.connected.is_set() and time.monotonic() < until:
                time.sleep(0.01)
        with self._lock:
            for camera, n in self._waiting.items():
                self.unsent[camera] = n
            for camera, kind in self._pending.values():
                if kind in ("alert", "event"):
                    self.unsent[camera] += 1
        self.channel.drain()
        self.client.disconnect()
        stopper = threading.Thread(target=self.client.loop_stop, daemon=True)  # a reconnect wait ends within 1 s
        stopper.start()
        stopper.join(7.0)

    def _pending_count(self) -> int:
        with self._lock:
            return len(self._pending)


class MqttSink:
    """The engine's MQTT sink for one camera (see the module's docstring).

    ``link``: the process's shared :class:`MqttLink` (several cameras: the owner finishes it at the process's
    end); without one the sink makes its own and finishes it when it closes (one source)."""

    threaded = False  # quick work on the engine's loop; the network is the publisher thread's and paho's

    def __init__(self, options: MqttOptions, camera: str = "default", link: MqttLink | None = None):
        if not options.enabled:
            raise ConfigError("mqtt.url is not set")
        self.options = options
        self.camera = check_camera_name(camera)
        self.name = "mqtt" if camera == "default" else f"mqtt-{camera}"
        self.owns_link = link is None
        self.link = link if link is not None else MqttLink(
            options, f"livemask-{socket.gethostname()}-{os.getpid()}-{camera}")
        self.address = self.link.address
        self.prefix = self.link.prefix
        self._state_key: Any = None
        self._state_t = 0.0
        self._tracks: dict[int, _Track] = {}
        self._fps_times: list[float] = []
        self._last_alert: float | None = None
        self._last_alert_mono: float | None = None
        self._summary_people: dict | None = None
        self._last_people = None  # the people counts of the last result (a replayable file's state while it waits)
        self.alerts = {"fired": 0}
        self.events = Counter()
        self.dropped = 0
        self.unsent = 0

    @property
    def connected(self) -> threading.Event:
        return self.link.connected

    @property
    def login_refused(self) -> int:
        return self.link.login_refused

    # -- topics ---------------------------------------------------------------------------------
    @property
    def available_topic(self) -> str:
        return self.link.available_topic

    def topic(self, kind: str) -> str:
        return f"{self.prefix}/events" if kind == "event" else f"{self.prefix}/{self.camera}/{kind}"

    # -- the sink protocol ----------------------------------------------------------------------
    def open(self, info: RunInfo) -> None:
        self.class_names = tuple(info.class_names)
        self.source = info.source
        self.link.attach(self)

    def write(self, result: FrameResult) -> None:
        now = time.monotonic()
        self._fps_times.append(now)
        while self._fps_times and now - self._fps_times[0] > 2.0:
            self._fps_times.pop(0)
        analytics = result.analytics
        if analytics is not None:
            for alert in analytics.alerts:
                self.alerts["fired"] += 1
                self._last_alert, self._last_alert_mono = float(alert.time), now
                self._queue("alert", {**alert_record(alert), "camera": self.camera})
        if analytics is not None and analytics.people is not None:
            self._last_people = analytics.people
        self._track_events(result)
        self._update_state(result, now)

    def close(self, summary: dict) -> None:
        self._summary_people = summary.get("people") if isinstance(summary, dict) else None
        t = max((tr.last_t for tr in self._tracks.values()), default=0.0)
        for tid in list(self._tracks):
            self._end_track(tid, t)
        self._set_state(self.state(None, "ended"), force=True)
        if self.owns_link:
            self.link.finish(self.options.finish_s)
            self.unsent = self.link.unsent.get(self.camera, 0)
        else:  # the other cameras go on: the process's availability stays online
            self.unsent = self.link.flush(self.camera, self.options.finish_s)
        summary["mqtt" if self.camera == "default" else f"mqtt_{self.camera}"] = self.counts()

    def playback_changed(self, playback: str) -> None:
        """A file that ``serve`` keeps for replay waits for a viewer, plays or waits at its end: say so in the
        state at once (no frame comes while it waits)."""
        source = {"waiting": "waiting for a viewer", "ended": "ended"}.get(playback, "running")
        people = self._last_people
        if people is not None:
            self._summary_people = {"counted": people.counted, "masked": people.masked}
        if source != "running":
            self._fps_times.clear()
        self._set_state(self.state(None, source), force=True)

    def finish(self, timeout: float) -> None:
        """The sink's own link: send what waits, ``offline``, disconnect (a shared link is its owner's to finish)."""
        if self.owns_link:
            self.link.finish(timeout)

    # -- messages -------------------------------------------------------------------------------
    def _queue(self, kind: str, record: dict) -> None:
        payload = json.dumps(record, separators=(",", ":")).encode()
        if not self.link.queue(self.camera, kind, self.topic(kind), payload):  # a full channel: dropped, counted
            self.dropped += 1

    def _publish(self, kind: str, payload: bytes | str, qos: int, retain: bool) -> bool:
        """Hand one message of this camera straight to paho (benchmarks); False when paho did not take it."""
        return self.link._publish(self.camera, kind, self.topic(kind), payload, qos, retain)

    def _track_events(self, result: FrameResult) -> None:
        if result.track_ids is None:
            return
        t = float(result.time_s)
        static = result.analytics.static if result.analytics is not None else None
        labels = result.predictions.labels
        probs = result.predictions.probabilities
        opts = self.options
        for i, tid in enumerate(result.track_ids):
            if static is not None and bool(static[i]):
                continue
            tid = int(tid)
            label, p = labels[i], float(probs[i].max())
            track = self._tracks.get(tid)
            if track is None:
                track = self._tracks[tid] = _Track(t, label, p)
            track.last_t = t
            if not track.announced:
                track.label, track.probability = label, p
                if t - track.first_t >= opts.event_min_s:
                    track.announced = True
                    self._event("new", tid, track)
            elif label != track.label:
                before = track.label
                track.label, track.probability = label, p
                self._event("update", tid, track, before)
            else:
                track.probability = p
        for tid in [k for k, tr in self._tracks.items() if t - tr.last_t > opts.event_end_s]:
            self._end_track(tid, self._tracks[tid].last_t)

    def _end_track(self, tid: int, t: float) -> None:
        track = self._tracks.pop(tid)
        if track.announced:
            self._event("end", tid, track, end_time=t)

    def _event(self, kind: str, tid: int, track: _Track, before: str | None = None, end_time: float | None = None):
        record = {"type": kind, "camera": self.camera, "track_id": tid, "label": track.label,
                  "probability": round(track.probability, 4), "start_time": round(track.first_t, 3),
                  "end_time": None if end_time is None else round(end_time, 3)}
        if before is not None:
            record["previous_label"] = before
        self.events[kind] += 1
        self._queue("event", record)

    def state(self, result: FrameResult | None, source_state: str = "running") -> dict:
        """The camera's state: people in view by class, people so far, masked share, fps, the source's state."""
        by_class: Counter = Counter()
        people = None
        if result is not None and result.analytics is not None:
            static = result.analytics.static
            for i, label in enumerate(result.predictions.labels):
                if not bool(static[i]):
                    by_class[label] += 1
            people = result.analytics.people
        if people is not None:
            counted, masked, in_view = people.counted, people.masked, people.in_view
        elif self._summary_people:
            counted, masked, in_view = self._summary_people.get("counted", 0), self._summary_people.get("masked", 0), 0
        else:
            counted = masked = in_view = 0
        now = time.monotonic()
        recent = self._last_alert_mono is not None and now - self._last_alert_mono < ALERT_HOLD_S
        fps = (len(self._fps_times) - 1) / (self._fps_times[-1] - self._fps_times[0]) \
            if len(self._fps_times) > 1 and self._fps_times[-1] > self._fps_times[0] else 0.0
        return {"camera": self.camera, "source": source_state, "in_view": in_view,
                "in_view_by_class": {name: by_class.get(name, 0) for name in getattr(self, "class_names", ())},
                "people_counted": counted, "people_masked": masked,
                "masked_share": round(masked / counted, 4) if counted else None,
                "alerts": self.alerts["fired"], "alerting": bool(recent),
                "last_alert": None if self._last_alert is None else round(self._last_alert, 3),
                "fps": round(fps if source_state == "running" else 0.0, 1)}

    def _update_state(self, result: FrameResult, now: float) -> None:
        if now - self._state_t < STATE_EVERY_S:
            return
        self._state_t = now  # looked at once a second, sent when it changed
        self._set_state(self.state(result))

    def _set_state(self, record: dict, force: bool = False) -> None:
        key = {k: v for k, v in record.items() if k != "fps"}
        if key == self._state_key and not force:
            return
        self._state_key = key
        self.link.set_state(self.camera, self.topic("state"), json.dumps(record, separators=(",", ":")).encode())

    # -- Home Assistant -----------------------------------------------------------------------------
    def discovery(self) -> list[tuple[str, dict]]:
        """Home Assistant MQTT discovery configs: (topic, config) for this camera's three entities."""
        base = f"{self.prefix.replace('/', '_')}_{self.camera}"
        device = {"identifiers": [base], "name": f"livemask {self.camera}", "manufacturer": "livemask"}
        common = {"availability_topic": self.available_topic, "device": device,
                  "state_topic": self.topic("state")}
        d = self.options.discovery_prefix
        return [
            (f"{d}/sensor/{base}/masked_share/config",
             {**common, "name": "masked share", "unique_id": f"{base}_masked_share", "unit_of_measurement": "%",
              "value_template": "{{ (value_json.masked_share * 100) | round(1) if value_json.masked_share "
                                "is not none else 'unknown' }}"}),
            (f"{d}/sensor/{base}/in_view/config",
             {**common, "name": "people in view", "unique_id": f"{base}_in_view",
              "value_template": "{{ value_json.in_view }}"}),
            (f"{d}/binary_sensor/{base}/alert/config",
             {**common, "name": "mask alert", "unique_id": f"{base}_alert", "device_class": "problem",
              "value_template": "{{ 'ON' if value_json.alerting else 'OFF' }}"}),
        ]

    def stats(self) -> dict:
        return {}  # the counts go into the summary when the sink closes (after the last send)

    def counts(self) -> dict:
        link = self.link
        sent = dict(link.sent.get(self.camera, {}))
        if self.owns_link and link.sent[""]:
            sent.update(link.sent[""])
        return {"broker": self.address.shown, "camera": self.camera, "sent": sent,
                "alerts_sent": sent.get("alert", 0), "events": dict(self.events),
                "dropped": self.dropped, "unsent": self.unsent,
                "connects": link.connects, "reconnects": link.reconnects, "login_refused": link.login_refused,
                "connect_failures": link.connect_failures}

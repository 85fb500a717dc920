"""The site across machines: ``serve`` subscribes to the broker and lists every camera that publishes there.

:class:`SiteWatcher` subscribes (paho-mqtt, its own network thread) to ``<site prefix>/#`` and keeps, per
camera, the newest retained state, the last alert and whether its publisher is online. A publisher is the
topic prefix before ``/available``; a camera is ``<publisher prefix>/<camera>``: so machines that each
publish under their own prefix (``livemask/hall-pc``, ``livemask/door-pc``) and one machine publishing
under ``livemask`` are both seen from a site prefix of ``livemask``. A publisher whose last will
(``offline``) arrives, or that ends its run, shows its cameras offline at once. ``GET /v1/site`` answers
the list (behind the server's token rule); a camera of this very process is marked ``local``. The Site page
shows the others as remote tiles. No video comes from remote cameras.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from livemask.core.redact import safe_message
from livemask.sinks.mqtt import MqttOptions, parse_url

log = logging.getLogger(__name__)


class SiteWatcher:
    def __init__(self, options: MqttOptions, client_id: str | None = None):
        self.options = options
        self.address = parse_url(options.url)
        self.prefix = options.site_prefix or options.prefix
        self.client_id = client_id or f"livemask-site-{socket.gethostname()}-{os.getpid()}"
        self.lock = threading.Lock()
        self.publishers: dict[str, dict] = {}  # publisher prefix -> {"online": bool, "since": t}
        self.cameras: dict[str, dict] = {}  # "<publisher>/<camera>" -> {"state", "last_alert", "updated"}
        self.connected = threading.Event()
        self.refused: str | None = None
        self.client = None
        # this process's own cameras (serve --camera publishing under mqtt.prefix): marked "local" in the view,
        # as the Site page shows them as its own tiles already
        self.local_prefix = options.prefix
        self.local_cameras: set[str] = set()

    def start(self) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311)
        a = self.address
        if a.username is not None:
            client.username_pw_set(a.username, a.password)
        if a.tls:
            client.tls_set()
        client.reconnect_delay_set(1, self.options.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *_args: self.connected.clear()
        client.on_message = self._on_message
        self.client = client
        client.connect_async(a.host, a.port, keepalive=self.options.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            stopper = threading.Thread(target=self.client.loop_stop, daemon=True)
            stopper.start()
            stopper.join(3.0)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused = str(reason_code)
            log.warning("site: %s refused the connection (%s)", self.address.shown, safe_message(self.refused))
            client.disconnect()
            return
        client.subscribe(f"{self.prefix}/#", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            self.take(msg.topic, msg.payload)
        except Exception as err:  # a foreign or broken message on the prefix: ignored
            log.debug("site: ignored a message on %s: %s", msg.topic, err)

    def take(self, topic: str, payload: bytes) -> None:
        """Fold one message into the site's view."""
        parts = topic.split("/")
        now = time.time()
        if parts[-1] == "available" and len(parts) >= 2:
            publisher = "/".join(parts[:-1])
            text = payload.decode(errors="replace").strip()
            with self.lock:
                self.publishers[publisher] = {"online": text == "online", "since": now}
            return
        if parts[-1] not in ("state", "alert") or len(parts) < 3:
            return
        publisher, camera = "/".join(parts[:-2]), parts[-2]
        if not payload:  # a cleared retained message
            return
        record = json.loads(payload)
        if not isinstance(record, dict):
            return
        key = f"{publisher}/{camera}"
        with self.lock:
            entry = self.cameras.setdefault(key, {"publisher": publisher, "name": camera, "state": None,
                                                  "last_alert": None, "updated": None})
            if parts[-1] == "state":
                entry["state"] = record
            else:
                entry["last_alert"] = record
            entry["updated"] = now

    def view(self) -> dict:
        """The site: each camera with its publisher's availability, newest state and last alert."""
        with self.lock:
            cameras = []
            for key in sorted(self.cameras):
                entry = self.cameras[key]
                pub = self.publishers.get(entry["publisher"])
                state = entry["state"] or {}
                online = bool(pub and pub["online"]) and state.get("source") != "ended"
                local = entry["publisher"] == self.local_prefix and entry["name"] in self.local_cameras
                cameras.append({"id": key, "name": entry["name"], "publisher": entry["publisher"],
                                "online": online, "local": local, "state": entry["state"],
                                "last_alert": entry["last_alert"],
                                "updated": None if entry["updated"] is None else round(entry["updated"], 3)})
        return {"broker": self.address.shown, "prefix": self.prefix, "connected": self.connected.is_set(),
                "cameras": cameras}


def add_site_route(app, watcher: SiteWatcher) -> None:
    @app.get("/v1/site", summary="every camera that publishes to the site's MQTT broker: online, state, last alert")
    async def site():
        return watcher.view()

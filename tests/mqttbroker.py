"""A real Mosquitto broker for the tests and the MQTT benchmark, and a paho-mqtt subscriber that records.

:class:`Broker` starts ``/usr/sbin/mosquitto -c CONF`` with ``listener PORT 127.0.0.1`` on a free port
(anonymous, or with a password file made by ``mosquitto_passwd``), waits until it accepts connections,
and can be stopped and started again on the same port (no persistence: retained messages go with it).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_missing() -> str | None:
    """Why the real broker cannot run here (None: it can)."""
    if not Path(MOSQUITTO).exists():
        return "mosquitto is not installed (apt-get install mosquitto mosquitto-clients)"
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        return "paho-mqtt is not installed (pip install 'paho-mqtt>=2.1,<3')"
    return None


class Broker:
    def __init__(self, folder: Path, users: dict[str, str] | None = None, persist: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        # persist: sessions and retained messages survive a stop (SIGTERM) and start, as on a real site
        lines = [f"listener {self.port} 127.0.0.1", f"persistence {'true' if persist else 'false'}",
                 f"persistence_location {self.folder}/", "log_dest stderr", "log_type error",
                 "max_queued_messages 100000", "max_inflight_messages 0"]
        if os.geteuid() == 0:  # mosquitto started as root drops to the user "mosquitto", who cannot write here
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if users:
            pwfile = self.folder / "passwd"
            for i, (user, password) in enumerate(users.items()):
                subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b",
                                *(["-c"] if i == 0 else []), str(pwfile), user, password], check=True,
                               capture_output=True)
            os.chmod(pwfile, 0o600)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Broker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "mosquitto.log", "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not accept connections")

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self, graceful: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


class Recorder:
    """A paho-mqtt subscriber on ``topics`` that keeps every message (topic, payload text, retain flag)."""

    def __init__(self, port: int, topics=("#",), username: str | None = None, password: str | None = None,
                 client_id: str | None = None):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        # a named recorder keeps its session (and gets what was queued for it while it was away)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"rec-{os.getpid()}-{id(self)}",
                                  clean_session=client_id is None)
        if username:
            self.client.username_pw_set(username, password)
        self.topics = topics

        def on_connect(client, userdata, flags, reason_code, properties):
            for t in self.topics:
                client.subscribe(t, qos=1)
            self.ready.set()

        def on_message(client, userdata, msg):
            with self.lock:
                self.messages.append((msg.topic, msg.payload.decode(errors="replace"), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.ready.wait(10), "the recorder could not subscribe"
        time.sleep(0.2)  # the SUBACK

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _r in self.messages if t == topic]

    def json(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout: float = 3.0) -> str | None:
    """The retained message on ``topic`` as a fresh subscriber sees it (None: none)."""
    rec = Recorder(port, (topic,))
    try:
        rec.wait_for(lambda: rec.on(topic), timeout)
        with rec.lock:
            got = [p for t, p, r in rec.messages if t == topic and r]
        return got[-1] if got else None
    finally:
        rec.close()

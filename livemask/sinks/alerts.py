"""Where alerts go besides the event log: a snapshot of the face, a webhook, a command, a sound.

:class:`AlertSnapshots` writes the face crop of an alert (a few KB; blurred when privacy asks)
when the people stage fires it, before the alert is emitted, so the alert names its file only
when the file was written (``"snapshot": null`` and a counted error otherwise); names carry a
random run id and never replace an existing file. :class:`AlertSink` runs on the engine's loop
and does only quick work per alert: it hands the alert's JSON to each :class:`Notifier`. A
notifier has its own thread behind a bounded :class:`Channel` (the new alert is dropped, and
counted, when it is full), so a slow or dead endpoint never slows the video. At the end of the
run each notifier gets ``finish_s`` seconds to send what is waiting; what is still unsent then
is counted, never waited for. The counts go into the run's summary under ``"alerts"``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import secrets
import shlex
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from livemask.core.errors import ConfigError
from livemask.core.params import Range, check_fields
from livemask.core.records import alert_record
from livemask.core.redact import redact_url, safe_message
from livemask.core.types import Alert, FrameResult
from livemask.engine.channel import BufferPolicy, Channel
from livemask.engine.sink import RunInfo, describe
from livemask.sinks.privacy import FaceBlur

log = logging.getLogger(__name__)


Seconds = Annotated[float, Range(0, 86_400)]


@dataclass
class AlertOptions:
    """The ``alerts`` section of config.yaml (see there for the meaning of each key)."""

    enabled: bool = True
    classes: list[str] = field(default_factory=lambda: ["no_mask", "mask_incorrect"])
    after_s: Seconds = 2.0
    cooldown_s: Seconds = 30.0
    snapshots: bool = True
    webhook: str | None = None
    webhook_timeout_s: Annotated[float, Range(0, 600, lo_open=True)] = 2.0
    webhook_retries: Annotated[int, Range(0, 20)] = 3
    webhook_backoff_s: Annotated[float, Range(0, 600)] = 0.5
    command: str | None = None
    command_timeout_s: Annotated[float, Range(0, 3600, lo_open=True)] = 5.0
    sound: bool = False
    queue_size: Annotated[int, Range(1, 10_000)] = 16
    finish_s: Annotated[float, Range(0, 600)] = 5.0

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.classes:
            raise ConfigError("alerts.classes: expected at least one class name")
        if self.webhook is not None:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(self.webhook)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018  (a bad port raises here)
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"alerts.webhook: expected an http:// or https:// URL, got "
                                  f"{redact_url(self.webhook)!r}")
        if self.command is not None:
            import shlex

            try:
                args = shlex.split(self.command)
            except ValueError as err:
                raise ConfigError(f"alerts.command: cannot split {self.command!r} ({err})") from None
            if not args:
                raise ConfigError("alerts.command: empty command")


class Notifier:
    """One destination of alerts: a daemon thread, a bounded channel, counts. Subclasses override :meth:`send`."""

    name = "notifier"
    quiet_after = 3  # failures logged one by one; later ones only counted

    def __init__(self, queue_size: int = 16):
        self.stop_event = threading.Event()
        self.channel: Channel[dict] = Channel(queue_size, BufferPolicy.DROP_NEWEST, self.stop_event,
                                              f"alerts {self.name}")
        self.sent = self.failed = self.unsent = 0
        self._thread: threading.Thread | None = None
        self._ended = False
        self._abandoned = False
        self._in_flight = False  # an alert taken from the channel and not yet counted
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name=f"alerts-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, event: dict) -> None:
        self.channel.put(event)  # never waits: a full channel drops the new alert (counted)

    def _work(self) -> None:
        while True:
            try:
                event = self.channel.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    return
                continue
            if event is None:
                return
            with self._lock:
                if self.stop_event.is_set():  # given up on: counted, not sent
                    self.unsent += 1
                    return
                self._in_flight = True
            error = None
            try:
                self.send(event)
            except Exception as err:
                error = err
            with self._lock:
                if self._abandoned:  # finish() already counted it as unsent
                    return
                self._in_flight = False
                if error is None:
                    self.sent += 1
                    continue
                self.failed += 1
                if self.failed <= self.quiet_after:
                    log.warning("alert %s failed: %s%s", self.name, safe_message(describe_error(error)),
                                " (further failures are only counted)" if self.failed == self.quiet_after else "")

    def send(self, event: dict) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """No more alerts: put the end marker (the thread sends what is waiting first)."""
        if self._thread is not None and not self._ended:
            self._ended = True
            self.channel.close()

    def finish(self, timeout: float) -> None:
        """Send what is waiting for up to ``timeout`` seconds, then stop; the rest is counted as unsent."""
        if self._thread is None:
            return
        self.end()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return
        with self._lock:
            self.stop_event.set()  # ends a retry wait; a request in flight ends at its own timeout
            self.unsent += max(self.channel.drain() - 1, 0)  # all but the end marker
        self._thread.join(0.2)
        with self._lock:
            if self._in_flight:  # still being sent (not just a thread on its way out): not waited for
                self._abandoned = True
                self.unsent += 1

    def stats(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.channel.dropped, "unsent": self.unsent}


def describe_error(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    if isinstance(err, urllib.error.URLError):
        return f"{err.reason}"
    return str(err) or type(err).__name__


def split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:pw@host/x`` -> (``http://host/x``, ``Basic ...``): urllib does not send userinfo itself."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), f"Basic {token}"


class WebhookNotifier(Notifier):
    """HTTP POST of the alert JSON; ``retries`` more tries after a failure, waiting ``backoff_s``, 2x, 4x, ...

    Any 2xx answer is success. The URL's credentials never appear in a log line or the summary.
    """

    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 2.0, retries: int = 3, backoff_s: float = 0.5,
                 queue_size: int = 16):
        super().__init__(queue_size)
        self.url, self.authorization = split_credentials(url)
        self.shown = redact_url(url)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.retried = 0
        self.opener = urllib.request.build_opener()  # the environment's proxies (and no_proxy) apply

    def send(self, event: dict) -> None:
        data = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "livemask-alerts"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                if self.stop_event.wait(self.backoff_s * 2 ** (attempt - 1)):
                    raise RuntimeError(f"{self.shown}: run ended while retrying")
            try:
                request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with self.opener.open(request, timeout=self.timeout_s) as answer:
                    answer.read(65536)
                return
            except (urllib.error.URLError, OSError, ValueError) as err:
                last = err
        raise RuntimeError(f"{self.shown}: {describe_error(last)} after {self.retries + 1} tries")

    def stats(self) -> dict:
        return {**super().stats(), "retries": self.retried, "url": self.shown}


class CommandNotifier(Notifier):
    """Runs ``command`` (split like a shell would, but without a shell) with the alert JSON on stdin.

    A run longer than ``timeout_s`` is killed; a non-zero exit, a kill or a start failure is a failure.
    """

    name = "command"

    def __init__(self, command: str, timeout_s: float = 5.0, queue_size: int = 16):
        super().__init__(queue_size)
        self.args = shlex.split(command)
        self.timeout_s = float(timeout_s)

    def send(self, event: dict) -> None:
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        try:
            done = subprocess.run(self.args, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{self.args[0]}: killed after {self.timeout_s:g} s") from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"{self.args[0]}: exit {done.returncode} {tail[0][:200]}".strip())


PLAYERS = (("aplay", ["-q"]), ("paplay", []), ("ffplay", ["-nodisp", "-autoexit", "-loglevel", "quiet"]))


def alert_sound() -> Path:
    """The short WAV shipped with the package (made by ``livemask/assets/make_alert_wav.py``)."""
    return Path(str(resources.files("livemask") / "assets" / "alert.wav"))


def find_player() -> list[str] | None:
    for program, args in PLAYERS:
        path = shutil.which(program)
        if path:
            return [path, *args]
    return None


class SoundNotifier(Notifier):
    """Plays the alert sound with the first player found (aplay, paplay, ffplay); one sound at a time.

    Without a player, it says so once and counts every alert as failed.
    """

    name = "sound"

    def __init__(self, path: str | Path | None = None, player: list[str] | None = None, queue_size: int = 4):
        super().__init__(queue_size)
        self.path = Path(path) if path else alert_sound()
        self.player = player if player is not None else find_player()
        self.playing: subprocess.Popen | None = None
        if self.player is None:
            log.warning("alert sound: no player found (%s); alerts will be silent",
                        ", ".join(p for p, _ in PLAYERS))

    def send(self, event: dict) -> None:
        if self.player is None:
            raise RuntimeError("no sound player")
        if self.playing is not None and self.playing.poll() is None:
            return  # still sounding: one at a time
        self.playing = subprocess.Popen([*self.player, str(self.path)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self, timeout: float) -> None:
        super().finish(timeout)
        if self.playing is not None:
            try:
                self.playing.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.playing.kill()
                self.playing.wait()


def face_crop(image: np.ndarray, box, margin: float = 0.25, blur: FaceBlur | None = None) -> np.ndarray:
    """The face of ``box`` with ``margin`` of its size around it (a copy), blurred when ``blur`` is given."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    x1, y1 = int(max(x1 - mx, 0)), int(max(y1 - my, 0))
    x2, y2 = int(min(x2 + mx, w)), int(min(y2 + my, h))
    crop = image[y1:y2, x1:x2].copy()
    if blur is not None and crop.size:
        inner = np.array([[box[0] - x1, box[1] - y1, box[2] - x1, box[3] - y1]], np.float32)
        blur.apply(crop, inner)
    return crop


class AlertSnapshots:
    """Writes alert face crops into ``folder``, called by the people stage as it fires an alert.

    :meth:`save` returns the path written, or None when the write failed (counted in
    :attr:`errors`, the first one logged): an alert never names a file that does not exist. A
    name is ``alert-<time>-<run id>-f<frame>-t<track>.png``: the run id is random, so runs and
    cameras sharing the folder never pick the same name, and the file is created exclusively
    (``-2``, ``-3``, ... when a name is taken), so no existing file is ever replaced.
    """

    def __init__(self, folder: str | Path, blur: FaceBlur | None = None, margin: float = 0.25):
        self.folder = Path(folder)
        self.blur = blur
        self.margin = float(margin)
        self.run_id = secrets.token_hex(4)
        self.written = 0
        self.errors = 0

    def save(self, image: np.ndarray, box, frame_id: int, track_id: int, wall: float) -> str | None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))
        base = f"alert-{stamp}-{self.run_id}-f{frame_id:06d}-t{track_id}"
        try:
            crop = face_crop(image, box, self.margin, self.blur)
            ok, buf = cv2.imencode(".png", crop) if crop.size else (False, None)
            if not ok:
                raise OSError(f"cannot encode the {crop.shape[1]}x{crop.shape[0]} crop as PNG")
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self._write_new(base, buf.tobytes())
        except Exception as err:  # counted; the alert still goes out, with "snapshot": null
            self.errors += 1
            if self.errors == 1:
                log.warning("alert snapshot not written: %s", safe_message(describe(err)))
            return None
        self.written += 1
        return str(path)

    def _write_new(self, base: str, data: bytes) -> Path:
        for n in range(1, 1000):
            path = self.folder / (f"{base}.png" if n == 1 else f"{base}-{n}.png")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except BaseException:
                path.unlink(missing_ok=True)  # never a partial file under the alert's name
                raise
            return path
        raise OSError(f"{self.folder / base}.png: 999 files of that name exist")


class AlertSink:
    """The engine's sink for alerts: every notifier gets each alert (the event log writes the events itself;
    the people stage's :class:`AlertSnapshots` wrote the crop)."""

    name = "alerts"
    threaded = False  # quick work only; the slow part runs in each notifier's thread

    def __init__(self, notifiers: list[Notifier] = (), blur: FaceBlur | None = None, finish_s: float = 5.0,
                 margin: float = 0.25, snapshots: AlertSnapshots | None = None):
        self.notifiers = list(notifiers)
        self.blur = blur
        self.finish_s = float(finish_s)
        self.margin = float(margin)
        self.snapshots = snapshots
        self.fired = 0

    def open(self, info: RunInfo) -> None:
        for n in self.notifiers:
            n.start()

    def crop(self, image: np.ndarray, alert: Alert) -> np.ndarray:
        return face_crop(image, alert.box, self.margin, self.blur)

    def write(self, result: FrameResult) -> None:
        if result.analytics is None:
            return
        for alert in result.analytics.alerts:
            self.fired += 1
            event = alert_record(alert)
            for n in self.notifiers:
                n.submit(event)

    def close(self, summary: dict) -> None:
        for n in self.notifiers:
            n.end()
        deadline = time.monotonic() + self.finish_s  # one shared grace period, not one per notifier
        for n in self.notifiers:
            n.finish(max(deadline - time.monotonic(), 0.0))
        snaps = self.snapshots
        record = {"fired": self.fired, "snapshots": snaps.written if snaps else 0,
                  "snapshot_errors": snaps.errors if snaps else 0}
        record.update({n.name: n.stats() for n in self.notifiers})
        summary["alerts"] = record  # the sinks closed after this one (event log, log line) include it

    def stats(self) -> dict:
        return {}

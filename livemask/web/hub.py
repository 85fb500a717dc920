"""Live mode and browser webcam: the :class:`FrameHub` and the routes that serve it.

:class:`FrameHub` is one of the engine's sinks (:mod:`livemask.engine.sink`): threaded, so
the engine hands it results through a small bounded channel and never waits for it (what it
could not take is dropped and counted in the run's summary). ``write`` keeps only the newest
frame (annotated and JPEG-encoded once, whatever the number of viewers) and never waits for a
viewer, so a slow browser cannot stall the loop. Its :class:`EventFeed`, on the engine's thread,
appends every frame's event-log lines (:func:`livemask.core.records.event_lines`: the same lines
as the ``--events`` file, with ``people`` and an ``alert`` line per alert when the people stage
ran), so no line is lost when a frame is. Viewers read the newest frame when they are ready for
one and skip the rest (counted per viewer).

Routes (added by :func:`add_live_routes` when the server has a live source):

* ``GET /v1/stream.mjpg``: multipart MJPEG of the annotated frames (for ``<img>``, VLC, ...).
* ``GET /v1/events``: Server-Sent Events, the event-log lines (one per frame, one per alert), then ``end``.
* ``WS /v1/live``: per frame a JSON text message (frame id, capture time, faces, counts,
  fps, the people stage's ``people``) followed by the JPEG as a binary message; the page measures
  latency from it.
* ``POST /v1/live/explain``: Grad-CAM / occlusion for the faces of the newest frame.

``WS /v1/webcam`` (added by :func:`add_webcam_route`, always): the browser sends JPEG
frames as binary messages; the server keeps only the newest unprocessed one (older ones
are dropped and counted) and answers each processed frame with its face records. A message over
:attr:`WebSocketLimits.max_message_bytes` closes the connection with code 1009, more than
:attr:`WebSocketLimits.max_messages_per_s` (over a one-second bucket) with code 1008; a frame
that does not fit in the server's decode budget is answered ``{"frame": n, "error": "busy...",
"retry_after": 1}`` and skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np
from fastapi import HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from livemask.core.clock import wall_offset
from livemask.core.params import Range, check_fields
from livemask.core.records import event_lines, face_records
from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo
from livemask.web.imagecheck import DecodeBudget, UploadImageError, checked_size, decode_cost, decode_upload

log = logging.getLogger(__name__)

POLL_S = 0.005  # viewers look for a newer frame this often


@dataclass(frozen=True)
class LiveFrame:
    """The newest frame as viewers get it."""

    seq: int  # 1, 2, ... in the order written
    jpeg: bytes
    result: FrameResult
    captured_ms: float  # capture time, Unix milliseconds
    written_ms: float  # when the hub got it, Unix milliseconds
    faces: list
    counts: dict


def count_in_view(result: FrameResult) -> dict[str, int]:
    """People in view per class: distinct tracks (boxes when the result is not tracked), without the faces
    the people stage marked static (pictures)."""
    counts = {name: 0 for name in result.predictions.class_names}
    labels = result.predictions.labels
    if result.track_ids is None:
        for label in labels:
            counts[label] += 1
        return counts
    static = result.analytics.static if result.analytics is not None else np.zeros(len(labels), np.bool_)
    seen: dict[int, str] = {}
    for tid, label, still in zip(result.track_ids, labels, static, strict=True):
        if not still:
            seen[int(tid)] = label
    for label in seen.values():
        counts[label] += 1
    return counts


def people_so_far(result: FrameResult) -> dict | None:
    """The people stage's counts up to this frame (``PeopleStats.to_dict``); None when it did not run."""
    return None if result.analytics is None else result.analytics.people.to_dict()


class EventFeed:
    """The hub's event lines, an engine sink on the engine's own thread (not threaded): every frame's
    lines and every alert reach the page's ``/v1/events``, even when the hub's threaded frame sink drops
    a frame because the encoder fell behind. Its work is a few face records and ``json.dumps``."""

    name = "browser-events"
    threaded = False

    def __init__(self, hub: FrameHub):
        self.hub = hub

    def open(self, info: RunInfo) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        self.hub.add_events(result)

    def close(self, summary: dict) -> None:
        pass


class FrameHub:
    """Newest annotated frame, recent event lines and counts of a live source (thread-safe).

    The engine gets two sinks from it: the hub itself (threaded: annotates and encodes the newest frame)
    and :attr:`events`, an :class:`EventFeed` that adds the event lines on the engine's thread."""

    name = "browser"
    threaded = True
    queue_size = 2

    def __init__(self, jpeg_quality: int = 80, events_kept: int = 500, overlay: bool = True):
        from livemask.sinks.render import Renderer

        self.jpeg_quality = int(jpeg_quality)
        self.renderer = Renderer(overlay)  # the window's and the recording's drawing: boxes, labels, status
        self._lock = threading.Lock()
        self._latest: LiveFrame | None = None
        self._events: deque[tuple[int, str]] = deque(maxlen=int(events_kept))
        self._wall_offset = wall_offset()
        self._tracks: set[int] = set()
        self._event_seq = 0
        self.events = EventFeed(self)
        self.info: dict = {}
        self.summary_at_close: dict | None = None
        self.frames = 0
        self.opened = False
        self.closed = False

    # -- sink side (the inference thread) -------------------------------------------------
    def open(self, info: RunInfo) -> None:
        with self._lock:
            self.info = {"source": info.source, "fps": info.fps, "size": list(info.size or ()),
                         "frame_count": info.total, "classes": list(info.class_names)}
            self.opened = True

    def fps(self) -> float:
        return self.renderer.fps()

    def write(self, result: FrameResult) -> None:
        """Take one result: annotate and encode it once, keep it as the newest frame, add its event line."""
        image = self.renderer.render(result)
        now = time.monotonic()
        counts = count_in_view(result)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            log.warning("frame %d: JPEG encoding failed", result.frame.frame_id)
            return
        analytics = result.analytics
        faces = face_records(result.detections, result.predictions, result.track_ids,
                             None if analytics is None else analytics.static)
        captured = (result.frame.timestamp + self._wall_offset) * 1000.0
        with self._lock:
            self.frames += 1
            self._latest = LiveFrame(self.frames, buf.tobytes(), result, captured, (now + self._wall_offset) * 1000.0,
                                     faces, counts)

    def add_events(self, result: FrameResult) -> None:
        """Append the frame's event-log lines (the frame's, then one per alert) and note its tracks."""
        texts = [json.dumps(line, separators=(",", ":")) for line in event_lines(result, self._wall_offset)]
        with self._lock:
            if result.track_ids is not None:
                self._tracks.update(int(t) for t in result.track_ids)
            for text in texts:
                self._event_seq += 1
                self._events.append((self._event_seq, text))

    def close(self, summary: dict) -> None:
        with self._lock:
            self.summary_at_close = dict(summary)
            self.closed = True

    # -- viewer side (the event loop) ----------------------------------------------------
    def latest(self) -> LiveFrame | None:
        return self._latest

    def events_after(self, seq: int) -> list[tuple[int, str]]:
        with self._lock:
            return [(s, t) for s, t in self._events if s > seq]

    def summary(self) -> dict:
        latest = self._latest
        return {"source": self.info.get("source"), "opened": self.opened, "ended": self.closed,
                "frames": self.frames, "fps": round(self.fps(), 2),
                "in_view": latest.counts if latest is not None else {},
                "people": None if latest is None else people_so_far(latest.result),
                "tracks_seen": len(self._tracks), "info": self.info, "summary": self.summary_at_close}

    def shutdown(self) -> None:
        """The server is stopping: viewers end their streams."""
        self.closed = True


def add_live_routes(app, hub: FrameHub, runner, classifier, explainers) -> None:
    """``explainers``: the :class:`~livemask.web.explaining.ExplainerLoader` (None: no explanations)."""
    async def newer(last: int) -> LiveFrame | None:
        """The newest frame after ``last``; None once the source has ended and all was sent."""
        while True:
            f = hub.latest()
            if f is not None and f.seq != last:
                return f
            if hub.closed:
                return None
            await asyncio.sleep(POLL_S)

    @app.get("/v1/stream.mjpg", summary="the annotated live stream as multipart MJPEG")
    async def stream():
        async def frames():
            last = -1
            while (f := await newer(last)) is not None:
                last = f.seq
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(f.jpeg)).encode()
                       + b"\r\n\r\n" + f.jpeg + b"\r\n")

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    @app.get("/v1/events", summary="Server-Sent Events: one event-log line per frame, then 'end'")
    async def events():
        async def lines():
            seq, idle = 0, 0.0
            while True:
                batch = hub.events_after(seq)
                for s, text in batch:
                    seq = s
                    yield f"id: {s}\ndata: {text}\n\n"
                if not batch:
                    if hub.closed:
                        yield f"event: end\ndata: {json.dumps(hub.summary())}\n\n"
                        return
                    idle += 0.05
                    if idle >= 15:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    await asyncio.sleep(0.05)

        return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.websocket("/v1/live")
    async def live(ws: WebSocket):
        await ws.accept()
        last, skipped = -1, 0
        try:
            while (f := await newer(last)) is not None:
                if last > 0:
                    skipped += f.seq - last - 1
                last = f.seq
                await ws.send_text(json.dumps({
                    "seq": f.seq, "frame_id": f.result.frame.frame_id, "captured_ms": f.captured_ms,
                    "sent_ms": time.time() * 1000.0, "faces": f.faces, "counts": f.counts, "fps": round(hub.fps(), 2),
                    "skipped": skipped, "inference_ms": round(f.result.inference_ms, 1),
                    "people": people_so_far(f.result)}))
                await ws.send_bytes(f.jpeg)
            await ws.send_text(json.dumps({"end": True, "summary": hub.summary()}))
            await ws.close()
        except WebSocketDisconnect:
            pass

    @app.post("/v1/live/explain", summary="Grad-CAM / occlusion maps for the faces of the newest live frame")
    async def live_explain(method: str = Query("all", pattern="^(gradcam|occlusion|all)$"),
                           target: str | None = None):
        from livemask.web.explaining import explainer_or_503

        explainer = await explainer_or_503(explainers)
        f = hub.latest()
        if f is None:
            raise HTTPException(409, "no live frame yet")
        explainer.check_target(target, tuple(classifier.class_names))
        result = f.result

        def work():
            crops = classifier.crops(result.frame.image, result.detections)
            return explainer.explain(crops, method, target, detections=result.detections)

        explained = await runner.run(work)
        faces = [dict(rec, explanations=e["explanations"], crop_png=e["crop_png"])
                 for rec, e in zip(f.faces, explained, strict=True)]
        return {"frame_id": result.frame.frame_id, "faces": faces, "legend_png": explainer.legend_png()}


@dataclass(frozen=True)
class WebSocketLimits:
    """Per-connection limits on what a client sends over ``WS /v1/webcam``."""

    max_message_bytes: Annotated[int, Range(1024, 100 * 1024 * 1024)] = 2 * 1024 * 1024
    max_messages_per_s: Annotated[float, Range(1.0, 10_000.0)] = 60.0

    def __post_init__(self) -> None:
        check_fields(self)


class RateBucket:
    """At most ``rate`` messages a second on average, bursts of up to ``rate`` (a token bucket)."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self.tokens = float(rate)
        self.at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def add_webcam_route(app, runner, max_pixels: int, detector=None, budget: DecodeBudget | None = None,
                     limits: WebSocketLimits | None = None) -> None:
    budget = budget or DecodeBudget()
    limits = limits or WebSocketLimits()

    @app.websocket("/v1/webcam")
    async def webcam(ws: WebSocket):
        await ws.accept()
        state = {"pending": None, "received": 0, "dropped": 0, "done": False}
        wake = asyncio.Event()
        bucket = RateBucket(limits.max_messages_per_s)

        async def reader():
            try:
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        break
                    data = msg.get("bytes")
                    text = msg.get("text")
                    size = len(data) if data is not None else len(text.encode()) if text is not None else 0
                    if size > limits.max_message_bytes:
                        await ws.close(1009, f"message over {limits.max_message_bytes} bytes")
                        break
                    if not bucket.allow():
                        await ws.close(1008, f"more than {limits.max_messages_per_s:g} messages a second")
                        break
                    if data is None:
                        continue
                    state["received"] += 1
                    if state["pending"] is not None:
                        state["dropped"] += 1  # a newer frame came before the older one was processed
                    state["pending"] = (state["received"], data)
                    wake.set()
            finally:
                state["done"] = True
                wake.set()

        task = asyncio.create_task(reader())
        try:
            while True:
                await wake.wait()
                wake.clear()
                if state["done"]:
                    break
                if state["pending"] is None:
                    continue
                number, data = state["pending"]
                state["pending"] = None
                started = time.perf_counter()
                try:
                    w, h = checked_size(data, max_pixels)
                    ticket = budget.take(decode_cost(len(data), w, h))
                except UploadImageError as err:
                    answer = {"frame": number, "error": str(err)}
                    if err.retry_after is not None:
                        answer["retry_after"] = err.retry_after
                    await ws.send_text(json.dumps(answer))
                    continue
                with ticket:
                    try:
                        image = await run_in_threadpool(decode_upload, data, max_pixels)
                    except UploadImageError as err:
                        await ws.send_text(json.dumps({"frame": number, "error": str(err)}))
                        continue
                    del data
                    detections, predictions = await runner.analyse(image, detector)
                await ws.send_text(json.dumps({
                    "frame": number, "width": image.shape[1], "height": image.shape[0],
                    "faces": face_records(detections, predictions), "received": state["received"],
                    "dropped": state["dropped"], "ms": round((time.perf_counter() - started) * 1000.0, 1)}))
        except (WebSocketDisconnect, RuntimeError):  # the client left while we were answering
            pass
        finally:
            task.cancel()

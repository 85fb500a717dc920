"""The live page's routes over a :class:`~livemask.web.hub.FrameHub`, and the browser webcam.

Routes (added by :func:`add_live_routes` when the server has a live source):

* ``GET /v1/stream.mjpg``: multipart MJPEG of the annotated frames (for ``<img>``, VLC, ...).
* ``GET /v1/events``: Server-Sent Events, the event-log lines (one per frame, one per alert), then ``end``.
* ``WS /v1/live``: per frame a JSON text message (frame id, capture time, faces, counts,
  fps, the people stage's ``people``) followed by the JPEG as a binary message; the page measures
  latency from it.
* ``POST /v1/live/explain``: Grad-CAM / occlusion for the faces of the newest frame.
* ``POST /v1/live/replay``: a file source that has ended plays again from its start.

With several cameras (:mod:`livemask.web.site`) the stream, ``/v1/live``, explain and replay routes take
``?camera=NAME``: a camera's Live view is the same page and the same routes; the explainer is shared.
A file source plays from when its first viewer connects and, at its end, says ``ended`` (a ``state``
message on ``/v1/live``) until replayed.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from livemask.core.params import Range, check_fields
from livemask.core.records import face_records
from livemask.web.hub import FrameHub, LiveFrame, people_so_far
from livemask.web.imagecheck import DecodeBudget, UploadImageError, checked_size, decode_cost, decode_upload

log = logging.getLogger(__name__)

RECHECK_S = 0.1  # a viewer waiting for a frame (a write wakes it) looks at the source's state this often
SSE_POLL_S = 0.05  # event streams look for new lines this often
KEEPALIVE_S = 15.0  # an idle event stream sends a comment this often (proxies keep it open)


def event_stream(batch: Callable[[], list[str]], ended: Callable[[], bool], summary: Callable[[], dict]):
    """A Server-Sent Events response from polling every :data:`SSE_POLL_S`: ``batch()`` gives the formatted
    events that are new, sent together; once it gives none and ``ended()`` is true, an ``end`` event carries
    ``summary()`` and the stream closes."""

    async def lines():
        idle = 0.0
        while True:
            events = batch()
            if events:  # one write for all of them: ten cameras give up to 150 lines a second
                idle = 0.0
                yield "".join(events)
            elif ended():
                yield f"event: end\ndata: {json.dumps(summary())}\n\n"
                return
            else:
                idle += SSE_POLL_S
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(SSE_POLL_S)

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def mjpeg_response(frames) -> StreamingResponse:
    """A multipart MJPEG response (for ``<img>``, VLC, ...) of the JPEG bytes that the async iterator
    ``frames`` gives, one part each."""

    async def parts():
        async for jpeg in frames:
            yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                   + b"\r\n\r\n" + jpeg + b"\r\n")

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store"})


async def newer(hub: FrameHub, last: int) -> LiveFrame | None:
    """The hub's newest frame after ``last``; None once the source has ended and all was sent."""
    while True:
        f = hub.latest()
        if f is not None and f.seq != last:
            return f
        if hub.closed:
            return None
        await hub.wait_newer(last, RECHECK_S)


async def hub_jpegs(hub: FrameHub):
    """Each new annotated frame of ``hub`` as JPEG bytes, until the source has ended."""
    last = -1
    while (f := await newer(hub, last)) is not None:
        last = f.seq
        yield f.jpeg


def add_live_routes(app, hub_for: Callable[[str | None], FrameHub], runner, classifier, explainers,
                    events: bool = True) -> None:
    """``hub_for(camera)``: the hub of the single live source (``camera`` None) or of a Site's camera (raises
    404 for a name that is not one); ``explainers``: the :class:`~livemask.web.explaining.ExplainerLoader`
    (None: no explanations), shared by every camera; ``events`` False: ``GET /v1/events`` is the Site's."""
    camera_query = Query(None, description="a camera of the Site page (default: the live source)")

    @app.get("/v1/stream.mjpg", summary="the annotated live stream as multipart MJPEG")
    async def stream(camera: str | None = camera_query):
        hub = hub_for(camera)
        hub.watched()
        return mjpeg_response(hub_jpegs(hub))

    if events:
        @app.get("/v1/events", summary="Server-Sent Events: one event-log line per frame, then 'end'")
        async def events_route():
            hub = hub_for(None)
            seen = [0]

            def batch() -> list[str]:
                out = []
                for s, text in hub.events_after(seen[0]):
                    seen[0] = s
                    out.append(f"id: {s}\ndata: {text}\n\n")
                return out

            return event_stream(batch, lambda: hub.closed, hub.summary)

    @app.websocket("/v1/live")
    async def live(ws: WebSocket, camera: str | None = None):
        try:
            hub = hub_for(camera)
        except HTTPException as err:
            await ws.close(1008, str(err.detail)[:120])
            return
        await ws.accept()
        hub.watched()
        last, skipped, state = -1, 0, None
        try:
            while True:
                now_state = hub.state()
                if now_state != state:  # "ended" (a file at its end: the page offers a replay), "live" again, ...
                    state = now_state
                    await ws.send_text(json.dumps({"state": state, "replayable": hub.playback is not None}))
                f = hub.latest()
                if f is None or f.seq == last:
                    if hub.closed:
                        break
                    await hub.wait_newer(last, RECHECK_S)  # a write wakes it; the state is looked at again after
                    continue
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
                           target: str | None = None, camera: str | None = camera_query):
        from livemask.web.explaining import explainer_or_503

        hub = hub_for(camera)
        f = hub.latest()  # frozen here, before the wait for the explainer: the frame shown when asked
        explainer = await explainer_or_503(explainers)
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
        return {"frame_id": result.frame.frame_id, "faces": faces, "legend_png": explainer.legend_png(),
                **({"camera": camera} if camera is not None else {})}

    @app.post("/v1/live/replay", summary="play a file source again from its start, once it has ended")
    async def live_replay(camera: str | None = camera_query):
        hub = hub_for(camera)
        if hub.playback is None:
            raise HTTPException(409, "the source is not a file that can be replayed")
        if not hub.replay():
            raise HTTPException(409, f"the file has not ended (it is {hub.state()})")
        return {"replaying": True, "camera": camera}


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
                        image = await runner.decode(decode_upload, data, max_pixels)
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

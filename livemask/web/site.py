"""The Site page and its API: ``livemask serve`` with several cameras (docs/cameras.md).

Each camera's engine has its own :class:`~livemask.web.hub.FrameHub` among its sinks; :class:`SiteView`
holds them with a function giving each camera's state (``connecting``, ``live``, ``reconnecting k/n``,
``ended``, ``failed: reason``). Routes (added by :func:`add_site_routes`):

* ``GET /site``: the Site page (``static/site.html`` + ``site.js``): a tile per camera, site totals, one
  event list naming the camera of each line; a tile opens that camera's Live view, the single-source page
  and routes with ``?camera=NAME`` (:mod:`livemask.web.live_routes`: stream, freeze and explain, replay).
* A file camera plays from when its first viewer asks (``/v1/cameras``, its frame or stream, its Live view),
  and at its end its state is ``ended`` until replayed (``POST /v1/live/replay?camera=NAME``).
* ``GET /v1/cameras``: every camera's name, state, fps, latency, people in view by class, worst verdict.
* ``WS /v1/cameras/tiles?fps=8``: the grid's tiles, at most ``fps`` updates a second: per update a JSON text
  message ``{"mosaic": n, "tiles": [{"camera", "seq", "x", "y", "w", "h"}]}`` then one JPEG (binary) holding
  every listed tile (the cameras with a frame newer than the last one sent; :mod:`livemask.web.mosaic`), each
  at its place. The page answers ``{"drawn": n}`` once it has drawn it; at most :data:`TILES_IN_FLIGHT`
  updates are on their way or being drawn (the next one is made while the page draws the last, and a slow
  browser gets fewer updates, never a longer queue) and ``{"visible": [names]}`` whenever the tiles it shows
  change (none: a hidden tab, nothing is sent; every camera until it says). A page that sends more than 50
  messages a second is closed (1008); a pace outside 0.5-30 is refused in the handshake.
* ``GET /v1/cameras/{name}/frame.jpg``: the camera's newest annotated frame;
  ``GET /v1/cameras/{name}/stream.mjpg``: its annotated frames as multipart MJPEG.
* ``GET /v1/events?camera=NAME``: Server-Sent Events of that camera's event lines (every camera's
  without ``camera``), each line with its ``camera``.
* ``GET /v1/cameras/trend``: each camera's masked share over the last hour, minute by minute, from the
  kept events (:mod:`livemask.report.trend`; with ``report.keep_events``, added by :func:`add_trend_route`).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from importlib import resources
from typing import Literal

from fastapi import HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response

from livemask.web.hub import FrameHub, people_so_far
from livemask.web.live_routes import RateBucket, event_stream, hub_jpegs, mjpeg_response
from livemask.web.mosaic import compose

STATIC = resources.files("livemask.web") / "static"
TILES_FPS = 8.0  # the grid's updates a second (WS /v1/cameras/tiles), at most; a page may ask 0.5 to 30
TILES_MESSAGES_PER_S = 50.0  # what a page may send on it (visibility changes, acknowledgements)
TILES_MESSAGE_BYTES = 65536
TILES_IN_FLIGHT = 2  # mosaics sent and not yet drawn, at most
# the verdict a tile's border shows: the worst class in view, in this order (classes not listed rank lowest)
SEVERITY = ("no_mask", "mask_incorrect", "mask")


class SiteView:
    """The cameras' hubs and states, in config order."""

    def __init__(self, hubs: dict[str, FrameHub], states: Callable[[], dict[str, str]]):
        self.hubs = hubs
        self.states = states

    def hub(self, name: str) -> FrameHub:
        hub = self.hubs.get(name)
        if hub is None:
            raise HTTPException(404, f"no camera named {name[:40]!r}")
        return hub

    def hub_for(self, name: str | None) -> FrameHub:
        """A camera's hub for the Live view's routes (``?camera=NAME`` is required: 404 without it)."""
        if name is None:
            raise HTTPException(404, "several cameras: name one (?camera=NAME)")
        return self.hub(name)

    def watched(self) -> None:
        for hub in self.hubs.values():
            hub.watched()

    def camera(self, name: str, state: str) -> dict:
        hub = self.hubs[name]
        latest = hub.latest()
        in_view = latest.counts if latest is not None else {}
        worst = next((c for c in SEVERITY if in_view.get(c)), None)
        if worst is None:
            worst = next((c for c, n in in_view.items() if n), None)
        return {"name": name, "state": state, "fps": 0.0 if state == "ended" else round(hub.fps(), 2),
                "frames": hub.frames,
                "latency_ms": None if latest is None or state == "ended"
                else round(latest.written_ms - latest.captured_ms, 1),
                "replayable": hub.playback is not None,
                "in_view": in_view, "worst": worst,
                "people": None if latest is None else people_so_far(latest.result)}

    def cameras(self) -> list[dict]:
        states = self.states()
        return [self.camera(name, states.get(name, "connecting")) for name in self.hubs]

    def summary(self) -> dict:
        """Per camera and for the site: people counted so far, masked, alerts."""
        cams = self.cameras()
        counted = sum((c["people"] or {}).get("counted", 0) for c in cams)
        masked = sum((c["people"] or {}).get("masked", 0) for c in cams)
        alerts = sum((c["people"] or {}).get("alerts", 0) for c in cams)
        return {"cameras": cams, "site": {"counted": counted, "masked": masked, "alerts": alerts,
                                          "share_masked": round(masked / counted, 4) if counted else None}}

    @property
    def closed(self) -> bool:
        return all(h.closed for h in self.hubs.values())


def add_site_routes(app, site: SiteView) -> None:
    @app.get("/site", include_in_schema=False)
    async def site_page():
        return FileResponse(str(STATIC / "site.html"), headers={"Cache-Control": "no-store"})

    @app.get("/v1/cameras", summary="every camera: name, state, fps, latency, people in view by class")
    async def cameras():
        site.watched()  # the Site page shows every camera: a file camera starts with its first viewer
        return site.summary()

    @app.get("/v1/cameras/{name}/frame.jpg",
             summary="a camera's newest annotated frame (size=tile: 320 px wide, as the Site page's grid shows it)")
    async def frame(name: str, size: Literal["full", "tile"] = "full"):
        hub = site.hub(name)
        hub.watched()
        latest = hub.latest()
        if latest is None:
            raise HTTPException(404, f"camera {name}: no frame yet")
        return Response(latest.tile_jpeg if size == "tile" else latest.jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Seq": str(latest.seq)})

    @app.get("/v1/cameras/{name}/stream.mjpg", summary="a camera's annotated frames as multipart MJPEG")
    async def stream(name: str):
        hub = site.hub(name)
        hub.watched()
        return mjpeg_response(hub_jpegs(hub))

    @app.websocket("/v1/cameras/tiles")
    async def tiles(ws: WebSocket, fps: float = TILES_FPS):
        if not math.isfinite(fps) or not 0.5 <= fps <= 30:
            await ws.close(1008, "fps must be a number in [0.5, 30]")
            return
        await ws.accept()
        await mosaic_updates(ws, site, 1.0 / fps)

    @app.get("/v1/events", summary="Server-Sent Events: the cameras' event lines, each naming its camera")
    async def events(camera: str | None = Query(None, description="only this camera (default: every camera)")):
        names = [camera] if camera is not None else list(site.hubs)
        for name in names:
            site.hub(name)  # 404 for an unknown camera

        seen = {name: 0 for name in names}

        def batch() -> list[str]:
            out = []
            for name in names:
                for seq, text in site.hubs[name].events_after(seen[name]):
                    seen[name] = seq
                    out.append(f"data: {{\"camera\":{json.dumps(name)},{text[1:]}\n\n")
            return out

        return event_stream(batch, lambda: all(site.hubs[n].closed for n in names), site.summary)


def compose_tiles(frames: list) -> tuple[bytes, list]:
    """The mosaic JPEG of these frames' tile images (off the event loop: resizing and encoding)."""
    return compose([f.tile_image() for f in frames])


async def mosaic_updates(ws: WebSocket, site: SiteView, period_s: float) -> None:
    """``WS /v1/cameras/tiles`` after its accept: a mosaic of the visible cameras' new frames every ``period_s``
    at most, at most :data:`TILES_IN_FLIGHT` of them not yet drawn by the page; ends when the page leaves or every
    camera has."""
    site.watched()  # a file camera plays from its first viewer
    names = list(site.hubs)
    page = {"visible": set(names), "done": False, "in_flight": 0}
    drawn = asyncio.Event()
    bucket = RateBucket(TILES_MESSAGES_PER_S)

    async def reader() -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                text = msg.get("text")
                if not bucket.allow():
                    await ws.close(1008, f"more than {TILES_MESSAGES_PER_S:g} messages a second")
                    break
                if text is None or len(text) > TILES_MESSAGE_BYTES:
                    continue
                try:
                    said = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(said, dict):
                    continue
                if isinstance(said.get("visible"), list):
                    page["visible"] = {n for n in said["visible"] if isinstance(n, str) and n in site.hubs}
                    site.watched()
                if "drawn" in said:
                    page["in_flight"] = max(0, page["in_flight"] - 1)
                    drawn.set()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            page["done"] = True
            drawn.set()

    task = asyncio.create_task(reader())
    loop = asyncio.get_running_loop()
    sent: dict[str, int] = {}
    number = 0
    try:
        while not site.closed:
            while page["in_flight"] >= TILES_IN_FLIGHT and not page["done"]:
                drawn.clear()
                await drawn.wait()
            if page["done"]:
                break
            started = loop.time()
            picked = [(name, f) for name in names if name in page["visible"]
                      and (f := site.hubs[name].latest()) is not None and f.seq != sent.get(name)]
            if picked:
                jpeg, places = await asyncio.to_thread(compose_tiles, [f for _, f in picked])
                number += 1
                page["in_flight"] += 1  # before the sends: the page's answer may come while they are awaited
                await ws.send_text(json.dumps({"mosaic": number, "tiles": [
                    {"camera": name, "seq": f.seq, "x": p.x, "y": p.y, "w": p.w, "h": p.h}
                    for (name, f), p in zip(picked, places, strict=True)]}))
                await ws.send_bytes(jpeg)
                sent.update((name, f.seq) for name, f in picked)
            await asyncio.sleep(max(0.0, period_s - (loop.time() - started)))
        if not page["done"]:
            await ws.close()
    except (WebSocketDisconnect, RuntimeError):  # the page left while a mosaic was on its way
        pass
    finally:
        task.cancel()


def add_trend_route(app, folder, site: SiteView, kept) -> None:
    """``GET /v1/cameras/trend``: ``{"window_s", "cameras": {name: [{"t", "share", "counted"}]}}`` for every
    camera of the site (no point yet: an empty list). The first request reads the last hour of the kept files
    once; then ``kept`` (the process's :class:`~livemask.sinks.kept_events.KeptEventsFile`) hands every line it
    writes to the same :class:`~livemask.report.trend.MinuteTrend`, so later requests read nothing. Not added
    without DuckDB (the lean install): the tiles then have no chart."""
    import importlib.util
    import threading
    from pathlib import Path

    from starlette.concurrency import run_in_threadpool

    from livemask.report.trend import MinuteTrend
    from livemask.sinks.kept_events import kept_files

    if importlib.util.find_spec("duckdb") is None:
        return
    folder = Path(folder)
    minutes = MinuteTrend()
    kept.listeners.append(minutes.add)
    first = threading.Lock()
    state = {"read": False}

    def compute() -> dict:
        with first:
            if not state["read"]:
                minutes.read(kept_files(folder))
                state["read"] = True
        points = minutes.points()
        return {"window_s": int(minutes.window_s), "cameras": {name: points.get(name, []) for name in site.hubs}}

    @app.get("/v1/cameras/trend", summary="each camera's masked share over the last hour, from the kept events")
    async def camera_trend():
        return await run_in_threadpool(compute)

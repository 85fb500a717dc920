"""The FastAPI app: the page, ``/v1/image``, ``/v1/explain``, ``/v1/summary``, ``/healthz``.

:func:`create_app` takes objects that are already built (detector, classifier, explain
suite, live hub); it never reads the config. Every request and WebSocket first passes the
:class:`~livemask.web.guard.HostOriginGuard` (other websites get nothing), then the token, then
the body limit; every uploaded image is decoded inside the shared
:class:`~livemask.web.imagecheck.DecodeBudget` (503 + Retry-After past it). Every model call goes through one
:class:`~livemask.web.inference.InferenceRunner`. Errors are JSON ``{"error": "..."}``
with a status code, never a stack trace; no CORS headers are sent.
"""

from __future__ import annotations

import contextlib
import logging
import time
from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from livemask import __version__
from livemask.core.errors import LivemaskError
from livemask.core.labels import display_names
from livemask.core.records import face_records
from livemask.web.guard import BodyLimit, HostOriginGuard, TokenGuard
from livemask.web.imagecheck import (
    DEFAULT_DECODE_BUDGET,
    DEFAULT_MAX_PIXELS,
    DecodeBudget,
    UploadImageError,
    checked_size,
    decode_cost,
    decode_upload,
    file_reader,
)
from livemask.web.inference import InferenceRunner

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
STATIC = resources.files("livemask.web") / "static"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Stats:
    """Counters for ``/v1/summary``."""

    def __init__(self):
        self.started = time.time()
        self.requests = {"image": 0, "explain": 0, "errors": 0}
        self.faces: dict[str, int] = {}

    def count(self, kind: str, labels: list[str]) -> None:
        self.requests[kind] += 1
        for label in labels:
            self.faces[label] = self.faces.get(label, 0) + 1


def create_app(detector, classifier, explain_suite=None, *, token: str | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD, max_pixels: int = DEFAULT_MAX_PIXELS,
               serialise: str = "worker", hub=None, runner: InferenceRunner | None = None,
               video_detector=None, on_shutdown=None, bind_host: str = "127.0.0.1",
               allowed_hosts: tuple[str, ...] = (), allowed_origins: tuple[str, ...] = (),
               decode_budget_bytes: int = DEFAULT_DECODE_BUDGET, ws_limits=None, site=None) -> FastAPI:
    """The app. ``explain_suite``: an ``ExplainSuite``, or an :class:`~livemask.web.explaining.ExplainerLoader`
    that makes it apart from start-up (None: ``/v1/explain`` answers 503);
    ``token``: required on every request but the static assets (None: open, loopback only);
    ``hub``: a :class:`~livemask.web.hub.FrameHub` for the live page; ``video_detector``: the
    detector for browser-webcam frames (default: ``detector``; a video-size one is faster);
    ``on_shutdown``: called when the server stops, before the models are released (the live engine);
    ``bind_host``, ``allowed_hosts``, ``allowed_origins``: the Host/Origin check
    (:class:`~livemask.web.guard.HostOriginGuard`); ``decode_budget_bytes``: uploads and decoded pixels
    held at once by all requests; ``ws_limits``: the webcam WebSocket's message size and rate
    (:class:`~livemask.web.live_routes.WebSocketLimits`)."""
    runner = runner or InferenceRunner(detector, classifier, serialise)
    from livemask.web.explaining import ExplainerLoader, explainer_or_503

    # an ExplainerLoader (the Keras model loads apart from start-up) or a suite that is already built
    explainers = explain_suite if isinstance(explain_suite, ExplainerLoader) or explain_suite is None \
        else ExplainerLoader.ready(explain_suite)
    stats = Stats()
    class_names = tuple(classifier.class_names)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(int)  # imports anyio's thread backend now, not in the event loop of a first request
        yield
        if on_shutdown is not None:
            on_shutdown()
        if hub is not None:
            hub.shutdown()
        runner.close()

    app = FastAPI(title="livemask", version=__version__, lifespan=lifespan,
                  description="Face-mask detection: photos, explanations, live stream, browser webcam.")
    budget = DecodeBudget(decode_budget_bytes)
    app.state.runner, app.state.stats, app.state.hub, app.state.decode_budget = runner, stats, hub, budget
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(TokenGuard, token=token)  # checked before the body is read
    # added last = outermost: every route and WebSocket, also those added later, passes it first
    app.add_middleware(HostOriginGuard, bind_host=bind_host, allowed_hosts=allowed_hosts,
                       allowed_origins=allowed_origins)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        stats.requests["errors"] += 1
        return _error(422, "bad request: " + "; ".join(parts))

    @app.exception_handler(UploadImageError)
    async def upload_error(request, exc):
        stats.requests["errors"] += 1
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(LivemaskError)
    async def livemask_error(request, exc):
        stats.requests["errors"] += 1
        return _error(422, str(exc))

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():  # browsers ask for it whatever the page says: the page's own icon, not a 404
        return FileResponse(str(STATIC / "favicon.svg"), media_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    @app.get("/healthz", summary="liveness: the model is loaded and the server answers")
    async def healthz():
        return {"status": "ok", "version": __version__}

    @contextlib.asynccontextmanager
    async def read_image(file: UploadFile):
        """The decoded upload, its bytes and pixels held in the decode budget until the block ends."""
        w, h = await runner.check(checked_size, file_reader(file.file), max_pixels)
        await file.seek(0)
        size = file.size if file.size is not None else await runner.check(lambda: len(file.file.read()))
        with budget.take(decode_cost(size, w, h)):
            await file.seek(0)
            data = await file.read()
            image = await runner.decode(decode_upload, data, max_pixels)
            del data
            yield image

    @app.post("/v1/image", summary="faces in one image: box, score, label, calibrated probabilities")
    async def image(file: Annotated[UploadFile, File(description="the image (PNG, JPEG, BMP, WebP)")]):
        started = time.perf_counter()
        async with read_image(file) as img:
            detections, predictions = await runner.analyse(img)
            height, width = img.shape[:2]
        faces = face_records(detections, predictions)
        stats.count("image", predictions.labels)
        return {"faces": faces, "width": width, "height": height, "class_names": list(class_names),
                "ms": round((time.perf_counter() - started) * 1000.0, 1)}

    @app.post("/v1/explain", summary="faces with Grad-CAM / occlusion maps (base64 PNG overlays, arrays on request)")
    async def explain(file: Annotated[UploadFile, File(description="the image")],
                      method: Annotated[str, Query(pattern="^(gradcam|occlusion|all)$")] = "all",
                      target: Annotated[str | None, Query(description="class to explain (default: predicted)")] = None,
                      arrays: Annotated[bool, Query(description="also return each map as a nested list")] = False,
                      face: Annotated[int | None, Query(ge=0, description="explain only this face (index)")] = None):
        explainer = await explainer_or_503(explainers)  # waits (bounded) for the Keras model on the first request
        explainer.check_method(method)
        explainer.check_target(target, class_names)
        started = time.perf_counter()
        async with read_image(file) as img:
            detections, predictions = await runner.analyse(img)
            if face is not None:
                if face >= len(detections):
                    raise HTTPException(422, f"face {face}: the image has {len(detections)} face(s)")
                detections, predictions = detections[face], predictions[face]

            def work():
                return explainer.explain(classifier.crops(img, detections), method, target, arrays, detections)

            explained = await runner.run(work)
            height, width = img.shape[:2]
        faces = face_records(detections, predictions)
        for record, extra in zip(faces, explained, strict=True):
            record["explanations"] = extra["explanations"]
            record["crop_png"] = extra["crop_png"]
            if face is not None:
                record["index"] = face
        stats.count("explain", predictions.labels)
        return {"faces": faces, "width": width, "height": height, "class_names": list(class_names),
                "legend_png": explainer.legend_png(), "ms": round((time.perf_counter() - started) * 1000.0, 1)}

    @app.get("/v1/summary", summary="model, request counts, faces seen, live stream state")
    async def summary():
        return {"version": __version__, "class_names": list(class_names),
                "display_names": display_names(class_names),
                "uptime_s": round(time.time() - stats.started, 1),
                "requests": stats.requests, "faces": stats.faces,
                "explain": explainers is not None and explainers.state != "unavailable",
                "explain_model": explainers.state if explainers is not None else "none",
                "inference": {"mode": runner.mode, "calls": runner.calls, "busy_s": round(runner.busy_s, 2)},
                "detector": detector.describe(), "decode": budget.summary(),
                "live": hub.summary() if hub is not None else None,
                **({"cameras": site.summary()} if site is not None else {})}

    from livemask.web.live_routes import add_live_routes, add_webcam_route

    add_webcam_route(app, runner, max_pixels, video_detector, budget, ws_limits)
    if hub is not None:
        add_live_routes(app, single_hub(hub), runner, classifier, explainers)
    if site is not None:  # several cameras (livemask.web.site): the Site page, its API, each camera's Live view
        from livemask.web.site import add_site_routes

        add_site_routes(app, site)
        add_live_routes(app, site.hub_for, runner, classifier, explainers, events=False)
    return app


def single_hub(hub):
    """``hub_for`` of the one live source: no camera names (404 for any)."""

    def hub_for(camera: str | None):
        if camera is not None:
            raise HTTPException(404, f"no camera named {camera[:40]!r} (the server has one live source)")
        return hub

    return hub_for

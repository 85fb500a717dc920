"""The FastAPI app: the page, ``/v1/image``, ``/v1/explain``, ``/v1/summary``, ``/healthz``.

:func:`create_app` takes objects that are already built (detector, classifier, explain
suite, live hub); it never reads the config. Every model call goes through one
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
from livemask.web.guard import BodyLimit, TokenGuard
from livemask.web.imagecheck import DEFAULT_MAX_PIXELS, UploadImageError, decode_upload
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
               video_detector=None, on_shutdown=None, site=None) -> FastAPI:
    """The app. ``explain_suite``: an ``ExplainSuite`` (None: ``/v1/explain`` answers 503);
    ``token``: required on every request but the static assets (None: open, loopback only);
    ``hub``: a :class:`~livemask.web.hub.FrameHub` for the live page; ``video_detector``: the
    detector for browser-webcam frames (default: ``detector``; a video-size one is faster);
    ``on_shutdown``: called when the server stops, before the models are released (the live engine)."""
    runner = runner or InferenceRunner(detector, classifier, serialise)
    explainer = None
    if explain_suite is not None:
        from livemask.web.explaining import WebExplainer

        explainer = WebExplainer(explain_suite)
    stats = Stats()
    class_names = tuple(classifier.class_names)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if on_shutdown is not None:
            on_shutdown()
        if hub is not None:
            hub.shutdown()
        runner.close()

    app = FastAPI(title="livemask", version=__version__, lifespan=lifespan,
                  description="Face-mask detection: photos, explanations, live stream, browser webcam.")
    app.state.runner, app.state.stats, app.state.hub = runner, stats, hub
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(TokenGuard, token=token)  # added last = outermost: checked before the body is read

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
        return _error(exc.status, str(exc))

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

    @app.get("/healthz", summary="liveness: the model is loaded and the server answers")
    async def healthz():
        return {"status": "ok", "version": __version__}

    async def read_image(file: UploadFile):
        data = await file.read()
        return await run_in_threadpool(decode_upload, data, max_pixels)

    @app.post("/v1/image", summary="faces in one image: box, score, label, calibrated probabilities")
    async def image(file: Annotated[UploadFile, File(description="the image (PNG, JPEG, BMP, WebP)")]):
        started = time.perf_counter()
        img = await read_image(file)
        detections, predictions = await runner.analyse(img)
        faces = face_records(detections, predictions)
        stats.count("image", predictions.labels)
        return {"faces": faces, "width": img.shape[1], "height": img.shape[0], "class_names": list(class_names),
                "ms": round((time.perf_counter() - started) * 1000.0, 1)}

    @app.post("/v1/explain", summary="faces with Grad-CAM / occlusion maps (base64 PNG overlays, arrays on request)")
    async def explain(file: Annotated[UploadFile, File(description="the image")],
                      method: Annotated[str, Query(pattern="^(gradcam|occlusion|all)$")] = "all",
                      target: Annotated[str | None, Query(description="class to explain (default: predicted)")] = None,
                      arrays: Annotated[bool, Query(description="also return each map as a nested list")] = False,
                      face: Annotated[int | None, Query(ge=0, description="explain only this face (index)")] = None):
        if explainer is None:
            raise HTTPException(503, "explanations are not available in this server")
        explainer.check_method(method)
        explainer.check_target(target, class_names)
        started = time.perf_counter()
        img = await read_image(file)

        detections, predictions = await runner.analyse(img)
        if face is not None:
            if face >= len(detections):
                raise HTTPException(422, f"face {face}: the image has {len(detections)} face(s)")
            detections, predictions = detections[face], predictions[face]

        def work():
            return explainer.explain(classifier.crops(img, detections), method, target, arrays)

        explained = await runner.run(work)
        faces = face_records(detections, predictions)
        for record, extra in zip(faces, explained, strict=True):
            record["explanations"] = extra["explanations"]
            record["crop_png"] = extra["crop_png"]
            if face is not None:
                record["index"] = face
        stats.count("explain", predictions.labels)
        return {"faces": faces, "width": img.shape[1], "height": img.shape[0], "class_names": list(class_names),
                "legend_png": explainer.legend_png(), "ms": round((time.perf_counter() - started) * 1000.0, 1)}

    @app.get("/v1/summary", summary="model, request counts, faces seen, live stream state")
    async def summary():
        return {"version": __version__, "class_names": list(class_names),
                "display_names": display_names(class_names),
                "uptime_s": round(time.time() - stats.started, 1),
                "requests": stats.requests, "faces": stats.faces, "explain": explainer is not None,
                "inference": {"mode": runner.mode, "calls": runner.calls, "busy_s": round(runner.busy_s, 2)},
                "detector": detector.describe(),
                "live": hub.summary() if hub is not None else None,
                **({"cameras": site.summary()} if site is not None else {})}

    from livemask.web.hub import add_live_routes, add_webcam_route

    add_webcam_route(app, runner, max_pixels, video_detector)
    if hub is not None:
        add_live_routes(app, hub, runner, classifier, explainer)
    if site is not None:  # several cameras (livemask.web.site): the Site page and its API
        from livemask.web.site import add_site_routes

        add_site_routes(app, site)
    return app

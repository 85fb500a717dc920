"""``GET /metrics`` on ``serve``: the Prometheus text exposition of :class:`livemask.sinks.metrics.Metrics`.

The route is behind the server's token rule like every other route (``Authorization: Bearer TOKEN``).
"""

from __future__ import annotations

import asyncio


def add_metrics_route(app, metrics) -> None:
    from fastapi import Response

    @app.get("/metrics", summary="Prometheus metrics: frames, latency, faces by class, people, alerts, MQTT",
             response_class=Response)
    async def prometheus_metrics():
        body = await asyncio.to_thread(metrics.text)  # the collector reads the live engine's counts
        return Response(body, media_type=metrics.content_type)

"""``GET /v1/report``: the ``livemask report`` page (or its CSV / JSON) of the events the server has kept.

The events are the files of :class:`livemask.sinks.kept_events.KeptEvents` (``report.events_dir``); the
page is made by :mod:`livemask.report` in a worker thread, exactly as ``livemask report`` makes it.
``from`` / ``to``: ISO date or date-time (default: today from midnight, to now), ``tz`` (default: the
machine's), ``by``: hour | day, ``format``: html | csv | json. A bad parameter is 400, nothing kept in the
period is 404, both as ``{"error": ...}``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from livemask.core.errors import ConfigError, LivemaskError


def make_report(folder: Path, start: str | None, end: str | None, tz: str | None, by: str, fmt: str) -> str:
    from livemask.report.aggregate import aggregate, check_zone, machine_zone, parse_time
    from livemask.report.inputs import NothingToReport, event_files
    from livemask.report.page import render
    from livemask.report.tables import to_csv, to_json
    from livemask.sinks.kept_events import kept_files

    zone_name = tz or machine_zone()
    zone = check_zone(zone_name)
    lo = parse_time(start, zone, "from")
    if lo is None:
        lo = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    hi = parse_time(end, zone, "to")
    files = kept_files(folder)
    if not files:
        raise NothingToReport(f"no events kept yet (in {folder})")
    agg = aggregate(event_files(files), by, zone_name, lo, hi)
    if fmt == "csv":
        return to_csv(agg)
    if fmt == "json":
        return to_json(agg)
    return render(agg, "Mask compliance report (live)")


def add_report_route(app, folder: str | Path) -> None:
    folder = Path(folder)

    @app.get("/v1/report", summary="compliance report of the kept events (HTML page, CSV or JSON)")
    async def report(start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                     tz: str | None = None, by: str = Query("hour", pattern="^(hour|day)$"),
                     format: str = Query("html", pattern="^(html|csv|json)$")):
        try:
            text = await run_in_threadpool(make_report, folder, start, end, tz, by, format)
        except ConfigError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        except LivemaskError as err:
            return JSONResponse({"error": str(err)}, status_code=404)
        if format == "csv":
            return PlainTextResponse(text, media_type="text/csv")
        if format == "json":
            return PlainTextResponse(text, media_type="application/json")
        return HTMLResponse(text)

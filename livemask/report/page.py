"""One self-contained HTML report: inline SVG charts, embedded thumbnails, the tables behind the charts.

The page loads nothing: no script, no font, no stylesheet from elsewhere, and its Content-Security-Policy
(``default-src 'none'``) forbids any request, so it opens offline and leaks nothing when mailed.
Alert thumbnails are the snapshots the run wrote (blurred there when the run blurred faces), shrunk to
:data:`THUMB_PX` and embedded as JPEG; at most :data:`MAX_THUMBS` are embedded, the other alerts are
listed without one.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime
from pathlib import Path

from livemask import __version__
from livemask.core.labels import display_name
from livemask.report import charts
from livemask.report.aggregate import LABELS, Aggregate, AlertItem, Row, camera_totals
from livemask.report.tables import bucket_label

THUMB_PX = 72  # longer side of an embedded alert thumbnail
MAX_THUMBS = 300  # about 3 KB each: the page stays well under 2 MB
MAX_ALERT_ROWS = 1000  # the page's alert table; the CSV / JSON list every alert
TOP = 3  # busiest and worst buckets listed
STAMP = "%Y-%m-%d %H:%M"

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#212121;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:12px}.chart svg{width:100%;height:auto}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:140px}.card b{font-size:20px;display:block}
.thumbs{display:flex;flex-wrap:wrap;gap:6px}.thumbs figure{margin:0;font-size:10px;text-align:center}
.thumbs img{display:block;height:72px;border-radius:3px}details{margin:6px 0}
"""


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _num(x) -> str:
    return "–" if x is None else str(x)


def thumbnail(path: Path | None) -> str | None:
    """A data: URL of the snapshot shrunk to THUMB_PX (JPEG), or None when it cannot be read."""
    if path is None:
        return None
    import cv2
    import numpy as np

    try:
        data = np.fromfile(str(path), np.uint8)
        if data.size == 0 or data.size > 20_000_000:
            return None
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except (OSError, ValueError):
        return None
    if image is None:
        return None
    h, w = image.shape[:2]
    scale = THUMB_PX / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode() if ok else None


def _table(rows: list[Row], caption: str) -> str:
    e = html.escape
    head = ("<tr><th class=l>start</th><th class=l>camera</th><th>frames</th><th>people</th><th>masked</th>"
            "<th>masked share</th>" + "".join(f"<th>{e(display_name(k))}</th>" for k in (*LABELS, "other"))
            + "<th>alerts</th></tr>")
    body = "".join(
        f"<tr><td class=l>{e(bucket_label(r))}</td><td class=l>{e(r.camera)}</td><td>{r.frames}</td>"
        f"<td>{_num(r.people)}</td><td>{_num(r.masked)}</td><td>{_pct(r.share_masked)}</td>"
        + "".join(f"<td>{r.faces.get(k, 0)}</td>" for k in (*LABELS, "other")) + f"<td>{r.alerts}</td></tr>"
        for r in rows)
    return f"<table class=numbers><caption>{e(caption)}</caption>{head}{body}</table>"


def _cameras_table(totals: list[Row]) -> str:
    """Each camera's totals over the report: a row per camera."""
    e = html.escape
    body = "".join(f"<tr><td class=l>{e(r.camera)}</td><td>{r.frames}</td><td>{_num(r.people)}</td>"
                   f"<td>{_num(r.masked)}</td><td>{_pct(r.share_masked)}</td><td>{r.alerts}</td></tr>"
                   for r in totals)
    return ("<table class=by-camera><caption>By camera, whole period</caption><tr><th class=l>camera</th>"
            f"<th>frames</th><th>people</th><th>masked</th><th>masked share</th><th>alerts</th></tr>{body}</table>")


def _ranked(site: list[Row]) -> tuple[list[Row], list[Row]]:
    with_people = [r for r in site if r.people]
    busiest = sorted(with_people, key=lambda r: (-r.people, r.start))[:TOP]
    worst = sorted(with_people, key=lambda r: (r.share_masked, -r.people, r.start))[:TOP]
    return busiest, worst


def _alerts_section(alerts: tuple[AlertItem, ...]) -> str:
    e = html.escape
    figures, rows = [], []
    for i, a in enumerate(alerts[:MAX_ALERT_ROWS]):
        src = thumbnail(a.snapshot) if i < MAX_THUMBS else None
        when = a.time.strftime("%Y-%m-%d %H:%M:%S %z")
        if src is not None:
            figures.append(f"<figure><img src=\"{src}\" alt=\"alert {i + 1}\"><figcaption>{e(a.camera)}<br>"
                           f"{e(a.time.strftime('%d %b %H:%M:%S'))}</figcaption></figure>")
        rows.append(f"<tr><td class=l>{e(when)}</td><td class=l>{e(a.camera)}</td><td class=l>"
                    f"{e(display_name(a.label))}</td><td>{_num(a.track_id)}</td>"
                    f"<td>{'–' if a.duration_s is None else f'{a.duration_s:.1f}'}</td>"
                    f"<td>{'yes' if src else 'no'}</td></tr>")
    thumbs = f"<div class=thumbs>{''.join(figures)}</div>" if figures else "<p>No alert snapshot to show.</p>"
    table = ("<table class=alerts><caption>Alerts</caption><tr><th class=l>time</th><th class=l>camera</th>"
             "<th class=l>label</th><th>track</th><th>after (s)</th><th>snapshot</th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>No alert in this period.</p>"
    more = len(alerts) - MAX_ALERT_ROWS
    if more > 0:
        table += f"<p>{more} more alert(s) are in the CSV and JSON (<code>--format csv|json</code>).</p>"
    return thumbs + f"<details><summary>Alerts table ({len(alerts)})</summary>{table}</details>"


def render(agg: Aggregate, title: str = "Mask compliance report", generated: datetime | None = None) -> str:
    """The whole page as one string."""
    e = html.escape
    site = agg.site()
    people = sum(r.people or 0 for r in site)
    masked = sum(r.masked or 0 for r in site)
    busiest, worst = _ranked(site)
    first, last = site[0].start, site[-1].start
    generated = generated or datetime.now(first.tzinfo)
    has_people = any(r.people is not None for r in site)

    def listing(rows: list[Row]) -> str:
        if not rows:
            return "<li>no people counted</li>"
        return "".join(f"<li>{e(bucket_label(r))}: {r.people} people, {_pct(r.share_masked)} masked, "
                       f"{r.alerts} alert(s)</li>" for r in rows)

    cards = (f"<div class=cards><div class=card><b>{people if has_people else '–'}</b>people</div>"
             f"<div class=card><b>{_pct(masked / people if people else None)}</b>masked</div>"
             f"<div class=card><b>{len(agg.alerts)}</b>alerts</div>"
             f"<div class=card><b>{len(agg.cameras)}</b>camera(s)</div></div>")
    note = "" if has_people else ("<p><b>These runs had no people stage</b>: people and masked share are not "
                                  "counted, only faces by label.</p>")
    totals = camera_totals(agg)
    per_camera = "".join(_table([r for r in agg.rows if r.camera == c], f"camera {c}") for c in agg.cameras)
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        "<meta name=viewport content=\"width=device-width,initial-scale=1\">",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p class=meta>{e(first.strftime(STAMP))} to {e((last + charts.bucket_span(agg)).strftime(STAMP))}"
        f" ({e(agg.zone)}), per {agg.by}; cameras: {e(', '.join(agg.cameras))}. Read {agg.lines} line(s) from "
        f"{len(agg.files)} file(s); {agg.malformed} malformed line(s) skipped. Made {e(generated.strftime(STAMP))}"
        f" by livemask {e(__version__)}.</p>",
        cards, note,
        "<h2>People</h2>", f"<div class=chart id=chart-people>{charts.people_chart(agg, site)}</div>",
        "<h2>Masked share</h2>", f"<div class=chart id=chart-share>{charts.share_chart(agg, site)}</div>",
        f"<h2>Busiest and worst {agg.by}s</h2><div class=cards><div><b>Busiest</b><ol>{listing(busiest)}</ol></div>"
        f"<div><b>Lowest masked share</b><ol>{listing(worst)}</ol></div></div>",
        "<h2>Alerts</h2>", f"<div class=chart id=chart-alerts>{charts.alerts_chart(agg)}</div>",
        _alerts_section(agg.alerts),
        "<h2>Label mix</h2>", f"<div class=chart id=chart-labels>{charts.labels_chart(agg, site)}</div>",
        "<h2>By camera</h2>", f"<div class=chart id=chart-cameras>{charts.cameras_chart(totals)}</div>",
        _cameras_table(totals),
        "<h2>Numbers</h2><p class=meta>People: people counted by track in that period (a person once). Faces: "
        "faces seen, one a face a frame. The site is all cameras summed.</p>",
        _table(site, "site (all cameras)"), per_camera,
        "</body></html>\n",
    ]
    return "".join(parts)

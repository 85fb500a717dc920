"""A report's charts as inline SVG strings, drawn with matplotlib's object API (no pyplot, no global state).

Text stays text in the SVG (``svg.fonttype: none``): smaller files, and the page's search finds it. The
x axis lists the buckets in order (a DST night's two 02:00 hours are two bars, labelled with their offset).
"""

from __future__ import annotations

import io
import re
from datetime import datetime

from livemask.core.labels import display_name
from livemask.report.aggregate import Aggregate, Row

MASKED = "#2e7d32"
UNMASKED = "#c62828"
PALETTE = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#37474f")
LABEL_COLOURS = {"mask": MASKED, "no_mask": UNMASKED, "mask_incorrect": "#f9a825", "other": "#757575"}


def _figure(width: float = 9.0, height: float = 2.8):
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "livemask"  # the same input gives the same bytes
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
    return text  # inline: no XML prologue, DOCTYPE or RDF metadata


def tick_label(start: datetime, by: str, previous: datetime | None) -> str:
    if by == "day":
        return start.strftime("%a %d %b")
    hour = start.strftime("%H:%M")
    if previous is not None and previous.utcoffset() != start.utcoffset():
        hour += start.strftime(" (%z)")
    if previous is None or previous.date() != start.date():
        return start.strftime("%d %b\n") + hour
    return hour


def _ticks(ax, starts: list[datetime], by: str) -> None:
    step = max(1, len(starts) // 24)
    shown = list(range(0, len(starts), step))
    labels = [tick_label(starts[i], by, starts[shown[k - 1]] if k else None) for k, i in enumerate(shown)]
    ax.set_xticks(shown, labels, fontsize=7)  # the date on the first tick and wherever it changes
    ax.set_xlim(-0.6, len(starts) - 0.4)


def people_chart(agg: Aggregate, site: list[Row]) -> str:
    """Site people per bucket as stacked bars (masked / not masked), each camera's people as a line."""
    fig, ax = _figure()
    starts = [r.start for r in site]
    x = range(len(site))
    masked = [r.masked or 0 for r in site]
    other = [(r.people or 0) - (r.masked or 0) for r in site]
    ax.bar(x, masked, color=MASKED, label="site: masked")
    ax.bar(x, other, bottom=masked, color=UNMASKED, label="site: not masked")
    index = {s.timestamp(): i for i, s in enumerate(starts)}
    if len(agg.cameras) > 1:
        for k, camera in enumerate(agg.cameras):
            rows = [r for r in agg.rows if r.camera == camera and r.people is not None]
            ax.plot([index[r.start.timestamp()] for r in rows], [r.people for r in rows], marker="o", ms=3, lw=1.2,
                    color=PALETTE[k % len(PALETTE)], label=camera)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # people are whole
    ax.set_ylabel("people")
    ax.set_title(f"People per {agg.by}", fontsize=10, loc="left")
    _ticks(ax, starts, agg.by)
    ax.legend(fontsize=7, ncols=4, loc="upper left", frameon=False)
    ax.margins(y=0.25)
    return _svg(fig)


def share_chart(agg: Aggregate, site: list[Row]) -> str:
    """Masked share (0-100 %) per bucket: the site thick, each camera thin; buckets without people are gaps."""
    fig, ax = _figure()
    starts = [r.start for r in site]
    index = {s.timestamp(): i for i, s in enumerate(starts)}

    def line(rows: list[Row], **style) -> None:
        xs = [index[r.start.timestamp()] for r in rows]
        ys = [float("nan") if r.share_masked is None else 100 * r.share_masked for r in rows]
        ax.plot(xs, ys, marker="o", **style)

    if len(agg.cameras) > 1:
        for k, camera in enumerate(agg.cameras):
            line([r for r in agg.rows if r.camera == camera], ms=3, lw=1, color=PALETTE[k % len(PALETTE)],
                 label=camera)
    line(site, ms=4, lw=2.2, color="#212121", label="site")
    ax.set_ylim(-5, 105)
    ax.set_ylabel("masked %")
    ax.set_title("Masked share of people", fontsize=10, loc="left")
    _ticks(ax, starts, agg.by)
    ax.legend(fontsize=7, ncols=5, loc="lower left", frameon=False)
    return _svg(fig)


def alerts_chart(agg: Aggregate) -> str:
    """Each alert as a tick on its camera's row, on a real time axis over the report's span."""
    import matplotlib.dates as mdates

    fig, ax = _figure(height=max(1.4, 0.45 * len(agg.cameras) + 1.0))
    rows = {c: i for i, c in enumerate(agg.cameras)}
    for camera, i in rows.items():
        times = [a.time for a in agg.alerts if a.camera == camera]
        labels = [a.label for a in agg.alerts if a.camera == camera]
        colours = [LABEL_COLOURS.get(label, LABEL_COLOURS["other"]) for label in labels]
        ax.scatter(times, [i] * len(times), marker="|", s=260, linewidths=2, c=colours or None)
    span = [r.start for r in agg.rows]
    ax.set_xlim(min(span), max(span) + bucket_span(agg))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M", tz=span[0].tzinfo))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_yticks(list(rows.values()), list(rows), fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_title(f"Alerts ({len(agg.alerts)})", fontsize=10, loc="left")
    return _svg(fig)


def bucket_span(agg: Aggregate):
    from datetime import timedelta

    return timedelta(hours=1) if agg.by == "hour" else timedelta(days=1)


def labels_chart(agg: Aggregate, site: list[Row]) -> str:
    """Face observations by label over the whole report, as one horizontal bar per label."""
    fig, ax = _figure(height=1.9)
    totals = {}
    for r in site:
        for k, n in r.faces.items():
            totals[k] = totals.get(k, 0) + n
    keys = [k for k, n in totals.items() if n] or list(totals)
    all_faces = max(sum(totals.values()), 1)
    ax.barh(range(len(keys)), [totals[k] for k in keys],
            color=[LABEL_COLOURS.get(k, LABEL_COLOURS["other"]) for k in keys])
    ax.set_yticks(range(len(keys)), [display_name(k) for k in keys], fontsize=8)
    for i, k in enumerate(keys):
        ax.annotate(f" {100 * totals[k] / all_faces:.1f} %", (totals[k], i), va="center", fontsize=7)
    ax.invert_yaxis()
    ax.margins(x=0.15)
    ax.set_xlabel("faces seen (one a face a frame)", fontsize=8)
    ax.set_title("Label mix", fontsize=10, loc="left")
    return _svg(fig)


def cameras_chart(totals: list[Row]) -> str:
    """People of each camera over the whole report, masked / not masked, with the masked share beside the bar."""
    fig, ax = _figure(height=max(1.4, 0.4 * len(totals) + 0.9))
    names = [r.camera for r in totals]
    masked = [r.masked or 0 for r in totals]
    rest = [(r.people or 0) - (r.masked or 0) for r in totals]
    ax.barh(range(len(names)), masked, color=MASKED, label="masked")
    ax.barh(range(len(names)), rest, left=masked, color=UNMASKED, label="not masked")
    for i, r in enumerate(totals):
        share = "no people counted" if not r.people else f"{100 * r.share_masked:.0f} % masked of {r.people}"
        ax.annotate(f" {share}, {r.alerts} alert(s)", (r.people or 0, i), va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.35)
    ax.set_xlabel("people counted", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("By camera", fontsize=10, loc="left")
    return _svg(fig)

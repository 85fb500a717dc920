"""``livemask report``: a compliance report (HTML, CSV or JSON) from event logs and batch output folders.

See :mod:`livemask.report` and docs/reports.md. A missing or unreadable INPUT or a bad option is one line,
exit 2; inputs without any usable event line are one line, exit 1; malformed lines are skipped and counted.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from livemask.core.errors import OutputError

log = logging.getLogger(__name__)

FORMATS = ("html", "csv", "json")


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="event logs (run --events, serve's kept events) and livemask batch output folders")
    parser.add_argument("--out", metavar="FILE", help="where to write the report (default: stdout for csv/json, "
                                                     "report.html for html)")
    parser.add_argument("--from", dest="start", metavar="TIME",
                        help="first moment counted (ISO, e.g. 2026-03-29 or 2026-03-29T08:00; in --tz unless it "
                             "has an offset)")
    parser.add_argument("--to", dest="end", metavar="TIME", help="end of the period (excluded), as --from")
    parser.add_argument("--tz", metavar="ZONE", help="time zone of the buckets (IANA name; default: the machine's)")
    parser.add_argument("--by", choices=("hour", "day"), default="hour", help="bucket size (default: hour)")
    parser.add_argument("--format", choices=FORMATS, default="html", help="html page (default), or the numbers "
                                                                          "as csv or json")
    parser.add_argument("--title", default="Mask compliance report", help="the page's title")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (a reader never sees half a report)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({err.strerror or err})") from None


def command(args, config) -> int:
    from livemask.report.aggregate import aggregate, check_zone, machine_zone, parse_time
    from livemask.report.inputs import event_files
    from livemask.report.page import render
    from livemask.report.tables import to_csv, to_json

    zone_name = args.tz or machine_zone()
    zone = check_zone(zone_name)
    start = parse_time(args.start, zone, "--from")
    end = parse_time(args.end, zone, "--to")
    files = event_files(args.inputs)
    resolved = {str(f.path.resolve()) for f in files}
    out = Path(args.out) if args.out else (Path("report.html") if args.format == "html" else None)
    if out is not None and str(out.resolve()) in resolved:
        raise OutputError(f"--out {out} is one of the inputs")
    agg = aggregate(files, args.by, zone_name, start, end)
    text = {"html": lambda: render(agg, args.title), "csv": lambda: to_csv(agg), "json": lambda: to_json(agg)}[
        args.format]()
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(out, text)
    people = sum(r.people or 0 for r in agg.site())
    print(f"livemask: report: {len(agg.rows)} row(s), {len(agg.cameras)} camera(s), {people} people, "
          f"{len(agg.alerts)} alert(s), {agg.lines} line(s) read, {agg.malformed} malformed skipped"
          + (f"; written to {out}" if out is not None else ""), file=sys.stderr)
    return 0


def folder_report(out_dir: str | Path, name: str = "report.html") -> Path | None:
    """``livemask batch``'s report: every input's events in ``out_dir`` -> ``out_dir/report.html``.

    Never fails the batch: nothing to report (every input failed) or a report that cannot be written is
    one log line, and the batch keeps its exit status. Returns the report's path, or None.
    """
    from livemask.core.errors import LivemaskError
    from livemask.report.aggregate import aggregate
    from livemask.report.inputs import event_files
    from livemask.report.page import render

    out = Path(out_dir) / name
    try:
        agg = aggregate(event_files([out_dir]))
        write_atomic(out, render(agg, "Mask compliance report (batch)"))
    except LivemaskError as err:
        log.warning("no %s: %s", name, err)
        return None
    except Exception as err:  # a bug in the report must not turn a finished batch into a failure
        log.warning("no %s: internal error (%s: %s)", name, type(err).__name__, err)
        return None
    log.info("report: %s", out)
    return out

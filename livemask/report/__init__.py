"""Compliance reports from event logs: aggregate (streamed, DuckDB), then charts and one self-contained page.

:mod:`~livemask.report.inputs` finds the event logs of INPUTs (files, batch output folders),
:mod:`~livemask.report.aggregate` counts people, masked people, faces by label and alerts per
camera and hour or day without loading the events into memory, :mod:`~livemask.report.charts`
draws inline SVG charts, :mod:`~livemask.report.page` writes the HTML, and
:mod:`~livemask.report.tables` the CSV and JSON of the same numbers.
"""


def require_report_libraries() -> None:
    """DuckDB and matplotlib are the ``report`` extra (in the full install, not in the lean one): without them,
    one line naming the extra (exit 2) instead of an import error."""
    import importlib.util

    from livemask.core.errors import ConfigError

    missing = [name for name in ("duckdb", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"reports need {' and '.join(missing)}, which this install lacks: "
                          "pip install 'livemask[report]'")

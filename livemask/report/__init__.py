"""Compliance reports from event logs: aggregate (streamed, DuckDB), then charts and one self-contained page.

:mod:`~livemask.report.inputs` finds the event logs of INPUTs (files, batch output folders),
:mod:`~livemask.report.aggregate` counts people, masked people, faces by label and alerts per
camera and hour or day without loading the events into memory, :mod:`~livemask.report.charts`
draws inline SVG charts, :mod:`~livemask.report.page` writes the HTML, and
:mod:`~livemask.report.tables` the CSV and JSON of the same numbers.
"""

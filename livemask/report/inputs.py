"""What ``livemask report`` reads: event logs named directly, and ``livemask batch`` output folders.

An INPUT is
- an event log (``run --events``, a batch input's ``events.jsonl``, serve's kept events): one JSON object a
  line. Its camera is the line's ``camera`` field, else the file's stem;
- a ``livemask batch`` output folder (``summary.csv`` inside): every ``<input>/events.jsonl`` in it,
  the camera being the input's folder name;
- any other folder: every ``*.jsonl`` file directly in it.
A missing or unreadable INPUT, or a folder with no event log, is a :class:`ReportInputError` (exit 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from livemask.core.errors import LivemaskError

BATCH_SUMMARY = "summary.csv"
BATCH_EVENTS = "events.jsonl"


class ReportInputError(LivemaskError):
    """An INPUT of ``livemask report`` is missing, unreadable, or holds no event log."""

    exit_code = 2


class NothingToReport(LivemaskError):
    """The inputs were read but hold no usable event line (empty, all malformed, or outside --from/--to)."""

    exit_code = 1


@dataclass(frozen=True)
class EventFile:
    """One event log and the camera name its lines get when they carry no ``camera`` field."""

    path: Path
    camera: str


def _readable(path: Path) -> Path:
    try:
        with path.open("rb") as f:
            f.read(1)
    except IsADirectoryError:
        raise ReportInputError(f"{path}: is a folder") from None
    except OSError as err:
        raise ReportInputError(f"{path}: cannot read ({err.strerror or err})") from None
    return path


def event_files(inputs: list[str | Path]) -> list[EventFile]:
    """The event logs of every INPUT, in the order given (a file named twice is read once)."""
    out: list[EventFile] = []
    seen: set[str] = set()
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise ReportInputError(f"{path}: no such file or folder")
        if path.is_dir():
            if (path / BATCH_SUMMARY).is_file():
                found = [EventFile(p, p.parent.name) for p in sorted(path.glob(f"*/{BATCH_EVENTS}"))
                         if not p.parent.name.startswith(".")]
            else:
                found = [EventFile(p, p.stem) for p in sorted(path.glob("*.jsonl")) if p.is_file()]
            if not found:
                raise ReportInputError(f"{path}: no event log in this folder (*.jsonl, or a batch folder's "
                                       f"*/{BATCH_EVENTS})")
        else:
            found = [EventFile(path, path.stem)]
        for item in found:
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                out.append(EventFile(_readable(item.path), item.camera))
    if not out:
        raise ReportInputError("no INPUT given")
    return out

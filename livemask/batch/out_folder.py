"""Output folders that are either complete or absent, the resume check, and the batch summary table.

A worker writes an input's files into ``DIR/.partial-<name>-<host>-<pid>/`` and, when every file is closed
and ``summary.json`` (written last) is in place, renames that folder to ``DIR/<name>/``. A killed batch thus
leaves at most a ``.partial-*`` folder, which the next run removes; a folder without the ``.partial-``
prefix is always complete. (The project-wide helper for atomic outputs is being written in
``livemask/core/output_paths.py``; these batch-specific ones stay here until the two are unified.)
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import shutil
import socket
from pathlib import Path

from livemask.core.errors import LivemaskError

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"
SUMMARY_JSON = "summary.json"
EVENTS = "events.jsonl"
LOCK = ".batch.lock"


def partial_dir(out_dir: Path, name: str) -> Path:
    return out_dir / f"{PARTIAL_PREFIX}{name}-{socket.gethostname()}-{os.getpid()}"


def publish(tmp: Path, final: Path) -> None:
    """Make the complete folder ``tmp`` visible as ``final`` (replacing an older ``final``)."""
    if final.exists():
        old = final.with_name(f"{PARTIAL_PREFIX}old-{final.name}-{os.getpid()}")
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def remove_partials(out_dir: Path) -> int:
    """Remove what killed runs left behind; returns how many folders went."""
    n = 0
    for p in out_dir.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        n += 1
    return n


def completed_summary(out_dir: Path, item) -> dict | None:
    """The summary of an earlier complete run of ``item`` (same path, size and mtime), or None."""
    folder = out_dir / item.name
    try:
        summary = json.loads((folder / SUMMARY_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("status") != "ok" or summary.get("input") != item.fingerprint:
        return None
    if not all((folder / f).is_file() for f in summary.get("outputs", [])):
        return None
    return summary


class OutputLock:
    """One batch at a time per output folder (an flock, released by the kernel when the driver dies)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK
        self.file = None

    def __enter__(self) -> OutputLock:
        self.file = self.path.open("a")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise LivemaskError(f"{self.path.parent}: another livemask batch is writing to this folder") from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def write_table(out_dir: Path, rows: list[dict], columns: list[str]) -> list[Path]:
    """``summary.csv`` (always) and ``summary.parquet`` (when pyarrow is importable), each written atomically."""
    written = []
    csv_path = out_dir / "summary.csv"
    tmp = csv_path.with_name(f".summary.csv.tmp-{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    os.replace(tmp, csv_path)
    written.append(csv_path)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    pq_path = out_dir / "summary.parquet"
    tmp = pq_path.with_name(f".summary.parquet.tmp-{os.getpid()}")
    table = pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows])
    pq.write_table(table, tmp)
    os.replace(tmp, pq_path)
    written.append(pq_path)
    return written

"""The batch driver: expand inputs, skip finished ones (``--resume``), run an engine, write the summary.

Signals: the first SIGINT (Ctrl-C) or SIGTERM stops scheduling; the files already running finish and are
published. A second one abandons the running files (their partial folders are removed). Either way the
summary of what is done is written and the exit status is 128 + the signal (130 for Ctrl-C).
``summary.csv`` is also rewritten every ``checkpoint_s`` seconds, so a driver that is killed outright still
leaves a recent table (and every finished file's folder, which ``--resume`` trusts).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livemask.batch.executors import Control, Executor
from livemask.batch.inputs import BatchInput, expand_inputs
from livemask.batch.out_folder import OutputLock, completed_summary, remove_partials, write_table
from livemask.batch.worker import FileResult
from livemask.core.errors import LivemaskError

log = logging.getLogger(__name__)

BASE_COLUMNS = ["path", "name", "status", "error", "duration_s", "frames", "people"]
TAIL_COLUMNS = ["share_masked", "static_faces", "first_no_mask_s", "last_no_mask_s", "processing_s", "fps", "worker",
                "worker_file", "model_load_s", "attempts", "note"]
CLASS_ORDER = ["mask", "no_mask", "mask_incorrect"]


@dataclass
class BatchReport:
    rows: list[FileResult]
    signal: int | None = None
    tables: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0
    load_times: list[float] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + int(self.signal)
        return 1 if self.count("failed") else 0


class _Signals:
    """First SIGINT/SIGTERM: stop scheduling; second: abandon the running files."""

    def __init__(self, control: Control):
        self.control = control
        self.signal: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, _frame) -> None:
        if self.signal is None:
            self.signal = signum
            self.control.stop.set()
            print("livemask: stopping: no new files; running files finish (press Ctrl-C again to abandon them)",
                  file=sys.stderr)
        else:
            self.control.abandon.set()

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def columns_for(rows: list[FileResult]) -> list[str]:
    classes = {c for r in rows for c in r.people}
    ordered = [c for c in CLASS_ORDER if c in classes] + sorted(classes - set(CLASS_ORDER))
    return BASE_COLUMNS + [f"people_{c}" for c in ordered] + TAIL_COLUMNS


def write_summary(out_dir: Path, items: list[BatchInput], done: dict[str, FileResult], final: bool) -> list[Path]:
    """One row per input, in input order; inputs not (yet) processed are ``skipped``."""
    rows = []
    for item in items:
        row = done.get(item.name)
        if row is None:
            row = FileResult(item.path, item.name, "skipped", error="not started (batch interrupted)" if final
                             else "not done yet")
        rows.append(row)
    return write_table(out_dir, [r.row(list(_classes(rows))) for r in rows], columns_for(rows))


def _classes(rows: list[FileResult]) -> list[str]:
    return [c[len("people_"):] for c in columns_for(rows) if c.startswith("people_")]


def previous_row(summary: dict, item: BatchInput) -> FileResult:
    data = dict(summary.get("row", {}))
    data.update(path=item.path, name=item.name, status="skipped", error=None, note="done in an earlier run (--resume)")
    known = set(FileResult.__dataclass_fields__)
    return FileResult(**{k: v for k, v in data.items() if k in known})


def run_batch(arguments: list[str], out_dir: str | Path, make_executor: Callable[[Path], Executor],
              resume: bool = False, progress: bool = True, checkpoint_s: float = 30.0) -> BatchReport:
    items = expand_inputs(arguments, exclude_under=out_dir)  # --out inside an input folder: never re-read
    if not items:
        raise LivemaskError("no inputs: the paths given hold no video or image files")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LivemaskError(f"{out_dir}: cannot create the output folder ({err.strerror})") from None
    started = time.monotonic()
    with OutputLock(out_dir):
        if remove_partials(out_dir):
            log.info("removed unfinished outputs of an earlier, interrupted batch")
        done: dict[str, FileResult] = {}
        todo = []
        for item in items:
            summary = completed_summary(out_dir, item) if resume else None
            if summary is not None:
                done[item.name] = previous_row(summary, item)
            else:
                todo.append(item)
        if resume:
            log.info("resume: %d of %d inputs already done", len(items) - len(todo), len(items))
        engine = make_executor(out_dir) if todo else None
        control = Control()
        bar = None
        if progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="file", dynamic_ncols=True, file=sys.stderr, smoothing=0.05)
        frames = [0]
        last_checkpoint = [time.monotonic()]

        def on_result(result: FileResult) -> None:
            done[result.name] = result
            frames[0] += result.frames
            if result.status == "failed":
                log.warning("%s: failed: %s", result.path, result.error)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(frames=frames[0], fps=f"{frames[0] / max(time.monotonic() - started, 1e-6):.1f}",
                                failed=sum(r.status == "failed" for r in done.values()), refresh=False)
            if time.monotonic() - last_checkpoint[0] >= checkpoint_s:
                write_summary(out_dir, items, done, final=False)
                last_checkpoint[0] = time.monotonic()

        with _Signals(control) as signals:
            try:
                if engine is not None:
                    log.info("batch: %d inputs to process on %d %s worker(s)", len(todo), engine.workers, engine.name)
                    engine.run(todo, on_result, control)
            finally:
                if bar is not None:
                    bar.close()
                remove_partials(out_dir)  # what killed workers left; every worker has stopped by now
                # inputs abandoned part way report as skipped; inputs never started too
                tables = write_summary(out_dir, items, done, final=True)
    rows = [done.get(i.name) or FileResult(i.path, i.name, "skipped", error="not started (batch interrupted)")
            for i in items]
    return BatchReport(rows, signals.signal, tables, time.monotonic() - started,
                       list(getattr(engine, "load_times", []) or []))

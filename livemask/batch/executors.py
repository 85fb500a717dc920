"""What the runner asks of an engine, and the retry rule both engines share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from livemask.batch.inputs import BatchInput
from livemask.batch.worker import FileResult

MAX_ATTEMPTS = 2  # a file whose worker dies is tried once more on a fresh worker, then reported failed


@dataclass
class Control:
    """Set by the runner: ``stop`` = schedule nothing new; ``abandon`` = also give up the running files."""

    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)


def crashed(item: BatchInput, attempts: int, why: str, worker: str | None) -> FileResult:
    return FileResult(item.path, item.name, "failed", error=f"{why} (tried {attempts} times)", worker=worker,
                      attempts=attempts)


class Executor:
    """Runs :func:`livemask.batch.worker.process_input` for each item on workers that load the models once.

    ``run`` calls ``on_result`` (in the calling thread) once for every item it started, returns when no
    item is running any more, and leaves the items it never started to the runner.
    """

    name = "engine"
    workers = 1

    def run(self, items: list[BatchInput], on_result: Callable[[FileResult], None], control: Control) -> None:
        raise NotImplementedError

"""Console sinks: the progress bar of a headless file run and the summary line in the log."""

from __future__ import annotations

import logging
import sys

from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo

log = logging.getLogger("livemask.run")


class ProgressBar:
    """A tqdm bar on stderr (frames, fps, ETA) for a run with a known length."""

    name = "progress"
    threaded = False

    def __init__(self):
        self.bar = None

    def open(self, info: RunInfo) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=info.total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def write(self, result: FrameResult) -> None:
        self.bar.update(1)
        if self.bar.n % 10 == 0:
            self.bar.set_postfix(fps=f"{self.bar.format_dict.get('rate') or 0.0:.1f}", refresh=False)

    def close(self, summary: dict) -> None:
        if self.bar is not None:
            self.bar.close()


class SummaryLog:
    """Logs the run's summary (one INFO line) when the run ends."""

    name = "summary"
    threaded = False

    def open(self, info: RunInfo) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        pass

    def close(self, summary: dict) -> None:
        log.info("summary: %s", summary)

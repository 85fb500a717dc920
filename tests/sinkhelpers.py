"""A sink base for tests: every hook optional (the package's sinks implement the protocol themselves)."""

from __future__ import annotations

from typing import Any

from livemask.core.types import FrameResult
from livemask.engine.sink import RunInfo


class BaseSink:
    """Convenience base: every hook optional."""

    name = "sink"
    threaded = False
    queue_size = 8

    def open(self, info: RunInfo) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        pass

    def close(self, summary: dict) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

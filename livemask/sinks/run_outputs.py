"""What ``livemask run`` writes and shows: the ``run`` section of config.yaml.

The composition root (:func:`livemask.apps.compose.run_sinks`) turns these options into the run's sinks
(video, event log, progress, summary) and its window.
"""

from __future__ import annotations

from dataclasses import dataclass

from livemask.core.params import check_fields


@dataclass
class RunOptions:
    """The ``run`` section of config.yaml (see there for the meaning of each key)."""

    headless: bool = False
    output: str | None = None
    events: str | None = None
    snapshot_dir: str = "snapshots"
    snapshot_overlay: bool = False
    window_name: str = "livemask"
    progress: bool = True
    overlay: bool = True

    def __post_init__(self) -> None:
        check_fields(self)

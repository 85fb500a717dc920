"""Frame times on the wall clock.

Frames carry ``time.monotonic()`` timestamps (they never jump). Outputs that show a wall-clock time (the
event log, the page, alert records) add one offset, taken once per process, so that every output gives a
frame the same wall-clock time.
"""

from __future__ import annotations

import time

_OFFSET = time.time() - time.monotonic()


def wall_offset() -> float:
    """Seconds to add to a ``time.monotonic()`` value to get Unix time (fixed for the process)."""
    return _OFFSET


def wall_time(monotonic_s: float) -> float:
    """A ``time.monotonic()`` value as Unix time."""
    return monotonic_s + _OFFSET

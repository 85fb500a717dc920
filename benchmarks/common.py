"""Shared bits for the benchmarks: machine description and median timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cv2
    import numpy as np

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"opencv {cv2.__version__}"]
    try:
        import tensorflow as tf

        versions.append(f"tensorflow {tf.__version__}")
    except ImportError:
        pass
    return f"{os.cpu_count()} cores, {cpu}; " + ", ".join(versions)


def times_ms(fn: Callable[[], object], repeat: int = 50, warmup: int = 5) -> list[float]:
    """Wall times of ``repeat`` calls of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def median_ms(fn: Callable[[], object], repeat: int = 50, warmup: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    return statistics.median(times_ms(fn, repeat, warmup))


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def process_rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` now (VmRSS), in MB; NaN when it is not reported."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rotated(names: list[str], repeats: int):
    """``repeats`` rounds over ``names``, each round starting one later, so no configuration always goes first."""
    for k in range(repeats):
        k %= len(names)
        yield from names[k:] + names[:k]

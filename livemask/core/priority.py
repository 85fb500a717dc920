"""Thread priorities: CPU work (decoding, inference) below the thread that must answer at once.

On Linux a thread has a nice value of its own (``setpriority(PRIO_PROCESS, tid, ...)`` with the
thread's id), and a thread starts with the nice value of the thread that created it. ``serve``
uses this so that its event loop (``/healthz``, the page, 503 answers) gets a core as soon as it
wakes while decodes and model calls keep both cores busy (docs/security.md). Elsewhere, or when the
system refuses, these functions do nothing: a lower priority is a help, never a requirement.
"""

from __future__ import annotations

import os
import sys
import threading

MAX_NICE = 19


def supported() -> bool:
    """True where a thread's own nice value can be set (Linux)."""
    return sys.platform.startswith("linux") and hasattr(os, "setpriority")


def thread_nice(tid: int | None = None) -> int | None:
    """The nice value of thread ``tid`` (default: the calling thread), or None where unknown."""
    if not supported():
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if tid is None else tid)
    except OSError:
        return None


def lower_thread(by: int, tid: int | None = None) -> bool:
    """Raise the nice value of thread ``tid`` (default: the calling thread) by ``by`` (capped at 19).
    True when it was lowered; False where unsupported, for ``by`` <= 0 or when the thread is gone."""
    if by <= 0 or not supported():
        return False
    tid = threading.get_native_id() if tid is None else tid
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, now + by))
    except OSError:  # the thread ended meanwhile, or a system that refuses
        return False
    return True


def lower_other_threads(by: int) -> int:
    """Put every other thread of this process (model runtimes' pools, loaders) at least ``by`` nice steps below
    the calling thread, which keeps its priority (a thread already that low is left as it is). Threads
    started later by the caller start at the caller's priority. Returns how many threads were lowered."""
    mine = thread_nice()
    if by <= 0 or mine is None:
        return 0
    me = threading.get_native_id()
    try:
        tids = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    lowered = 0
    for tid in tids:
        now = thread_nice(tid) if tid != me else None
        if now is not None and now < min(MAX_NICE, mine + by):
            lowered += lower_thread(min(MAX_NICE, mine + by) - now, tid)
    return lowered


def lowered(by: int):
    """A ``ThreadPoolExecutor`` initializer: each of its threads lowers itself by ``by`` when it starts."""
    def initializer() -> None:
        lower_thread(by)

    return initializer

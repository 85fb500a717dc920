"""The one bounded hand-off between threads: capture -> stages -> engine -> threaded sinks.

A :class:`Channel` is a bounded queue with

* a drop policy for a full channel: ``BLOCK`` waits for room (nothing lost; gives up
  only when the stop event is set), ``DROP_OLDEST`` throws the oldest waiting item away,
  ``DROP_NEWEST`` throws the new one away; every drop is counted in :attr:`Channel.dropped`;
* an end marker, put by :meth:`close` on the normal and on the error path (it carries the
  error); it always gets in: with a drop policy (or when stopping) it takes the place
  of the oldest waiting item (counted as a drop unless stopping);
* :meth:`get` with a timeout (``queue.Empty`` when nothing came), which returns ``None``
  at the end and re-raises the producer's error;
* :meth:`drain` for shutdown.
"""

from __future__ import annotations

import enum
import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class BufferPolicy(enum.Enum):
    """What :meth:`Channel.put` does when the channel is full."""

    BLOCK = "block"  # wait for room, never lose an item (files, batch outputs)
    DROP_OLDEST = "drop_oldest"  # live: discard the oldest waiting item, count it, keep the new one
    DROP_NEWEST = "drop_newest"  # discard the new item, count it (keep what is already waiting)


class _End:
    """End marker; carries the error that ended the producer, if any."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None):
        self.error = error


class Channel(Generic[T]):
    """Bounded single-producer hand-off with a drop policy, an end marker and counted drops."""

    def __init__(self, maxsize: int, policy: BufferPolicy = BufferPolicy.BLOCK,
                 stop_event: threading.Event | None = None, name: str = "channel"):
        self.maxsize = max(int(maxsize), 1)
        self.policy = policy
        self.stop_event = stop_event or threading.Event()
        self.name = name
        self._queue: queue.Queue = queue.Queue(maxsize=self.maxsize)
        self.dropped = 0
        self.ended = False  # the consumer has seen the end marker

    # -- producer ---------------------------------------------------------------------------
    def put(self, item: T) -> bool:
        """Hand ``item`` over; False when it was dropped (policy, or BLOCK while stopping)."""
        if self.policy is BufferPolicy.BLOCK:
            while True:
                try:
                    self._queue.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    if self.stop_event.is_set():
                        return False
        while True:
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                if self.policy is BufferPolicy.DROP_NEWEST:
                    self.dropped += 1
                    return False
                try:
                    old = self._queue.get_nowait()
                except queue.Empty:  # the consumer took it meanwhile: try again
                    continue
                if isinstance(old, _End):  # never throw the end away
                    self._queue.put_nowait(old)
                    return False
                self.dropped += 1

    def close(self, error: BaseException | None = None) -> None:
        """Put the end marker (carrying ``error``); waits for room unless stopping or dropping."""
        end = _End(error)
        while True:
            try:
                self._queue.put(end, timeout=0.05)
                return
            except queue.Full:
                stopping = self.stop_event.is_set()
                if stopping or self.policy is not BufferPolicy.BLOCK:
                    try:  # make room: the end must get through
                        self._queue.get_nowait()
                    except queue.Empty:
                        continue
                    if not stopping:  # a drop policy: the item made room for the end, count it
                        self.dropped += 1

    # -- consumer ---------------------------------------------------------------------------
    def get(self, timeout: float | None = 0.1) -> T | None:
        """The next item; ``None`` at the end; raises queue.Empty on timeout and the producer's error."""
        if self.ended:
            return None
        item = self._queue.get_nowait() if timeout == 0 else self._queue.get(timeout=timeout)
        if isinstance(item, _End):
            self.ended = True
            if item.error is not None:
                raise item.error
            return None
        return item

    def get_nowait(self) -> T | None:
        return self.get(timeout=0)

    def drain(self) -> int:
        """Throw away every waiting item (shutdown); returns how many there were."""
        n = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return n
            n += 1

    def full(self) -> bool:
        """True while no item can be put without waiting or dropping (a sink's shutdown checks it)."""
        return self._queue.full()

    def qsize(self) -> int:
        """Items waiting now (approximate while other threads put and get)."""
        return self._queue.qsize()

    def __iter__(self):
        """Items until the end marker (waiting as long as it takes)."""
        while True:
            try:
                item = self.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                return
            yield item

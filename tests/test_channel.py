"""The one bounded channel: drop policies with counted drops, the end marker, errors, timeouts, drain."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from livemask.engine.channel import BufferPolicy, Channel


def take_all(ch: Channel) -> list:
    return list(ch)


def test_drop_oldest_keeps_the_newest_and_counts():
    ch = Channel(2, BufferPolicy.DROP_OLDEST)
    for i in range(5):
        assert ch.put(i)
    assert ch.dropped == 3
    ch.close()  # the end marker takes the oldest item's place: one more drop
    assert take_all(ch) == [4] and ch.dropped == 4


def test_drop_newest_keeps_what_waits_and_counts():
    ch = Channel(2, BufferPolicy.DROP_NEWEST)
    assert [ch.put(i) for i in range(4)] == [True, True, False, False]
    assert ch.dropped == 2
    ch.close()  # the end marker still gets in, in the oldest item's place
    assert take_all(ch) == [1] and ch.dropped == 3


def test_block_loses_nothing_with_a_slow_consumer():
    ch = Channel(1, BufferPolicy.BLOCK)

    def produce():
        for i in range(20):
            ch.put(i)
        ch.close()

    t = threading.Thread(target=produce)
    t.start()
    got = []
    for item in ch:
        got.append(item)
        time.sleep(0.002)
    t.join()
    assert got == list(range(20)) and ch.dropped == 0


def test_block_gives_up_when_stopping_and_the_end_still_gets_through():
    stop = threading.Event()
    ch = Channel(1, BufferPolicy.BLOCK, stop)
    ch.put("a")
    stop.set()
    started = time.monotonic()
    assert ch.put("b") is False and time.monotonic() - started < 1.0
    ch.close()
    assert ch.get(timeout=0.1) is None and ch.ended


def test_error_on_the_end_marker_reaches_the_consumer_once():
    ch = Channel(2)
    ch.put(1)
    ch.close(ValueError("broken"))
    assert ch.get() == 1
    with pytest.raises(ValueError, match="broken"):
        ch.get()
    assert ch.get() is None  # after the end: always None


def test_get_times_out_and_drain_empties():
    ch = Channel(3)
    with pytest.raises(queue.Empty):
        ch.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        ch.get_nowait()
    for i in range(3):
        ch.put(i)
    assert ch._queue.full() and ch.drain() == 3 and ch._queue.qsize() == 0

"""Signals of a run: SIGINT, SIGTERM and SIGHUP stop it once; later ones never cut its outputs short."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """SIGINT/SIGTERM/SIGHUP set the stop event (first time); the run then finishes its outputs.

    A second signal while the outputs are being finished (two Ctrl-C within 50 ms, a terminal
    that sends SIGHUP then SIGTERM) is ignored, so the summary and the video index are always written.
    """

    def __init__(self, stop_event: threading.Event):
        self.stop_event = stop_event
        self.signal: int | None = None
        self.ignored = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum, _frame) -> None:
        if self.signal is not None:
            self.ignored += 1  # already stopping: finishing the outputs must not be cut short
            return
        self.signal = signum
        self.stop_event.set()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            # once stopped by a signal, a late repeat (the second of two Ctrl-C) must not turn the finished
            # run into a traceback or a kill: it keeps being ignored until the process exits
            signal.signal(sig, self._late if self.signal is not None else handler)

    def _late(self, _signum, _frame) -> None:
        self.ignored += 1

    def reason(self) -> str | None:
        """The signal's name once one arrived (the summary's ``ended``)."""
        return None if self.signal is None else signal.Signals(self.signal).name

    @property
    def exit_code(self) -> int:
        return 0 if self.signal is None else 128 + int(self.signal)

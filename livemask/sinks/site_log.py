"""The site's own JSON-lines log in a run with several cameras: ``DIR/site.jsonl``.

One ``{"camera": NAME, "state": STATE, "timestamp": T}`` line each time a camera takes a new state
(``connecting``, ``live``, ``reconnecting k/n``, ``ended``, ``failed: reason``), then one
``{"summary": ...}`` line with every camera's part. The cameras' frames go to their own
``DIR/<camera>.jsonl`` (:class:`~livemask.sinks.recording.EventLog`, every line naming its camera).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from livemask.core.errors import OutputError


class SiteLog:
    """Writes state lines as they come (flushed at once: they are rare) and the summary at the end."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.file = self.path.open("w", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot write {self.path} ({err.strerror or err})") from None
        self.lines = 0

    def _write(self, obj: dict) -> None:
        if self.file.closed:
            return
        try:
            self.file.write(json.dumps(obj, separators=(",", ":")) + "\n")
            self.file.flush()
        except OSError as err:
            raise OutputError(f"cannot write {self.path} ({err.strerror or err})") from None
        self.lines += 1

    def state(self, camera: str, state: str) -> None:
        self._write({"camera": camera, "state": state, "timestamp": round(time.time(), 3)})

    def close(self, summary: dict | None = None) -> None:
        if self.file.closed:
            return
        try:
            if summary is not None:
                self._write({"summary": summary})
        finally:
            self.file.close()

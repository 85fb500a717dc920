"""What ``livemask run`` checks before the models load: its outputs, and kiosk mode's combinations.

Each failure is one line and exit 2, and nothing has been written yet.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from livemask.core.errors import ConfigError, OutputError


def _is_stream_device(path: Path) -> bool:
    """A character device or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO): written as a stream, not a file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _local_input(source) -> list[str]:
    """The source as a path to protect, when it is a local file or folder."""
    text = str(source) if source is not None else ""
    if text.startswith("env:"):
        text = os.environ.get(text[4:], "")
    return [text] if text.strip() and os.path.exists(text) else []


def check_outputs(source, output: str | None, events: str | None) -> None:
    """Before any work: an output that is the source or the other output, a folder, under /proc, /sys or
    /dev (a device or pipe such as ``/dev/null`` or ``/dev/stdout`` is allowed for ``--events``), of an
    unknown video type, or in a folder that cannot be created or written, is one OutputError line (exit 2)."""
    from livemask.core.output_paths import check_output_file, prepare_out_dir
    from livemask.sinks.recording import FOURCC

    inputs = _local_input(source)
    given = {"--output": output, "--events": events}
    for flag, path in given.items():
        if path is None:
            continue
        others = {f: p for f, p in given.items() if f != flag}
        resolved = Path(path).expanduser().resolve()
        if flag == "--events" and _is_stream_device(Path(path).expanduser()):
            for item in [*inputs, *(p for p in others.values() if p)]:
                if Path(item).expanduser().resolve() == resolved:
                    raise OutputError(f"{flag} {path}: is also given as an input or output")
            continue
        check_output_file(path, inputs, flag, others)
        if flag == "--output" and resolved.suffix.lower() not in FOURCC:
            raise OutputError(f"{flag} {path}: unsupported video file type (use {', '.join(FOURCC)})")
        if resolved.exists() and not os.access(resolved, os.W_OK):
            raise OutputError(f"{flag} {path}: exists and is not writable")
        prepare_out_dir(resolved.parent, f"{flag} {path}: folder")


def check_kiosk(options, kiosk) -> None:
    """Kiosk mode needs the window, and records video only when ``kiosk.record`` allows it."""
    if not kiosk.enabled:
        return
    if options.headless:
        raise ConfigError("kiosk mode shows a window: it cannot run headless (drop --headless or run.headless)")
    if options.output and not kiosk.record:
        raise ConfigError("kiosk mode does not record video while kiosk.record is false: drop --output "
                          "(run.output) or set kiosk.record=true")

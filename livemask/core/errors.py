"""Error types that reach the user as one line and a non-zero exit status."""

from __future__ import annotations


class LivemaskError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(LivemaskError):
    """A config file or CLI value is wrong (unknown key, bad type, bad value)."""

    exit_code = 2


class ModelFileError(LivemaskError):
    """A model file (classifier or detector) is missing or cannot be loaded."""

    exit_code = 2


class InputImageError(LivemaskError):
    """An image cannot be read or has a layout the pipeline cannot use."""

    exit_code = 1


class SourceError(LivemaskError):
    """A video source cannot be opened or fails while reading."""

    exit_code = 2


class ShapeError(LivemaskError, ValueError):
    """An array does not have the expected shape or dtype."""


class OutputError(LivemaskError):
    """An output failed: a path is unusable (not a folder, is an input, unwritable), a write failed, or a
    sink of a run (video, event log, window, any other) failed, after the others were finished."""

    exit_code = 2


class DisplayError(LivemaskError):
    """No window can be opened: no DISPLAY, or an X server that is not there or refuses the connection."""

    exit_code = 2


class DisplayLost(LivemaskError):
    """``livemask run``'s window lost its X connection (killed client, X server gone); outputs are complete."""

    exit_code = 3
    message = "the window's X connection was lost; the outputs are complete"


class Interrupted(LivemaskError):
    """Ctrl-C / SIGTERM arrived while a blocking step (connecting to a stream) was under way."""

    exit_code = 130


class CameraFailed(LivemaskError):
    """``run`` with several cameras: at least one camera could not be opened or was lost for good; the
    other cameras ran to their end and their outputs are complete."""

    exit_code = 4


def exception_line(err: BaseException, last: bool = False, limit: int = 200, with_type: bool = True) -> str:
    """One line for an unexpected exception: ``Type: message``, where message is the first non-empty line of
    ``str(err)`` (the summary most libraries put first), or with ``last`` the last one (where a library wraps a
    traceback around the cause: Ray's task errors, OpenCV's window errors), cut at ``limit`` characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = (lines[-1] if last else lines[0]) if lines else "no message"
    text = text[:limit]
    return f"{type(err).__name__}: {text}" if with_type else text

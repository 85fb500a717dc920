"""Where outputs go, and writing them so that an input is never replaced and a failed write is never reported.

* :func:`prepare_out_dir` checks an output folder before any work: it must be (or become)
  a writable folder; a file, a path under ``/proc`` or ``/sys``, or a folder that refuses a
  test file is one :class:`~livemask.core.errors.OutputError` line (exit 2).
* :class:`OutputNames` gives every input its own output names: a name that is already
  taken by another output of this run, or that resolves to one of the inputs (same path,
  symlink or hard link), gets a ``-2``, ``-3``... suffix instead.
* :func:`check_output_file` refuses an output *file* that is an input or another output.
* :func:`write_image` and :func:`save_array` write to a temporary name in the same folder
  and rename it into place only when the write succeeded, so a failed write leaves no
  partial file under the reported name; any failure is an OutputError naming the file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from livemask.core.errors import OutputError

_SPECIAL_ROOTS = ("/proc", "/sys", "/dev")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_special(path: Path) -> bool:
    text = str(path)
    return any(text == root or text.startswith(root + "/") for root in _SPECIAL_ROOTS)


def prepare_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is a writable folder; else one OutputError line."""
    path = Path(path)
    resolved = path.expanduser().resolve()
    if _is_special(resolved):
        raise OutputError(f"{flag} {path}: not a place for output files (a kernel/device file system)")
    if resolved.exists() and not resolved.is_dir():
        raise OutputError(f"{flag} {path}: exists and is not a folder")
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{flag} {path}: cannot create folder ({err.strerror or err})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".livemask-probe-", dir=resolved)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{flag} {path}: cannot write in this folder ({err.strerror or err})") from None
    return path


def check_output_file(path: str | Path, inputs: Iterable[str | Path], flag: str,
                      others: dict[str, str | Path] | None = None) -> Path:
    """Refuse an output file that resolves to an input or to another output (``others``: flag -> path)."""
    path = Path(path)
    resolved = path.expanduser().resolve()
    ident = _identity(resolved)
    for item in inputs:
        p = Path(item).expanduser().resolve()
        if p == resolved or (ident is not None and _identity(p) == ident):
            raise OutputError(f"{flag} {path}: is the input {item}; refusing to overwrite it")
    for other_flag, other in (others or {}).items():
        if other is None:
            continue
        q = Path(other).expanduser().resolve()
        if q == resolved or (ident is not None and _identity(q) == ident):
            raise OutputError(f"{flag} {path}: is also given as {other_flag}; they must differ")
    if _is_special(resolved) and str(resolved) != os.devnull:
        raise OutputError(f"{flag} {path}: not a place for output files (a kernel/device file system)")
    if resolved.is_dir():
        raise OutputError(f"{flag} {path}: is a folder, expected a file name")
    return path


class OutputNames:
    """Unique output names in one folder, never the name of an input.

    ``claim(stem, patterns)`` returns one path per pattern (``"{}.png"``, ``"{}_gradcam.npy"``),
    all sharing the first base name ``stem``, ``stem-2``, ``stem-3``... for which no path
    is taken by this run or resolves to an input.
    """

    def __init__(self, out_dir: str | Path, inputs: Iterable[str | Path]):
        self.out_dir = Path(out_dir)
        inputs = [Path(p) for p in inputs]
        self._input_paths = {p.expanduser().resolve() for p in inputs}
        self._input_ids = {i for i in map(_identity, inputs) if i is not None}
        self._taken: set[Path] = set()

    def _free(self, path: Path) -> bool:
        resolved = path.expanduser().resolve()
        if resolved in self._taken or resolved in self._input_paths:
            return False
        ident = _identity(resolved)
        return ident is None or ident not in self._input_ids

    def claim(self, stem: str, patterns: Iterable[str]) -> tuple[Path, ...]:
        patterns = tuple(patterns)
        n = 1
        while True:
            base = stem if n == 1 else f"{stem}-{n}"
            paths = tuple(self.out_dir / pattern.format(base) for pattern in patterns)
            if all(self._free(p) for p in paths):
                self._taken.update(p.expanduser().resolve() for p in paths)
                return paths
            n += 1


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _commit(tmp: Path, path: Path) -> None:
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as err:
        _discard(tmp)
        raise OutputError(f"cannot write {path} ({err.strerror or err})") from None


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink()
    except OSError:
        pass


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Encode ``image`` (format from the suffix) and put it at ``path`` only if every byte was written."""
    import cv2

    path = Path(path)
    try:
        ok, buf = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"cannot write {path} (cannot encode a {path.suffix or 'png'} image)")
    _write_bytes(path, memoryview(buf))
    return path


def save_array(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` to ``path`` through a temporary file; any failure is an OutputError naming the file."""
    path = Path(path)
    _write_atomic(path, lambda fh: np.save(fh, array, allow_pickle=False))
    return path


def _write_bytes(path: Path, data) -> None:
    _write_atomic(path, lambda fh: fh.write(data))


def _write_atomic(path: Path, write) -> None:
    """``write(fh)`` into a temporary file beside ``path``, fsync, rename into place; else an OutputError."""
    try:
        tmp = _temporary(path)
    except OSError as err:
        raise OutputError(f"cannot write {path} ({err.strerror or err})") from None
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except (OSError, ValueError) as err:
        _discard(tmp)
        raise OutputError(f"cannot write {path} ({getattr(err, 'strerror', None) or err})") from None
    _commit(tmp, path)

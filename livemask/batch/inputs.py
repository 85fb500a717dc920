"""What a batch processes: the command line's files, folders and list files, as :class:`BatchInput` items.

* a folder is walked recursively (``imutils.paths.list_files``) for video and image suffixes, in name order;
* a ``.txt`` / ``.lst`` / ``.list`` file lists one path or URL per line (blank lines and ``#`` comments are
  skipped; relative paths are relative to the list file's folder; a listed folder is walked too);
* anything else is one input: a missing or unreadable file is kept, so that its row says why it failed;
* files found by walking a folder that lie inside the batch's own output folder (``--out`` inside an
  input folder) are left out: a run never reads its own or an earlier run's outputs.

Every input gets an output folder name that is unique and stable across runs: the file's stem plus 8 hex
digits of a hash of its absolute path or URL, so ``a/clip.mp4`` and ``b/clip.mp4`` never share a folder
and ``--resume`` finds the same folder again.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from livemask.core.errors import LivemaskError
from livemask.core.images import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class BatchInput:
    """One file or URL to process; ``size`` and ``mtime`` identify the version of a local file."""

    path: str  # absolute path, or the URL as given
    kind: str  # "video" | "image" | "url"
    name: str  # output folder name under --out
    size: int | None = None
    mtime: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("video", "image", "url"):
            raise ValueError(f"BatchInput.kind: expected video, image or url, got {self.kind!r}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"BatchInput.name: not a plain folder name: {self.name!r}")

    @property
    def fingerprint(self) -> dict:
        """What ``--resume`` compares: path, size and modification time (URLs: the URL only)."""
        return {"path": self.path, "size": self.size, "mtime": self.mtime}


def output_name(path: str) -> str:
    """``<stem>-<8 hex digits of the path's hash>``, safe as a folder name."""
    stem = Path(urlparse(path).path if URL_PATTERN.match(path) else path).stem or "input"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:60] or "input"
    return f"{stem}-{hashlib.sha1(path.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def make_input(text: str) -> BatchInput:
    """One input from a path or URL (the file need not exist: it then fails alone when processed)."""
    if URL_PATTERN.match(text):
        return BatchInput(text, "url", output_name(text))
    path = os.path.abspath(text)
    kind = "image" if Path(path).suffix.lower() in IMAGE_SUFFIXES else "video"
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size = mtime = None
    return BatchInput(path, kind, output_name(path), size, mtime)


def walk_folder(folder: Path) -> list[str]:
    """Video and image files under ``folder`` (recursive), sorted."""
    from imutils.paths import list_files

    return sorted(list_files(str(folder), validExts=VIDEO_SUFFIXES + IMAGE_SUFFIXES))


def read_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LivemaskError(f"{path}: cannot read the list of inputs ({err})") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line if URL_PATTERN.match(line) or os.path.isabs(line) else str(path.parent / line))
    return out


def _inside(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def expand_inputs(arguments: list[str], exclude_under: str | Path | None = None) -> list[BatchInput]:
    """The inputs named by the command line, each once (first occurrence wins), in the order given;
    files a folder walk finds under ``exclude_under`` (the output folder) are left out."""
    out: list[BatchInput] = []
    seen: set[str] = set()
    excluded = Path(exclude_under).resolve() if exclude_under is not None else None

    def add(text: str, depth: int = 0) -> None:
        if not URL_PATTERN.match(text):
            p = Path(text)
            if p.is_dir():
                for f in walk_folder(p):
                    if excluded is None or not _inside(f, excluded):
                        add(f, depth)
                return
            if p.suffix.lower() in LIST_SUFFIXES and p.is_file():
                if depth > 4:
                    raise LivemaskError(f"{p}: list files nested more than 4 deep")
                for line in read_list(p):
                    add(line, depth + 1)
                return
        item = make_input(text)
        if item.path not in seen:
            seen.add(item.path)
            out.append(item)

    for arg in arguments:
        add(arg)
    return out

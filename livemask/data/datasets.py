"""Readers for the two data layouts livemask trains and evaluates on.

* Scene sets (PASCAL VOC): ``images/*.jpg`` + ``annotations/*.xml`` with face boxes
  named ``with_mask``, ``without_mask`` or ``mask_weared_incorrect``.
* Class folders: any of ``with_mask/``, ``without_mask/`` and ``mask_weared_incorrect/``
  (one alone is valid), optionally with a ``manifest.csv`` (``file, group, split, status``).
"""

from __future__ import annotations

import csv
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from livemask.core.errors import InputImageError
from livemask.core.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

MAX_LIST_BYTES = 64 << 20  # a list or manifest is text of a few kB; refuse to read gigabytes
MAX_WARNINGS = 20  # warnings logged one by one; the rest are only counted

FOLDER_CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")
# data label (folder or VOC name) -> the model's class name
CLASS_OF_LABEL = {"with_mask": "mask", "without_mask": "no_mask", "mask_weared_incorrect": "mask_incorrect"}


@dataclass(frozen=True)
class SceneImage:
    path: Path
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    names: tuple[str, ...]  # annotation class per box


@dataclass(frozen=True)
class FaceImage:
    path: Path
    label: str  # with_mask | without_mask | mask_weared_incorrect
    group: str
    split: str


@dataclass
class DataReport:
    """What was wrong in the annotations, lists and manifests read, counted for eval's output.

    Every problem is skipped (never a traceback) and counted here; the first
    :data:`MAX_WARNINGS` are also logged, one line each, naming the file and the field.
    """

    files_skipped: int = 0  # annotation files that could not be read at all
    images_skipped: int = 0  # images that could not be read (set by the evaluator)
    boxes_dropped: int = 0  # boxes with a missing, non-numeric, NaN/infinite or empty coordinate
    boxes_clipped: int = 0  # boxes partly outside the image, clipped to it
    lines_skipped: int = 0  # --list lines / manifest rows that are not UTF-8 text or not usable
    warnings: list[str] = field(default_factory=list, repr=False)

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            log.warning("%s", message)
        elif len(self.warnings) == MAX_WARNINGS:
            log.warning("more data warnings are counted, not shown")
        self.warnings.append(message)

    def as_dict(self) -> dict:
        return {"files_skipped": self.files_skipped, "images_skipped": self.images_skipped,
                "boxes_dropped": self.boxes_dropped, "boxes_clipped": self.boxes_clipped,
                "lines_skipped": self.lines_skipped}


def _text_lines(path: Path, what: str, report: DataReport | None) -> list[str]:
    """The lines of a text file; lines that are not UTF-8 (or hold NUL) are skipped and counted."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"{path}: {what} is not a file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_LIST_BYTES + 1)
    except OSError as err:
        raise InputImageError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    if len(data) > MAX_LIST_BYTES:
        raise InputImageError(f"{path}: {what} larger than {MAX_LIST_BYTES >> 20} MiB")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8")
            if "\x00" in line:
                raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        except UnicodeDecodeError:
            if report is not None:
                report.lines_skipped += 1
                report.warn(f"{path} line {number}: not UTF-8 text; skipped")
            continue
        lines.append(line)
    return lines


def is_scene_set(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "annotations").is_dir()


def is_class_folders(root: Path) -> bool:
    """True when at least one of the class folders is there."""
    return any((root / c).is_dir() for c in FOLDER_CLASSES)


def read_list(path: Path, report: DataReport | None = None) -> set[str]:
    """Stems named in a list file, one file name or stem a line (undecodable lines skipped, counted)."""
    lines = _text_lines(Path(path), "list file", report)
    return {Path(line.strip()).stem for line in lines if line.strip()}


def _parse_voc(xml_path: Path, report: DataReport | None = None) -> tuple[str, np.ndarray, tuple[str, ...]]:
    """File name, boxes and names of a VOC file; a box with a bad coordinate is dropped and counted."""
    report = report if report is not None else DataReport()
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise InputImageError(f"{xml_path}: not a VOC annotation ({err})") from None
    except OSError as err:
        raise InputImageError(f"{xml_path}: cannot read ({err.strerror or err})") from None
    boxes, names = [], []
    for index, obj in enumerate(root.iter("object")):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        coords = []
        for k in ("xmin", "ymin", "xmax", "ymax"):
            text = (bb.findtext(k) or "").strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                report.boxes_dropped += 1
                report.warn(f"{xml_path}: object {index} {k} {text[:20]!r} is not a finite number; box dropped")
                break
            coords.append(value)
        else:
            x1, y1, x2, y2 = coords
            if x2 <= x1 or y2 <= y1:
                report.boxes_dropped += 1
                report.warn(f"{xml_path}: object {index} box {coords} is empty; box dropped")
                continue
            boxes.append(coords)
            names.append((obj.findtext("name") or "").strip())
    filename = (root.findtext("filename") or "").strip()
    if not filename or Path(filename).name != filename:  # no folders: the image is in images/
        filename = xml_path.stem + ".jpg"
    return filename, np.asarray(boxes, np.float32).reshape(-1, 4), tuple(names)


def fit_boxes(boxes: np.ndarray, names: tuple[str, ...], width: int, height: int, path: Path,
              report: DataReport | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Boxes clipped to the image (counted); those left empty by clipping are dropped (counted)."""
    if not len(boxes):
        return boxes, names
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    changed = (clipped != boxes).any(axis=1)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    if report is not None:
        report.boxes_clipped += int((changed & keep).sum())
        report.boxes_dropped += int((~keep).sum())
        for i in np.nonzero(~keep)[0]:
            report.warn(f"{path}: box {boxes[i].tolist()} lies outside the {width}x{height} image; dropped")
    return clipped[keep], tuple(n for n, k in zip(names, keep, strict=True) if k)


def load_scenes(root: Path, only: set[str] | None = None, report: DataReport | None = None) -> list[SceneImage]:
    """Scene images with their annotated faces, sorted by file name.

    An annotation that cannot be read (a folder, not XML, unreadable) is skipped with a
    warning and counted in ``report``; so is every box with a bad coordinate.
    """
    report = report if report is not None else DataReport()
    out = []
    for xml_path in sorted((root / "annotations").glob("*.xml")):
        if only is not None and xml_path.stem not in only:
            continue
        if not xml_path.is_file():
            report.files_skipped += 1
            report.warn(f"{xml_path}: not a file; skipped")
            continue
        try:
            filename, boxes, names = _parse_voc(xml_path, report)
        except InputImageError as err:
            report.files_skipped += 1
            report.warn(f"{err}; skipped")
            continue
        image = root / "images" / filename
        if not image.is_file():
            image = root / "images" / (xml_path.stem + ".jpg")
        out.append(SceneImage(image, boxes, names))
    return out


def load_face_folders(root: Path, only: set[str] | None = None, split: str | None = None,
                      report: DataReport | None = None) -> list[FaceImage]:
    """Images of the class folders; with a manifest, its group and split (duplicates dropped).

    Manifest rows that are not UTF-8 or lack a ``file`` are skipped and counted in ``report``.
    """
    manifest = root / "manifest.csv"
    rows: dict[str, dict[str, str]] = {}
    if manifest.is_file():
        try:
            reader = csv.DictReader(_text_lines(manifest, "manifest", report))
            for number, row in enumerate(reader, 2):
                if not isinstance(row.get("file"), str) or not row.get("file"):
                    if report is not None:
                        report.lines_skipped += 1
                        report.warn(f"{manifest} row {number}: no 'file' field; skipped")
                    continue
                if row.get("status", "ok") == "ok":
                    rows[row["file"]] = row
        except csv.Error as err:
            raise InputImageError(f"{manifest}: not a CSV manifest ({err})") from None
    elif split is not None:
        raise InputImageError(f"{root}: --split needs a manifest.csv in the folder")
    out = []
    for label in FOLDER_CLASSES:
        if not (root / label).is_dir():
            continue
        for path in sorted((root / label).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = f"{label}/{path.name}"
            if rows and rel not in rows:
                continue
            row = rows.get(rel, {})
            item = FaceImage(path, label, row.get("group") or path.stem, row.get("split", ""))
            if split is not None and item.split != split:
                continue
            if only is not None and path.stem not in only:
                continue
            out.append(item)
    return out

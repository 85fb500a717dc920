"""Readers for the two data layouts livemask trains and evaluates on.

* Scene sets (PASCAL VOC): ``images/*.jpg`` + ``annotations/*.xml`` with face boxes
  named ``with_mask``, ``without_mask`` or ``mask_weared_incorrect``.
* Class folders: any of ``with_mask/``, ``without_mask/`` and ``mask_weared_incorrect/``
  (one alone is valid), optionally with a ``manifest.csv`` (``file, group, split, status``).
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livemask.core.errors import InputImageError
from livemask.core.images import IMAGE_SUFFIXES

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


def is_scene_set(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "annotations").is_dir()


def is_class_folders(root: Path) -> bool:
    """True when at least one of the class folders is there."""
    return any((root / c).is_dir() for c in FOLDER_CLASSES)


def read_list(path: Path) -> set[str]:
    """Stems named in a list file, one file name or stem a line."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise InputImageError(f"{path}: cannot read list file ({err.strerror})") from None
    return {Path(line.strip()).stem for line in lines if line.strip()}


def _parse_voc(xml_path: Path) -> tuple[str, np.ndarray, tuple[str, ...]]:
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise InputImageError(f"{xml_path}: not a VOC annotation ({err})") from None
    boxes, names = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        boxes.append([float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")])
        names.append((obj.findtext("name") or "").strip())
    filename = root.findtext("filename") or (xml_path.stem + ".jpg")
    return filename, np.asarray(boxes, np.float32).reshape(-1, 4), tuple(names)


def load_scenes(root: Path, only: set[str] | None = None) -> list[SceneImage]:
    """Scene images with their annotated faces, sorted by file name."""
    out = []
    for xml_path in sorted((root / "annotations").glob("*.xml")):
        if only is not None and xml_path.stem not in only:
            continue
        filename, boxes, names = _parse_voc(xml_path)
        image = root / "images" / filename
        if not image.is_file():
            image = root / "images" / (xml_path.stem + ".jpg")
        out.append(SceneImage(image, boxes, names))
    return out


def load_face_folders(root: Path, only: set[str] | None = None, split: str | None = None) -> list[FaceImage]:
    """Images of the class folders; with a manifest, its group and split (duplicates dropped)."""
    manifest = root / "manifest.csv"
    rows: dict[str, dict[str, str]] = {}
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("file") and row.get("status", "ok") == "ok":
                    rows[row["file"]] = row
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

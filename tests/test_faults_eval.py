"""Issue 10 cause 10: eval on malformed annotations, lists and manifests warns, skips, counts; no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import MODEL, ROOT

from livemask.data.datasets import DataReport, _parse_voc, fit_boxes, load_face_folders, load_scenes, read_list

VOC = """<annotation><filename>{name}</filename><size><width>512</width><height>512</height></size>
{objects}</annotation>"""
OBJ = "<object><name>without_mask</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>" \
      "</bndbox></object>"


def _voc(name: str, *boxes) -> str:
    return VOC.format(name=name, objects="".join(OBJ.format(*b) for b in boxes))


@pytest.fixture()
def scenes(tmp_path, astronaut_bgr):
    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    face = (180, 62, 271, 178)  # the astronaut's face in the 512x512 photo
    for stem in ("good", "words", "empty", "nan", "outside"):
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), astronaut_bgr)
    ann = root / "annotations"
    (ann / "good.xml").write_text(_voc("good.jpg", face))
    (ann / "words.xml").write_text(_voc("words.jpg", face, ("ten", 5, 60, 90)))  # non-numeric: dropped
    (ann / "empty.xml").write_text(_voc("empty.jpg", face, ("", "", "", "")))  # empty coordinates: dropped
    (ann / "nan.xml").write_text(_voc("nan.jpg", face, ("nan", 1, 2, 3), (10, 10, 5, 5), ("1e999", 0, 9, 9)))
    # one box partly outside (clipped to a 10x10 corner, too small to count), one wholly outside (dropped)
    (ann / "outside.xml").write_text(_voc("outside.jpg", face, (-50, -50, 10, 10), (700, 700, 800, 800)))
    (ann / "folder.xml").mkdir()  # an annotation path that is a folder: skipped
    (ann / "binary.xml").write_bytes(b"\x00\xff\xfe garbage")  # not XML: skipped
    (ann / "traversal.xml").write_text(_voc("../../etc/passwd", face))  # file name with folders: its own stem
    return root


def test_voc_parsing_drops_and_counts_bad_boxes(scenes):
    report = DataReport()
    _name, boxes, names = _parse_voc(scenes / "annotations" / "nan.xml", report)
    assert len(boxes) == len(names) == 1 and report.boxes_dropped == 3
    assert any("nan.xml: object 1 xmin 'nan' is not a finite number; box dropped" in w for w in report.warnings)
    clipped, kept = fit_boxes(np.array([[180, 62, 271, 600], [700, 700, 800, 800]], np.float32),
                              ("a", "b"), 512, 512, scenes, report)
    assert clipped.tolist() == [[180, 62, 271, 512]] and kept == ("a",)
    assert report.boxes_clipped == 1 and report.boxes_dropped == 4


def test_load_scenes_skips_unreadable_annotations(scenes):
    report = DataReport()
    items = load_scenes(scenes, report=report)
    assert sorted(i.path.name for i in items) == ["empty.jpg", "good.jpg", "nan.jpg", "outside.jpg",
                                                  "traversal.jpg", "words.jpg"]
    assert report.files_skipped == 2
    assert any("folder.xml: not a file; skipped" in w for w in report.warnings)
    assert any("binary.xml: not a VOC annotation" in w for w in report.warnings)


def test_list_and_manifest_with_bad_bytes(tmp_path, astronaut_bgr):
    lst = tmp_path / "list.txt"
    lst.write_bytes(b"good.jpg\n\xff\xfe\xfd\nwords\nbad\x00line\n")
    report = DataReport()
    assert read_list(lst, report) == {"good", "words"} and report.lines_skipped == 2
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 64)
    report = DataReport()
    assert isinstance(read_list(binary, report), set) and report.lines_skipped >= 1  # no traceback
    from livemask.core.errors import InputImageError

    with pytest.raises(InputImageError, match="list file is not a file"):
        read_list(tmp_path, DataReport())
    faces = tmp_path / "faces"
    (faces / "without_mask").mkdir(parents=True)
    for stem in ("p1", "p2"):
        cv2.imwrite(str(faces / "without_mask" / f"{stem}.jpg"), astronaut_bgr)
    (faces / "manifest.csv").write_bytes(b"file,group,split,status\nwithout_mask/p1.jpg,g1,val,ok\n"
                                         b"without_mask/p2.jpg,g\xff2,val,ok\n,,,\n")
    report = DataReport()
    items = load_face_folders(faces, split="val", report=report)
    assert [i.path.name for i in items] == ["p1.jpg"] and report.lines_skipped == 2


def test_eval_cli_reports_counts_and_exits_0(scenes):
    (scenes / "list.txt").write_bytes(b"good\nwords\nempty\nnan\noutside\nfolder\nbinary\n\xff\xfe\n")
    proc = subprocess.run([sys.executable, "-m", "livemask", "eval", str(scenes), "--list", str(scenes / "list.txt"),
                           "--json", "--set", f"classifier.model_path={MODEL}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["data_issues"] == {"files_skipped": 2, "images_skipped": 0, "boxes_dropped": 6,
                                     "boxes_clipped": 1, "lines_skipped": 1}
    assert result["images"] == 5 and result["faces"] == 5  # every image keeps its one good face
    assert result["recall"]["without_mask"] == 1.0

"""The livemask command for still images: image, eval, --version, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT


def livemask(*args, cwd=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "livemask", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def test_version():
    out = livemask("--version")
    assert out.returncode == 0 and out.stdout.startswith("livemask 0.")


def test_image_json_and_annotated_output(tmp_path, astronaut_bgr, classifier):
    good = tmp_path / "in" / "astronaut.jpg"
    good.parent.mkdir()
    cv2.imwrite(str(good), astronaut_bgr)
    blank = tmp_path / "in" / "blank.png"
    cv2.imwrite(str(blank), np.zeros((120, 160, 3), np.uint8))
    out = livemask("image", tmp_path / "in", "--out", tmp_path / "out", "--json")
    assert out.returncode == 0, out.stderr
    records = {json.loads(line)["path"]: json.loads(line) for line in out.stdout.splitlines()}
    faces = records[str(good)]["faces"]
    assert len(faces) == 1 and faces[0]["label"] == "no_mask" and faces[0]["probability"] > 0.8
    assert set(faces[0]) == {"box", "score", "label", "probability", "probabilities"}
    assert set(faces[0]["probabilities"]) == set(classifier.class_names)
    assert abs(sum(faces[0]["probabilities"].values()) - 1) < 1e-3
    assert records[str(blank)]["faces"] == []
    annotated = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    assert annotated.shape == astronaut_bgr.shape and not np.array_equal(annotated, astronaut_bgr)


def test_image_bad_files_are_named_and_the_rest_still_run(tmp_path, astronaut_bgr):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), astronaut_bgr)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    out = livemask("image", text, good, truncated, tmp_path / "missing.png", "--json", "--out", tmp_path / "o")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("livemask: error:")]
    assert f"livemask: error: {text}: not a readable image" in errors
    assert f"livemask: error: {truncated}: not a readable image" in errors
    assert f"livemask: error: {tmp_path / 'missing.png'}: no such file" in errors
    assert "Traceback" not in out.stderr
    assert [json.loads(line)["path"] for line in out.stdout.splitlines()] == [str(good)]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--set", "classifier.model_path=/nope/m.keras", "image", "x.jpg"], 2,
         "livemask: error: model file not found: /nope/m.keras (set by config key 'classifier.model_path')"),
        (["--set", "detector.bogus=1", "image", "x.jpg"], 2,
         "livemask: error: --set: unknown key 'detector.bogus'"),
        (["--set", "detector.name=yunet", "image", "x.jpg"], 2,
         "livemask: error: model file not found: . (set by config key 'detector.model_path')"),
        (["eval", "/no/such/folder"], 1, "livemask: error: /no/such/folder: no such folder"),
        (["image", "x.jpg", "--frobnicate"], 2, "livemask: error: unrecognized arguments: --frobnicate"),
    ],
)
def test_errors_are_one_line_with_status(args, code, message):
    # --set goes after the subcommand name
    if args[0] == "--set":
        args = [args[2], args[0], args[1], *args[3:]]
    out = livemask(*args)
    assert out.returncode == code, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith(message), out.stderr
    assert "Traceback" not in out.stderr and len(lines) <= 2, out.stderr


def test_bad_config_file_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("classifier:\n  modelpath: x.keras\n")
    out = livemask("image", "--config", cfg, "x.jpg")
    assert out.returncode == 2
    expected = (f"livemask: error: {cfg}: unknown key 'classifier.modelpath' "
                "(allowed: batch_sizes, explain_model, model_path, threads)")
    assert out.stderr.strip() == expected


def test_eval_class_folders(tmp_path, astronaut_bgr):
    (tmp_path / "with_mask").mkdir()
    (tmp_path / "without_mask").mkdir()
    cv2.imwrite(str(tmp_path / "without_mask" / "a.jpg"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "without_mask" / "b.jpg"), astronaut_bgr[:, ::-1])
    cv2.imwrite(str(tmp_path / "with_mask" / "blank.jpg"), np.zeros((100, 100, 3), np.uint8))
    out = livemask("eval", tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["images"] == 3 and result["detected"] == pytest.approx(2 / 3, abs=1e-3)
    assert result["class_accuracy"] == {"without_mask": 1.0} and result["accuracy"] == 1.0
    assert result["confusion"]["rows"] == ["without_mask"]
    no_mask = result["confusion"]["columns"].index("no_mask")
    assert result["confusion"]["matrix"][0][no_mask] == 2 and sum(result["confusion"]["matrix"][0]) == 2
    assert 0 <= result["ece"] <= 1
    out = livemask("eval", tmp_path, "--split", "val")
    assert out.returncode == 1 and "--split needs a manifest.csv" in out.stderr


def test_eval_one_class_folder_scores_the_largest_face(tmp_path, astronaut_bgr):
    """One class folder alone is a valid set; a photo is scored by its subject, the largest face."""
    (tmp_path / "without_mask").mkdir()
    small = cv2.resize(astronaut_bgr, (128, 128))
    scene = np.full((700, 900, 3), 90, np.uint8)
    scene[40:552, 40:552] = astronaut_bgr  # the subject
    scene[560:688, 700:828] = small  # a small bystander
    cv2.imwrite(str(tmp_path / "without_mask" / "two.jpg"), scene)
    out = livemask("eval", tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["images"] == 1 and result["detected"] == 1.0
    assert result["class_accuracy"] == {"without_mask": 1.0}
    detector = result["detector"]  # what ran, so two reports can be compared
    assert detector["name"] == "centerface" and detector["precision"] == "int8"  # the default
    assert detector["runtime"] in ("onnxruntime", "opencv") and detector["input_long_side"] == 640
    assert "model_path" not in detector


def test_eval_scene_subset(data_dir, tmp_path):
    names = ["maksssksksss100", "maksssksksss101", "maksssksksss103", "maksssksksss104"]
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    out = livemask("eval", data_dir / "scenes", "--list", tmp_path / "list.txt", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["images"] == 4
    assert set(result) >= {"images", "faces", "recall", "precision", "accuracy", "ms_per_image"}
    assert 0.5 <= result["recall"]["with_mask"] <= 1.0

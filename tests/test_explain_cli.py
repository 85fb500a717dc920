"""``livemask explain IMAGE... [--method] [--out] [--json]`` end to end on real images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from livemask.apps.cli import main
from livemask.explain import words

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mask_classifier.keras"  # as the classifier fixture in conftest.py


@pytest.fixture(scope="module")
def images(tmp_path_factory, astronaut_bgr):
    folder = tmp_path_factory.mktemp("explain_images")
    cv2.imwrite(str(folder / "astronaut.png"), astronaut_bgr)
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 90, np.uint8))  # no face
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main(["explain", *argv, "--set", f"classifier.model_path={MODEL}"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_writes_panels_maps_and_json(capsys, images, tmp_path):
    code, records, _ = _run(capsys, str(images / "astronaut.png"), str(images / "blank.png"),
                            "--method", "all", "--out", str(tmp_path), "--json")
    assert code == 0
    assert [r["path"] for r in records] == [str(images / "astronaut.png"), str(images / "blank.png")]
    astro, blank = records
    assert blank["faces"] == []
    for record in records:
        panel = cv2.imread(record["panel"])
        assert panel is not None and panel.std() > 5  # a real picture, not a blank
    (face,) = astro["faces"]
    # the one face layout (livemask.core.records), plus the explanations
    assert set(face) == {"box", "score", "label", "probability", "probabilities", "explanations"}
    assert face["label"] in face["probabilities"] and face["probability"] == max(face["probabilities"].values())
    assert len(face["box"]) == 4 and 0 < face["score"] <= 1
    assert [e["method"] for e in face["explanations"]] == ["gradcam", "occlusion"]
    for entry in face["explanations"]:
        assert entry["target"] == face["label"]  # default: the predicted class
        assert entry["ms"] > 0
        assert entry["target_probability"] == pytest.approx(face["probability"], abs=1e-4)
        assert entry["target_log_odds"] > -np.log(len(face["probabilities"]) - 1)  # the predicted class
        f = entry["faithfulness"]
        assert set(f) == {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "ratio"}
        assert all(0 <= f[k] <= 1 for k in f if k != "ratio")
        assert f["ratio"] == pytest.approx(f["deletion_auc"] / f["random_deletion_auc"], rel=1e-2, abs=1e-3)
        maps = np.load(entry["map"])
        assert maps.shape == (1, 64, 64) and maps.dtype == np.float32
        assert 0 <= maps.min() and maps.max() <= 1 and maps.max() > 0.5
        assert entry["map_index"] == 0
        # the map in words (livemask.explain.words): the same sentences the panel and the page show
        summary = entry["summary"]
        gain = f["insertion_auc"] - f["random_insertion_auc"]
        assert summary["trust"] == words.trust_of(f["ratio"], gain) != "unscored"
        assert summary["verdict"].startswith("Explains the decision") and "random regions" in summary["verdict"]
        assert (summary["warning"] is not None) == (f["ratio"] >= 1.0 and gain <= 0)
        assert set(summary["regions"]) == set(words.REGIONS)
        assert sum(summary["regions"].values()) == pytest.approx(1.0, abs=0.01)
        top = max(summary["regions"], key=summary["regions"].get)
        assert top in summary["looked_at"] and summary["looked_at"].endswith("of the map).")
    assert (tmp_path / "astronaut_explain.png").is_file()
    assert (tmp_path / "astronaut_gradcam.npy").is_file() and (tmp_path / "astronaut_occlusion.npy").is_file()


def test_explains_another_class_on_request(capsys, images, tmp_path):
    code, (default,), _ = _run(capsys, str(images / "astronaut.png"), "--out", str(tmp_path), "--json")
    label = default["faces"][0]["label"]
    other = next(name for name in default["faces"][0]["probabilities"] if name != label)
    code, (record,), _ = _run(capsys, str(images / "astronaut.png"), "--out", str(tmp_path), "--json",
                              "--target", other)
    assert code == 0
    entry = record["faces"][0]["explanations"][0]
    assert entry["method"] == "gradcam" and entry["target"] == other
    assert entry["target_probability"] == pytest.approx(record["faces"][0]["probabilities"][other], abs=1e-3)
    assert entry["target_log_odds"] < 0  # not the predicted class


def test_bad_image_is_one_line_and_status_1(capsys, images, tmp_path):
    code, records, err = _run(capsys, str(images / "broken.jpg"), str(images / "astronaut.png"),
                              "--out", str(tmp_path), "--json")
    assert code == 1
    assert [r["path"] for r in records] == [str(images / "astronaut.png")]  # the good one is still done
    lines = [line for line in err.splitlines() if line.startswith("livemask: error:")]
    assert len(lines) == 1 and "broken.jpg" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["--target", "helmet"], "helmet"),
    (["--set", "explain.fill=paint"], "explain.fill"),
    (["--set", "explain.patch_size=3"], "explain.patch_size"),
    (["--set", "explain.layer=nope"], "nope"),
])
def test_bad_settings_are_one_line_errors(capsys, images, tmp_path, argv, needle):
    code, _, err = _run(capsys, str(images / "astronaut.png"), "--out", str(tmp_path), *argv)
    assert code in (1, 2)
    assert err.strip().splitlines()[-1].startswith("livemask: error:") and needle in err
    assert "Traceback" not in err

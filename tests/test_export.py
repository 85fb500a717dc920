"""Exported classifiers (ONNX, LiteRT float and int8) against the Keras model, on real face crops.

The exports are made once per module by ``livemask.models.export`` from the committed
model; int8 is calibrated on faces of ../shared/data/faces and checked on other faces of
the same folder (a disjoint, evenly spread sample of files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livemask.core.errors import ModelFileError
from livemask.core.types import Detections

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "mask_classifier.keras"
FLOAT_TOLERANCE = 1e-4  # largest |p_exported - p_keras| for float exports (the bound)
INT8_TOLERANCE = 0.1  # largest |p_int8 - p_keras| on real faces (measured: about 0.03; see docs/performance.md)
INT8_AGREEMENT = 0.99  # share of real faces where int8 and Keras give the same label
TF_MODULES = ("tensorflow", "keras", "tf_keras", "tf2onnx")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def calibration_crops(classifier, detector, data_dir):
    """The faces ``livemask export --quantize int8`` calibrates on by default (CALIBRATION_IMAGES images)."""
    from livemask.models.export import CALIBRATION_IMAGES, face_crops

    return face_crops(data_dir / "faces", detector, classifier.input_size, classifier.spec.crop_margin,
                      CALIBRATION_IMAGES, rule=classifier.spec.crop_rule)


@pytest.fixture(scope="module")
def check_crops(classifier, detector, data_dir):
    """Faces from other files than the calibration ones (picks shifted by half a step)."""
    from livemask.models.export import face_crops

    crops = face_crops(data_dir / "faces", detector, classifier.input_size, classifier.spec.crop_margin, 300,
                       offset=0.5, rule=classifier.spec.crop_rule)
    assert len(crops) >= 250
    return crops


@pytest.fixture(scope="module")
def exports(tmp_path_factory, calibration_crops):
    """{"onnx": path, "tflite": path, "tflite-int8": path} exported from the committed model."""
    from livemask.models.export import export_classifier

    out = tmp_path_factory.mktemp("exports")
    made = {}
    for name, fmt, quantize in (("onnx", "onnx", None), ("tflite", "tflite", None), ("tflite-int8", "tflite", "int8")):
        result = export_classifier(MODEL, fmt, out / f"model-{name}.{fmt}", quantize, calibration_crops)
        assert result.path.is_file() and result.bytes == result.path.stat().st_size
        assert (result.sidecar is not None) == (fmt == "tflite")
        made[name] = result.path
    return made


def _open(path):
    from livemask.models.backends import open_classifier

    return open_classifier(str(path))


def _probs(clf, crops):
    return clf.predict_prepared(clf.prepare(crops))


@pytest.mark.parametrize("name", ["onnx", "tflite"])
def test_float_export_matches_keras_on_real_faces(classifier, exports, check_crops, name):
    exported = _open(exports[name])
    assert exported.kind == name
    assert exported.spec == classifier.spec  # the whole contract travels with the file
    ref, got = _probs(classifier, check_crops), _probs(exported, check_crops)
    assert got.shape == ref.shape == (len(check_crops), len(classifier.class_names))
    assert np.abs(got - ref).max() <= FLOAT_TOLERANCE
    assert np.array_equal(got.argmax(1), ref.argmax(1))


def test_int8_export_agrees_with_keras_on_real_faces(classifier, exports, check_crops):
    exported = _open(exports["tflite-int8"])
    side = json.loads(Path(str(exports["tflite-int8"]) + ".json").read_text())
    assert side["quantization"] == "int8" and side["calibration_faces"] >= 100
    assert exported.spec == classifier.spec
    ref, got = _probs(classifier, check_crops), _probs(exported, check_crops)
    assert np.abs(got - ref).max() <= INT8_TOLERANCE
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= INT8_AGREEMENT
    assert exports["tflite-int8"].stat().st_size < 0.5 * exports["tflite"].stat().st_size


@pytest.mark.parametrize("name", ["onnx", "tflite", "tflite-int8"])
def test_backend_api_matches_keras(classifier, exports, astronaut_bgr, detector, name):
    """classify() on a real photo, padded and unpadded batch sizes, and the empty case."""
    exported = _open(exports[name])
    det = detector.detect(astronaut_bgr)
    assert len(det) >= 1
    ref, got = classifier.classify(astronaut_bgr, det), exported.classify(astronaut_bgr, det)
    assert got.class_names == ref.class_names and np.array_equal(got.class_ids, ref.class_ids)
    many = np.repeat(exported.crops(astronaut_bgr, det)[:1], 37, axis=0)  # 32 + 5: a full and a padded chunk
    together = exported.predict_crops(many).probabilities
    assert np.allclose(together, together[0], atol=1e-6)
    empty = exported.classify(astronaut_bgr, Detections.empty())
    assert empty.probabilities.shape == (0, len(classifier.class_names))


def test_explanations_need_the_keras_model(exports, classifier):
    """Without classifier.explain_model an exported model cannot explain; with it (the default names the
    .keras file the export came from) its ``.model`` is that Keras model."""
    from livemask.models.backends import open_classifier

    exported = open_classifier(str(exports["onnx"]), explain_model=None)
    with pytest.raises(ModelFileError, match="explanations need the Keras model") as info:
        exported.model  # noqa: B018
    assert isinstance(info.value, ImportError)  # the live window shows it as "explanations unavailable (...)"
    keras_model = _open(exports["onnx"]).model
    assert [w.shape for w in keras_model.weights] == [w.shape for w in classifier.model.weights]


def _small_model(path: Path, seed: int) -> Path:
    """A 3-class BGR model with its own scaling, margin and temperature, weights drawn from ``seed``."""
    import keras

    from livemask.models.keras_layers import ClassProbabilities, Preprocess

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = Preprocess(channel_order="BGR", scale=1 / 255, offset=-0.5, crop_margin=0.3, name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3)(x)
    outputs = ClassProbabilities(class_names=("mask", "no_mask", "mask_incorrect"), temperature=1.7)(x)
    keras.Model(inputs, outputs).save(path)
    return path


def test_any_class_count_and_contract(tmp_path):
    """A 3-class BGR model with its own scaling, margin and temperature keeps all of it when exported."""
    from livemask.models.backends.keras_model import MaskClassifier
    from livemask.models.export import export_classifier

    path = _small_model(tmp_path / "three.keras", 3)
    ref = MaskClassifier(str(path))
    crops = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    for fmt in ("onnx", "tflite"):
        result = export_classifier(path, fmt, check_crops=crops)
        assert result.path == tmp_path / f"three.{fmt}" and result.compared_faces == 20
        assert result.max_abs_diff <= FLOAT_TOLERANCE and result.label_agreement == 1.0
        exported = _open(result.path)
        assert exported.spec == ref.spec and exported.class_names == ("mask", "no_mask", "mask_incorrect")
        assert exported.spec.channel_order == "BGR" and exported.spec.temperature == 1.7
        assert np.abs(_probs(exported, crops) - _probs(ref, crops)).max() <= FLOAT_TOLERANCE


def test_an_export_that_computes_something_else_is_not_written(tmp_path, monkeypatch):
    """A conversion fault (here the converter hands back another model's graph, as a wrongly converted layer
    would) is found by the check on the crops: one line, exit 2, and the output path is left as it was."""
    from livemask.models import export

    other = export.export_classifier(_small_model(tmp_path / "other.keras", 4), "onnx",
                                     check_crops=np.zeros((1, 32, 32, 3), np.uint8)).path
    convert = export._export_onnx

    def faulty(clf, tmp, contract):
        made = convert(clf, tmp, contract)
        shutil.copyfile(other, made)
        return made

    monkeypatch.setattr(export, "_export_onnx", faulty)
    source = _small_model(tmp_path / "three.keras", 3)
    out = tmp_path / "three.onnx"
    out.write_bytes(b"an earlier export")
    crops = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(export.ExportError) as err:
        export.export_classifier(source, "onnx", out, check_crops=crops)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    assert "does not compute what three.keras computes: on 20 real face crops" in str(err.value)
    assert out.read_bytes() == b"an earlier export"
    monkeypatch.setattr(export, "_export_onnx", convert)  # the same source, converted right, is written
    assert export.export_classifier(source, "onnx", out, check_crops=crops).max_abs_diff <= FLOAT_TOLERANCE


def _face_photo(data_dir, detector) -> Path:
    from livemask.core.images import read_image

    for path in sorted((data_dir / "faces" / "with_mask").iterdir())[:50]:
        if len(detector.detect(read_image(path))) == 1:
            return path
    pytest.fail("no with_mask photo with exactly one detected face among the first 50")


def _cli_in_subprocess(argv: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``livemask ARGV`` in a fresh interpreter; also returns which TensorFlow modules it imported."""
    probe = tmp_path / "modules.json"
    code = ("import json, sys\nfrom livemask.apps.cli import main\ncode = main(sys.argv[2:])\n"
            f"tf = sorted(m for m in sys.modules if m.split('.')[0] in {TF_MODULES!r})\n"
            "open(sys.argv[1], 'w').write(json.dumps(tf))\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(probe), *argv], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=_env())
    return proc, json.loads(probe.read_text()) if probe.exists() else None


@pytest.mark.parametrize("name", ["onnx", "tflite", "tflite-int8"])
def test_image_end_to_end_without_tensorflow(exports, classifier, detector, data_dir, tmp_path, name):
    from livemask.core.images import read_image

    photo = _face_photo(data_dir, detector)
    proc, tf_modules = _cli_in_subprocess(
        ["image", str(photo), "--json", "--out", str(tmp_path / "out"),
         "--set", f"classifier.model_path={exports[name]}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tf_modules == [], f"TensorFlow imported with a {name} model: {tf_modules[:5]}"
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    image = read_image(photo)
    expected = classifier.classify(image, detector.detect(image))
    assert [f["label"] for f in record["faces"]] == list(expected.labels)
    assert set(record["faces"][0]["probabilities"]) == set(classifier.class_names)
    assert (tmp_path / "out" / (photo.stem + ".png")).is_file()


@pytest.mark.parametrize("name", ["onnx", "tflite", "tflite-int8"])
def test_run_end_to_end_without_tensorflow(exports, classifier, data_dir, tmp_path, name):
    clip = data_dir / "videos" / "masked_woman_laptop.mp4"
    events = tmp_path / "events.jsonl"
    proc, tf_modules = _cli_in_subprocess(
        ["run", "--source", str(clip), "--headless", "--events", str(events), "--output", str(tmp_path / "o.mp4"),
         "--max-frames", "30", "--set", f"classifier.model_path={exports[name]}", "--set", "run.progress=false"],
        tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tf_modules == [], f"TensorFlow imported with a {name} model: {tf_modules[:5]}"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["frames_written"] == 30 and summary["ended"] == "end of source"
    assert set(summary["faces"]) <= set(classifier.class_names)
    assert summary["faces"].get("mask", 0) >= 20  # the one masked face, on most frames
    assert (tmp_path / "o.mp4").stat().st_size > 10_000


def test_keras_model_still_imports_tensorflow_in_image(tmp_path, astronaut_bgr):
    """The other side of the check above: the probe does see TensorFlow when a .keras model is used."""
    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr)
    proc, tf_modules = _cli_in_subprocess(["image", str(photo), "--out", str(tmp_path / "out"),
                                           "--set", f"classifier.model_path={MODEL}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow" in tf_modules and "keras" in tf_modules


# -- bad exported files: one line on stderr, exit 2 ----------------------------------------------------------------
def _bad_files(exports, tmp_path) -> dict[str, tuple[Path, str]]:
    import onnx

    rng = np.random.default_rng(1)
    cases = {}

    def put(name: str, data: bytes, suffix: str) -> Path:
        p = tmp_path / f"{name}{suffix}"
        p.write_bytes(data)
        return p

    noise = rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    cases["random .onnx"] = (put("random", noise, ".onnx"), "not a readable ONNX model")
    cases["random .tflite"] = (put("random", noise, ".tflite"), "not a LiteRT (.tflite) model file")
    tflite_bytes = exports["tflite"].read_bytes()
    cases["tflite named .onnx"] = (put("wrong", tflite_bytes, ".onnx"), "not a readable ONNX model")
    cases["onnx named .tflite"] = (put("wrong", exports["onnx"].read_bytes(), ".tflite"), "not a LiteRT")
    cases["missing sidecar"] = (put("alone", tflite_bytes, ".tflite"), "alone.tflite.json is missing")
    side = json.loads(Path(str(exports["tflite"]) + ".json").read_text())
    other = put("other", tflite_bytes, ".tflite")
    shutil.copy(str(exports["tflite-int8"]) + ".json", str(other) + ".json")
    cases["sidecar of another file"] = (other, "written for another model file")
    wrong = [f"class{i}" for i in range(len(side["class_names"]) + 1)]  # one more name than the model has outputs
    three = put("three", tflite_bytes, ".tflite")
    Path(str(three) + ".json").write_text(json.dumps({**side, "class_names": wrong}))
    cases["class count (tflite)"] = (three, f"outputs but the contract names {len(wrong)} classes")
    garbled = put("garbled", tflite_bytes, ".tflite")
    Path(str(garbled) + ".json").write_text("{not json")
    cases["sidecar not JSON"] = (garbled, "not JSON")
    model = onnx.load(str(exports["onnx"]))
    contract = json.loads(model.metadata_props[0].value)
    model.metadata_props[0].value = json.dumps({**contract, "class_names": wrong})
    onnx.save(model, str(tmp_path / "three.onnx"))
    cases["class count (onnx)"] = (tmp_path / "three.onnx", f"outputs but the contract names {len(wrong)} classes")
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "plain.onnx"))
    cases["onnx without contract"] = (tmp_path / "plain.onnx", "no livemask contract in the ONNX metadata")
    cases["unknown suffix"] = (put("model", b"x", ".pt"), "unknown model type '.pt'")
    return cases


def test_bad_exported_files_are_one_line_exit_2(exports, tmp_path, astronaut_bgr):
    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr)
    for case, (path, message) in _bad_files(exports, tmp_path).items():
        proc = subprocess.run([sys.executable, "-m", "livemask", "image", str(photo), "--out", str(tmp_path / "o"),
                               "--set", f"classifier.model_path={path}"], capture_output=True, text=True,
                              timeout=120, cwd=ROOT, env=_env())
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (case, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("livemask: error: "), (case, proc.stderr)
        assert message in lines[0], (case, lines[0])


def test_explain_with_exported_model_is_one_line_exit_2(exports, tmp_path, astronaut_bgr):
    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr)
    config = tmp_path / "config.yaml"  # no Keras model named for explanations
    config.write_text(f"classifier:\n  model_path: {exports['onnx']}\n  explain_model: null\n")
    proc = subprocess.run([sys.executable, "-m", "livemask", "explain", str(photo), "--out", str(tmp_path / "o"),
                           "--config", str(config)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("livemask: error: explanations need the Keras model")


# -- the export command -------------------------------------------------------------------------------------------
def test_export_command_writes_and_checks(tmp_path, data_dir, capsys):
    from livemask.apps.cli import main

    out = tmp_path / "m.onnx"
    code = main(["export", "--format", "onnx", "--output", str(out), "--calibration", str(data_dir / "faces"),
                 "--calibration-images", "40", "--json", "--set", f"classifier.model_path={MODEL}"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out.is_file() and record["path"] == str(out)
    assert record["compared_faces"] >= 30 and record["max_abs_diff"] <= FLOAT_TOLERANCE
    assert record["label_agreement"] == 1.0 and record["quantization"] == "none"


@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx", "--quantize", "int8"], "--quantize int8 is only available for --format tflite"),
    (["--format", "tflite", "--quantize", "int8", "--calibration", "{empty}"], "no calibration faces"),
    (["--format", "tflite", "--calibration", "{missing}"], "calibration folder not found"),
    (["--format", "onnx", "--output", "{tmp}/m.tflite", "--calibration", "{empty}"], "must end in .onnx"),
    (["--format", "onnx", "--model", "{tmp}/m.onnx"], "export needs a .keras model"),
])
def test_export_command_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    from livemask.apps.cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "m.onnx").write_bytes(b"x")
    values = {"empty": tmp_path / "empty", "missing": tmp_path / "nope", "tmp": tmp_path}
    argv = [a.format(**values) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(MODEL)]
    code = main(["export", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("livemask: error: ") and message in err[0], err


def test_live_window_explain_keys_with_exported_model_say_so(exports, tmp_path):
    """g / o / e in the window: a message on the overlay, the run goes on (no exception)."""
    from livemask.apps.compose import explain_session_factory, load_config
    from livemask.core.types import Frame, FrameResult, Predictions
    from livemask.models.backends import open_classifier
    from livemask.sinks.window import LiveWindow

    exported = open_classifier(str(exports["tflite"]), explain_model=None)
    window = LiveWindow("livemask-test", tmp_path / "snaps", explain=explain_session_factory(load_config(), exported))
    frame = Frame(1, 0.0, np.zeros((48, 64, 3), np.uint8), "test")
    window.result = FrameResult(frame, Detections.empty(), Predictions.empty(exported.class_names))
    for key in "goe":
        assert window.handle_key(ord(key)) is None
        assert window.session is None
        text = " ".join(window.overlay_lines())
        assert text.startswith("explanations unavailable (explanations need the Keras model"), text

"""Issue 10 cause 7: model files that are not what they claim are one line naming the file, exit 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import MODEL, ROOT

from face_detector import CenterFaceDetector, Res10Detector, YuNetDetector
from face_detector.centerface import bundled_model_path
from livemask.core.errors import ConfigError, ModelFileError


@pytest.fixture(scope="module")
def junk(tmp_path_factory):
    d = tmp_path_factory.mktemp("junk")
    (d / "random.onnx").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d / "empty.onnx").write_bytes(b"")
    (d / "text.pbtxt").write_text("node { name: 'x' op: 'Nope' }\n")
    (d / "random.pb").write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return d


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    for part in parts:
        assert part in message, message
    return message


@pytest.mark.parametrize("name", ["random.onnx", "empty.onnx", "random.pb"])
def test_centerface_junk(junk, name):
    with pytest.raises(ModelFileError) as err:
        CenterFaceDetector(model_path=str(junk / name))
    _one_line(err, str(junk / name), "cannot load as a CenterFace (ONNX) model")


def test_centerface_given_another_onnx_network(shared_models):
    with pytest.raises(ModelFileError) as err:
        CenterFaceDetector(model_path=str(shared_models / "yunet.onnx"))
    _one_line(err, "yunet.onnx: loads, but is not a centerface model")


@pytest.mark.parametrize("name", ["random.onnx", "empty.onnx", "random.pb"])
def test_yunet_junk(junk, name):
    with pytest.raises(ModelFileError) as err:
        YuNetDetector(model_path=str(junk / name))
    _one_line(err, str(junk / name), "YuNet")


def test_yunet_given_centerface_and_upscale_zero(shared_models):
    with pytest.raises(ModelFileError) as err:
        YuNetDetector(model_path=str(bundled_model_path()))
    _one_line(err, "centerface.onnx: loads, but is not a yunet model")
    for bad in (0, -1, float("nan")):
        with pytest.raises(ConfigError, match=r"detector.upscale must be in \(0, 8\]"):
            YuNetDetector(model_path=str(shared_models / "yunet.onnx"), upscale=bad)


def test_res10_junk(junk, shared_models):
    cases = [(junk / "random.pb", shared_models / "res10_ssd_uint8.pbtxt"),
             (shared_models / "res10_ssd_uint8.pb", junk / "text.pbtxt"),
             (shared_models / "res10_ssd_uint8.pb", junk / "random.pb"),
             (bundled_model_path(), shared_models / "res10_ssd_uint8.pbtxt")]
    for pb, pbtxt in cases:
        with pytest.raises(ModelFileError) as err:
            Res10Detector(model_path=str(pb), config_path=str(pbtxt))
        _one_line(err, str(pb), "res10")


def test_good_detectors_still_load_and_detect(shared_models, astronaut_bgr):
    for det in (CenterFaceDetector(), YuNetDetector(model_path=str(shared_models / "yunet.onnx")),
                Res10Detector(model_path=str(shared_models / "res10_ssd_uint8.pb"),
                              config_path=str(shared_models / "res10_ssd_uint8.pbtxt"))):
        assert len(det.detect(astronaut_bgr)) >= 1


@pytest.fixture(scope="module")
def bad_classifiers(tmp_path_factory):
    """Small real Keras models with livemask's contract layers, each wrong in one way."""
    from livemask.core.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from livemask.models.keras_layers import ClassProbabilities, Preprocess

    def model(size, dense, names, outputs=1, channels=3):
        inp = keras.Input((size, size, channels))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(Preprocess()(inp)))
        outs = [ClassProbabilities(names, name=f"probs{i}")(keras.layers.Dense(dense)(x)) for i in range(outputs)]
        return keras.Model(inp, outs if outputs > 1 else outs[0])

    d = tmp_path_factory.mktemp("classifiers")
    made = {"no_size": model(None, 2, ["mask", "no_mask"]), "dense3_two_names": model(32, 3, ["mask", "no_mask"]),
            "three_outputs": model(32, 2, ["mask", "no_mask"], outputs=3),
            "grey_input": model(32, 2, ["mask", "no_mask"], channels=1),
            "huge_input": model(50000, 2, ["mask", "no_mask"]), "same_names": model(32, 2, ["mask", "mask"])}
    for name, m in made.items():
        m.save(d / f"{name}.keras")
    (d / "random.keras").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    (d / "text.keras").write_text("not a model")
    (d / "random.h5").write_bytes(bytes(range(256)) * 8)
    return d


@pytest.mark.parametrize("name, expected", [
    ("no_size.keras", "input shape (None, None, None, 3); expected (None, S, S, 3) with a fixed size S"),
    ("dense3_two_names.keras", "3 outputs but 2 class names ['mask', 'no_mask']"),
    ("three_outputs.keras", "3 outputs; expected one (the class probabilities)"),
    ("grey_input.keras", "input shape (None, 32, 32, 1)"),
    ("huge_input.keras", "input size 50000 outside 8..1024"),
    ("same_names.keras", "class names ['mask', 'mask'] must be 2 or more different non-empty names"),
    ("random.keras", "cannot load model"),
    ("text.keras", "cannot load model (not a zip archive, as a .keras file is"),
    ("random.h5", "cannot load model (not an HDF5 file, as a .h5 file is"),
])
def test_classifier_files(bad_classifiers, name, expected):
    from livemask.models.backends.keras_model import MaskClassifier

    with pytest.raises(ModelFileError) as err:
        MaskClassifier(str(bad_classifiers / name))
    assert _one_line(err, expected).startswith(str(bad_classifiers / name) + ":")


def test_cli_bad_models_exit_2_with_one_line(junk, bad_classifiers, tmp_path, astronaut_bgr):
    import cv2

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut_bgr)
    for flags, expected in [
        (["--set", f"detector.model_path={junk / 'random.onnx'}", "--set", f"classifier.model_path={MODEL}"],
         f"livemask: error: {junk / 'random.onnx'}: cannot load as an int8 CenterFace (ONNX) model"),  # the default
        (["--set", f"classifier.model_path={bad_classifiers / 'dense3_two_names.keras'}"],
         f"livemask: error: {bad_classifiers / 'dense3_two_names.keras'}: "),
    ]:
        proc = subprocess.run([sys.executable, "-m", "livemask", "image", str(image), "--out", str(tmp_path / "o"),
                               *flags], capture_output=True, text=True, cwd=ROOT, timeout=240)
        assert proc.returncode == 2
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(expected), proc.stderr

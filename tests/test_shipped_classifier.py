"""The shipped ``models/mask_classifier.onnx`` is the ``.keras`` model next to it, exported.

The default configuration labels faces with the ``.onnx`` file (no TensorFlow) and explains them
with the ``.keras`` file (``classifier.explain_model``); the two must never drift apart: the ONNX
contract records the SHA-256 of the ``.keras`` file it came from, and both give the same classes
and the same probabilities (to 1e-4) on real faces.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import ROOT

from livemask.core.errors import ModelFileError

ONNX = ROOT / "models" / "mask_classifier.onnx"
KERAS = ROOT / "models" / "mask_classifier.keras"
FACES_PER_CLASS = 8  # real photos per class folder of ../shared/data/faces, when present


@pytest.fixture(scope="module")
def onnx_classifier():
    pytest.importorskip("onnxruntime")
    from livemask.models.backends import open_classifier

    return open_classifier(str(ONNX), explain_model=str(KERAS))


def _real_crops(classifier, detector, astronaut_bgr, request) -> np.ndarray:
    """Face crops cut as inference cuts them: the astronaut, plus photos of every class when the data is here."""
    from livemask.core.images import read_image

    images = [astronaut_bgr]
    try:
        faces = request.getfixturevalue("data_dir") / "faces"
        for folder in sorted(p for p in faces.iterdir() if p.is_dir()):
            images += [read_image(p) for p in sorted(folder.iterdir())[:FACES_PER_CLASS]]
    except pytest.skip.Exception:
        pass
    crops = [classifier.crops(img, detector.detect(img)) for img in images]
    return np.concatenate([c for c in crops if len(c)])


def test_shipped_onnx_is_small_and_records_the_keras_file_it_came_from(onnx_classifier):
    assert ONNX.stat().st_size < 2_000_000  # 547 KiB; the .keras file is 1.8 MB
    contract = onnx_classifier.contract
    assert contract["exported_from"] == KERAS.name
    assert contract["exported_from_sha256"] == hashlib.sha256(KERAS.read_bytes()).hexdigest(), (
        "models/mask_classifier.keras changed: export it again with "
        "'livemask export --format onnx --model models/mask_classifier.keras'")


def test_shipped_onnx_gives_the_keras_models_classes_and_probabilities(onnx_classifier, classifier, detector,
                                                                       astronaut_bgr, request):
    assert onnx_classifier.class_names == classifier.class_names
    assert onnx_classifier.spec == classifier.spec
    crops = _real_crops(classifier, detector, astronaut_bgr, request)
    x = classifier.prepare(crops)
    ref, got = classifier.predict_prepared(x), onnx_classifier.predict_prepared(x)
    assert len(crops) >= 1 and ref.shape == got.shape == (len(crops), len(classifier.class_names))
    assert float(np.abs(ref - got).max()) <= 1e-4
    assert (ref.argmax(1) == got.argmax(1)).all()


def test_explanations_of_the_exported_model_load_its_keras_file_on_first_use(onnx_classifier, classifier):
    """``.model`` loads ``classifier.explain_model`` once, when first asked (TensorFlow is imported then)."""
    model = onnx_classifier.model
    assert onnx_classifier.keras_loaded and onnx_classifier.model is model
    assert [w.shape for w in model.weights] == [w.shape for w in classifier.model.weights]


def test_explain_model_that_is_not_the_source_of_the_export_is_refused(tmp_path):
    """A .keras file other than the one the .onnx was exported from (one byte differs) is a one-line
    error, raised where explanations start, never a silent mismatch."""
    pytest.importorskip("onnxruntime")
    import zipfile

    from livemask.models.backends import open_classifier

    other = tmp_path / "other.keras"
    with zipfile.ZipFile(KERAS) as src, zipfile.ZipFile(other, "w") as dst:
        for item in src.infolist():  # the same model in an archive with a comment: other bytes
            dst.writestr(item, src.read(item.filename))
        dst.comment = b"not the exported one"
    assert other.read_bytes() != KERAS.read_bytes()
    clf = open_classifier(str(ONNX), explain_model=str(other))
    with pytest.raises(ModelFileError, match=r"other.keras: not the Keras model mask_classifier.onnx was exported "
                                             r"from .*livemask export") as err:
        clf.model  # noqa: B018
    assert "\n" not in str(err.value)


def test_exported_model_without_explain_model_or_with_another_file_type_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    from livemask.models.backends import open_classifier
    from livemask.models.backends.exported import ExplanationsNeedKeras

    clf = open_classifier(str(ONNX), explain_model=None)
    assert clf.class_names  # labels work without it
    with pytest.raises(ExplanationsNeedKeras, match=r"classifier.explain_model is not set"):
        clf.model  # noqa: B018
    copy = tmp_path / "m.onnx"
    shutil.copyfile(ONNX, copy)
    with pytest.raises(ModelFileError, match=r"classifier.explain_model: expected a .keras or .h5 file"):
        open_classifier(str(ONNX), explain_model=str(copy))


def test_default_config_labels_with_the_onnx_file_and_explains_with_the_keras_file():
    from livemask.apps import compose

    config = compose.load_config()
    assert config["classifier"]["model_path"].endswith("mask_classifier.onnx")
    assert config["classifier"]["explain_model"].endswith("mask_classifier.keras")
    assert config["detector"]["precision"] == "int8"
    meta = json.loads(json.dumps(config["classifier"]))  # plain data
    assert set(meta) >= {"model_path", "batch_sizes", "explain_model"}


def test_window_explanations_with_the_default_config_use_the_keras_file(onnx_classifier, astronaut_bgr, detector):
    """The window's g / o / e keys with the default (exported) classifier: the session is made with the Keras
    model named by classifier.explain_model, and its maps explain the face the .onnx labelled."""
    from livemask.apps.compose import explain_session_factory, explain_suite, load_config

    config = load_config()
    session = explain_session_factory(config, onnx_classifier)()
    assert session is not None and onnx_classifier.keras_loaded
    crops = onnx_classifier.crops(astronaut_bgr, detector.detect(astronaut_bgr))
    (result,) = explain_suite(config, onnx_classifier).explain(crops, "gradcam", faithfulness=False)
    assert result.class_names[int(result.targets[0])] == "no_mask"
    assert result.maps.shape[0] == 1 and float(result.maps[0].max()) > 0

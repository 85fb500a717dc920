"""The trained mask classifier: contract stored in the model, batching, real faces."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
from conftest import MODEL

from livemask.core.errors import InputImageError, ModelFileError
from livemask.core.types import Detections
from livemask.models.backends.keras_model import MaskClassifier
from livemask.models.crop import crop_face
from livemask.models.keras_layers import read_spec


def test_model_file_is_small_and_loads_in_safe_mode():
    import keras

    assert MODEL.stat().st_size <= 5 * 1024 * 1024
    model = keras.saving.load_model(MODEL, safe_mode=True, compile=False)
    spec = read_spec(model)
    assert spec.class_names == ("mask", "no_mask", "mask_incorrect")
    assert spec.channel_order == "RGB"
    assert spec.input_size == model.input_shape[1]


def test_public_api_matches_hand_preparation(classifier, detector, astronaut_bgr):
    """BGR frame through detect + classify == crop, BGR->RGB and model call done by hand."""
    det = detector.detect(astronaut_bgr)
    api = classifier.classify(astronaut_bgr, det)
    spec = classifier.spec
    crop = crop_face(astronaut_bgr, det.boxes[0], spec.input_size, spec.crop_margin)
    by_hand = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None]
    expected = classifier.model(by_hand, training=False).numpy()
    np.testing.assert_allclose(api.probabilities, expected, atol=1e-5)
    assert api.labels == ["no_mask"]
    assert api.confidences[0] > 0.8


def test_colour_order_matters(classifier, detector, astronaut_bgr):
    """Feeding BGR where the model wants RGB gives a different answer (so the conversion is live)."""
    det = detector.detect(astronaut_bgr)
    crops = classifier.crops(astronaut_bgr, det)
    right = classifier.predict_prepared(classifier.prepare(crops))
    wrong = classifier.predict_prepared(crops.astype(np.float32))
    assert not np.allclose(right, wrong, atol=1e-3)


def test_batches_are_padded_without_changing_results(classifier, detector, astronaut_bgr):
    det = detector.detect(astronaut_bgr)
    crop = classifier.crops(astronaut_bgr, det)[0]
    variants = np.stack([crop, crop[:, ::-1], (crop * 0.7).astype(np.uint8), np.roll(crop, 3, axis=0),
                         np.roll(crop, -3, axis=1)])
    many = np.concatenate([variants] * 8)[:37]  # 37 > largest batch: chunked and padded
    together = classifier.predict_crops(many).probabilities
    alone = np.concatenate([classifier.predict_crops(c[None]).probabilities for c in many])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_input_gives_empty_predictions_of_same_shape(classifier, astronaut_bgr):
    pred = classifier.classify(astronaut_bgr, Detections.empty())
    assert pred.probabilities.shape == (0, 3) and pred.labels == [] and pred.class_names == classifier.class_names


def test_empty_crop_is_a_clear_error(classifier, astronaut_bgr):
    bad = Detections(np.array([[600, 600, 700, 700]], np.float32), np.ones(1, np.float32))
    with pytest.raises(InputImageError, match="empty crop: box .* lies outside the 512x512 frame"):
        classifier.classify(astronaut_bgr, bad)
    flat = Detections(np.array([[10, 10, 10, 40]], np.float32), np.ones(1, np.float32))
    with pytest.raises(InputImageError, match="empty crop: box .* has no area"):
        classifier.classify(astronaut_bgr, flat)


def test_model_file_errors_are_one_line(tmp_path):
    expected = r"model file not found: .*nothing.keras \(set by config key 'classifier.model_path'\)"
    with pytest.raises(ModelFileError, match=expected):
        MaskClassifier(str(tmp_path / "nothing.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="bad.keras: cannot load model") as info:
        MaskClassifier(str(bad))
    assert "\n" not in str(info.value)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="expected a .keras or .h5 file"):
        MaskClassifier(str(other))


def test_model_without_livemask_contract_is_refused(tmp_path):
    import keras

    plain = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    path = tmp_path / "plain.keras"
    plain.save(path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ModelFileError, match="lacks livemask's Preprocess/ClassProbabilities layers"):
        MaskClassifier(str(path))


def test_right_on_real_val_faces(classifier, detector, data_dir):
    """Val-split faces (never trained on): at least 95% of a fixed sample right, per class."""
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders

    items = load_face_folders(data_dir / "faces", split="val")
    for label, expected in (("with_mask", "mask"), ("without_mask", "no_mask")):
        sample = [it for it in items if it.label == label][::12][:25]
        right = seen = 0
        for item in sample:
            image = read_image(item.path)
            det = detector.detect(image)
            if not len(det):
                continue
            seen += 1
            right += classifier.classify(image, det[int(np.argmax(det.scores))]).labels[0] == expected
        assert seen >= 18, f"{label}: only {seen} faces found"
        assert right / seen >= 0.95, f"{label}: {right}/{seen} right"

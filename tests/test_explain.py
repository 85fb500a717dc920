"""Correctness of the explainers on the committed classifier and real faces."""

from __future__ import annotations

import numpy as np
import pytest

from livemask.explain.methods import (
    ExplainSuite,
    Explanations,
    GradCAM,
    Occlusion,
    find_conv_layer,
    normalise,
    resize_maps,
    resolve_targets,
)

VAL_FACES_PER_CLASS = 12  # small mixed set for the per-face checks; the lower-half check uses all


@pytest.fixture(scope="module")
def astronaut_crops(astronaut_bgr, detector, classifier):
    detections = detector.detect(astronaut_bgr)
    assert len(detections) == 1, "the skimage astronaut photo has one face"
    return classifier.crops(astronaut_bgr, detections)


@pytest.fixture(scope="module")
def gradcam(classifier):
    return GradCAM(classifier)


@pytest.fixture(scope="module")
def occlusion(classifier):
    return Occlusion(classifier)


def _val_crops(data_dir, detector, classifier, label: str, limit: int | None = None) -> np.ndarray:
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders

    items = [f for f in load_face_folders(data_dir / "faces", split="val") if f.label == label]
    crops = []
    for item in items[:limit] if limit else items:
        image = read_image(item.path)
        det = detector.detect(image)
        if len(det):
            crops.append(classifier.crops(image, det[int(np.argmax(det.scores))])[0])
    return np.stack(crops)


@pytest.fixture(scope="module")
def val_masked_crops(data_dir, detector, classifier):
    return _val_crops(data_dir, detector, classifier, "with_mask")


@pytest.fixture(scope="module")
def mixed_crops(request, detector, classifier, astronaut_crops):
    """Masked and unmasked validation faces plus the astronaut (both classes present); without
    ../shared/data the astronaut and its mirror image only."""
    try:
        data_dir = request.getfixturevalue("data_dir")
    except pytest.skip.Exception:
        return np.concatenate([astronaut_crops, astronaut_crops[:, :, ::-1]])
    masked = request.getfixturevalue("val_masked_crops")[:VAL_FACES_PER_CLASS]
    unmasked = _val_crops(data_dir, detector, classifier, "without_mask", VAL_FACES_PER_CLASS)
    return np.concatenate([masked, unmasked, astronaut_crops])


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# -- targets -------------------------------------------------------------------------------

def test_default_target_is_each_faces_predicted_class(classifier, gradcam, occlusion, mixed_crops):
    predictions = classifier.predict_crops(mixed_crops)
    if len(mixed_crops) > 2:  # with the validation faces
        assert len(set(predictions.labels)) == 2, "the mixed set must contain both predicted classes"
    for explainer in (gradcam, occlusion):
        result = explainer.explain(mixed_crops, faithfulness=False)
        assert result.target_names == predictions.labels
        np.testing.assert_allclose(result.probabilities, predictions.probabilities, atol=1e-5)


def test_targets_are_resolved_by_name_through_the_models_class_order(classifier):
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    names = classifier.class_names
    assert list(resolve_targets(None, probs, names)) == [0, 1]
    assert list(resolve_targets(names[1], probs, names)) == [names.index(names[1])] * 2
    assert list(resolve_targets([names[1], names[0]], probs, names)) == [1, 0]
    assert list(resolve_targets(lambda p, n: [n[-1]] * len(p), probs, names)) == [1, 1]
    from livemask.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a class of the model"):
        resolve_targets("helmet", probs, names)
    with pytest.raises(ConfigError, match="expected class names"):
        resolve_targets([1, 0], probs, names)  # a literal index is refused
    with pytest.raises(ConfigError, match="3 class names for 2 faces"):
        resolve_targets([names[0]] * 3, probs, names)


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_explaining_the_other_class_gives_a_different_map(classifier, gradcam, occlusion, mixed_crops, method):
    explainer = gradcam if method == "gradcam" else occlusion
    own = explainer.explain(mixed_crops, faithfulness=False)
    other_names = [n for n in classifier.class_names if n != own.target_names[0]]
    other = explainer.explain(mixed_crops, targets=lambda p, names: [
        next(n for n in names if n != names[i]) for i in p.argmax(axis=1)], faithfulness=False)
    assert (other.targets != own.targets).all() and other_names
    # two classes: the other class's evidence is exactly the negated evidence of the predicted one
    np.testing.assert_allclose(other.raw, -own.raw, atol=1e-4 * max(1.0, float(np.abs(own.raw).max())))
    differs = [float(np.abs(a - b).mean()) for a, b in zip(own.maps, other.maps, strict=True)]
    assert min(differs) > 0.05, differs


# -- agreement with an independent implementation -----------------------------------------------

def test_gradcam_agrees_with_tf_keras_vis(classifier, mixed_crops):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    ours = GradCAM(classifier, layer="block2_relu1").explain(mixed_crops, faithfulness=False)
    x = classifier.prepare(mixed_crops)
    vis = Gradcam(classifier.model, clone=False)
    checked = 0
    for i in range(len(x)):
        if ours.raw[i].max() <= 0:  # nothing positive to compare (the map is all zero in both)
            continue
        # the softmax probability: for two classes its gradient is a positive multiple of our log-odds one
        theirs_raw = vis(CategoricalScore([int(ours.targets[i])]), x[i:i + 1], penultimate_layer="block2_relu1",
                         seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)[0]
        theirs = vis(CategoricalScore([int(ours.targets[i])]), x[i:i + 1], penultimate_layer="block2_relu1",
                     seek_penultimate_conv_layer=False)[0]
        assert _pearson(np.maximum(ours.raw[i], 0), theirs_raw) >= 0.99  # the Grad-CAM itself, at the layer
        # at crop size each library keeps its own bilinear convention (cv2 pixel centres vs scipy's
        # corner-aligned zoom), which costs a few hundredths of r on an 8x8 map
        assert _pearson(ours.maps[i], theirs) >= 0.95
        checked += 1
    assert checked >= len(x) // 2


# -- occlusion ------------------------------------------------------------------------------

def _occlusion_loop(classifier, x: np.ndarray, target: int, patch: int, stride: int, fill_value: float) -> np.ndarray:
    """Reference: one model call per patch position, no batching, no shared code."""
    model, s = classifier.model, x.shape[0]
    base = float(model(x[None], training=False).numpy()[0, target])
    total = np.zeros((s, s), np.float64)
    count = np.zeros((s, s), np.float64)
    starts = list(range(0, s - patch + 1, stride))
    if starts[-1] != s - patch:
        starts.append(s - patch)
    for top in starts:
        for left in starts:
            copy = x.copy()
            copy[top:top + patch, left:left + patch] = fill_value
            drop = base - float(model(copy[None], training=False).numpy()[0, target])
            total[top:top + patch, left:left + patch] += drop
            count[top:top + patch, left:left + patch] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


@pytest.mark.parametrize(("patch_fraction", "stride_fraction"), [(0.125, 0.125), (0.25, 0.1875)])
def test_batched_occlusion_equals_a_per_patch_loop(classifier, mixed_crops, patch_fraction, stride_fraction):
    explainer = Occlusion(classifier, patch_fraction=patch_fraction, stride_fraction=stride_fraction)
    crops = mixed_crops[[0, -1]]
    result = explainer.explain(crops, faithfulness=False)
    x = classifier.prepare(crops)
    grey = classifier.spec.pixel_for(0.0)
    for i in range(len(crops)):
        expected = _occlusion_loop(classifier, x[i], int(result.targets[i]), explainer.patch, explainer.stride, grey)
        np.testing.assert_allclose(result.raw[i], expected, atol=1e-5)
    assert np.abs(result.raw).max() > 1e-4, "occlusion changed nothing: the check would be vacuous"


def test_occlusion_fill_is_the_models_own_mid_grey(classifier, occlusion, astronaut_crops):
    x = classifier.prepare(astronaut_crops)
    fill = occlusion.fill_values(x)
    preprocess = classifier.model.get_layer("preprocess")
    np.testing.assert_allclose(preprocess(fill).numpy(), 0.0, atol=1e-6)  # the middle of the [-1, 1] range
    blurred = Occlusion(classifier, fill="blur").fill_values(x)
    assert blurred.shape == x.shape and 0 < np.abs(blurred - x).mean() < 40


# -- sanity checks --------------------------------------------------------------------------

def test_model_randomisation_changes_the_gradcam_map(classifier, mixed_crops, tmp_path):
    """Adebayo et al. (2018): a map that survives re-initialising the weights explains nothing."""
    import keras
    from scipy.stats import spearmanr

    from livemask.models.classifier import MaskClassifier

    keras.utils.set_random_seed(123)
    random_model = keras.models.clone_model(classifier.model)  # same architecture, fresh initial weights
    path = tmp_path / "random.keras"
    random_model.save(path)
    randomised = MaskClassifier(str(path))
    trained = GradCAM(classifier).explain(mixed_crops, faithfulness=False)
    random = GradCAM(randomised).explain(mixed_crops, faithfulness=False)
    rhos = []
    for a, b in zip(trained.maps, random.maps, strict=True):
        rho = spearmanr(a.ravel(), b.ravel()).statistic
        rhos.append(0.0 if np.isnan(rho) else float(rho))  # a constant map has no rank order at all
    assert np.median(rhos) < 0.5, rhos
    assert not np.array_equal(classifier.model.get_weights()[1], random_model.get_weights()[1])


def test_the_callers_model_is_never_changed(classifier, astronaut_crops):
    model = classifier.model
    weights = [w.copy() for w in model.get_weights()]
    config = model.get_config()
    layers = [(layer.name, layer.trainable, getattr(layer, "activation", None)) for layer in model.layers]
    x = classifier.prepare(astronaut_crops)
    before = model(x, training=False).numpy()
    suite = ExplainSuite(classifier)
    suite.explain(astronaut_crops, "all")
    assert model.get_config() == config
    assert [(la.name, la.trainable, getattr(la, "activation", None)) for la in model.layers] == layers
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    np.testing.assert_array_equal(model(x, training=False).numpy(), before)
    assert len(model.outputs) == 1


def test_gradcam_layer_is_found_automatically_or_named(classifier):
    assert find_conv_layer(classifier.model).name == "block2_relu1"
    assert GradCAM(classifier, layer="block1_relu1").explain_prepared(
        np.full((1, 64, 64, 3), 100, np.float32), faithfulness=False).raw.shape == (1, 16, 16)
    from livemask.core.errors import ConfigError

    with pytest.raises(ConfigError, match="no layer 'nope'"):
        GradCAM(classifier, layer="nope")
    with pytest.raises(ConfigError, match="is not"):
        GradCAM(classifier, layer="logits")


# -- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_maps_are_float32_in_unit_range_at_crop_size(classifier, astronaut_crops, method):
    suite = ExplainSuite(classifier)
    (result,) = suite.explain(astronaut_crops, method)
    s = classifier.input_size
    assert isinstance(result, Explanations) and result.method == method
    assert result.maps.shape == (1, s, s) and result.maps.dtype == np.float32
    assert 0.0 <= result.maps.min() and result.maps.max() <= 1.0
    assert result.maps.max() == pytest.approx(1.0, abs=1e-4)  # a real face has some evidence
    assert np.isfinite(result.raw).all()
    f = result.faithfulness
    assert f.curves.shape == (1, suite.explainers[method].faithfulness_steps + 1)
    # nothing deleted yet: the first point is the target's probability on the unchanged crop
    assert f.curves[0, 0] == pytest.approx(float(result.target_probabilities[0]), abs=1e-5)
    assert 0.0 <= f.deletion_auc[0] <= 1.0 and 0.0 <= f.random_auc[0] <= 1.0
    assert result.ms_per_face > 0


def test_normalise_keeps_an_all_zero_map_finite():
    maps = normalise(np.stack([np.zeros((8, 8)), -np.ones((8, 8)), np.arange(64.0).reshape(8, 8) * 1e-9]))
    assert maps.dtype == np.float32 and np.isfinite(maps).all()
    assert maps[0].max() == 0 and maps[1].max() == 0
    assert maps[2].max() == pytest.approx(1.0, abs=1e-3)  # tiny but real evidence is not flattened by the epsilon
    assert resize_maps(np.ones((2, 8, 8), np.float32), 64).shape == (2, 64, 64)


def test_empty_batch_gives_results_of_the_same_shape(classifier):
    suite = ExplainSuite(classifier)
    s = classifier.input_size
    results = suite.explain(np.zeros((0, s, s, 3), np.uint8), "all")
    assert [r.method for r in results] == ["gradcam", "occlusion"]
    for r in results:
        assert r.maps.shape == (0, s, s) and r.raw.shape[0] == 0 and r.targets.shape == (0,)
        assert r.faithfulness.curves.shape[0] == 0 and r.faithfulness.deletion_auc.shape == (0,)
    panel = suite.render(np.zeros((0, s, s, 3), np.uint8), results, "empty")
    assert panel.ndim == 3 and panel.std() > 0


def test_panel_shows_every_face(classifier, mixed_crops):
    suite = ExplainSuite(classifier, faithfulness_steps=4)
    crops = np.concatenate([mixed_crops] * 5)[:5]  # five faces with or without ../shared/data
    results = suite.explain(crops, "all")
    panel = suite.render(crops, results, "five faces")
    tile = suite.renderer.tile
    assert panel.dtype == np.uint8 and panel.shape[0] > 4 * tile and panel.shape[1] > 2 * 3 * tile  # wraps
    single = suite.render(crops[:1], [r[0] for r in results], "one face")
    assert single.shape[0] < tile * 2 and single.std() > 20


# -- faithfulness and plausibility on real data --------------------------------------------------

def test_gradcam_is_more_faithful_than_a_random_order(classifier, gradcam, mixed_crops):
    result = gradcam.explain(mixed_crops)
    ratio = result.faithfulness.ratio
    assert np.median(ratio) < 1.0, ratio


@pytest.mark.data
def test_masked_faces_called_mask_are_explained_by_the_lower_half(classifier, gradcam, occlusion,
                                                                   val_masked_crops, record_property):
    """Plausibility: for masked faces the model calls mask, most map mass lies on the lower half."""
    mask_id = classifier.spec.class_index("mask")
    called_mask = classifier.predict_crops(val_masked_crops).class_ids == mask_id
    crops = val_masked_crops[called_mask]
    half = classifier.input_size // 2
    shares, counts = {}, {}
    # occlusion (64 model calls per face) on every second face keeps the test short
    for explainer, faces in ((gradcam, crops), (occlusion, crops[::2])):
        maps = explainer.explain(faces, faithfulness=False).maps
        lower = maps[:, half:].sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)
        shares[explainer.method] = float((lower > 0.5).mean())
        counts[explainer.method] = len(faces)
    record_property("lower_half_share", shares)
    print(f"\nlower-half mass, val masked faces called mask ({len(crops)} of {len(val_masked_crops)}): "
          + ", ".join(f"{k} {v:.1%} of {counts[k]}" for k, v in shares.items()))
    assert len(crops) >= 100
    assert shares["gradcam"] >= 0.8, shares  # the target
    # occlusion misses the 80% target with the committed model (about 72%): p(mask) is saturated
    # (median 0.99999) and one 8x8 patch rarely dents it, while a flat patch over a mask still looks
    # like a mask; it stays above chance, and this guards against regressions below that
    assert shares["occlusion"] >= 0.6, shares

"""Correctness of the explainers on the committed classifier and real faces."""

from __future__ import annotations

import numpy as np
import pytest

from livemask.explain import faithfulness as faith
from livemask.explain.base import SKIN_BAND, Explanations, normalise, resize_maps, resolve_targets
from livemask.explain.gradcam import GradCAM, find_conv_layer
from livemask.explain.occlusion import Occlusion, patch_starts
from livemask.explain.scores import log_odds
from livemask.explain.suite import ExplainSuite

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
        assert {"mask", "no_mask"} <= set(predictions.labels), "the mixed set must contain both main classes"
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
    assert list(resolve_targets(lambda p, n: [n[-1]] * len(p), probs, names)) == [len(names) - 1] * 2
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
    names = classifier.class_names
    for shift in range(1, len(names)):  # every other class of the model, for every face
        other = explainer.explain(mixed_crops, targets=lambda p, n, k=shift: [
            n[(int(i) + k) % len(n)] for i in p.argmax(axis=1)], faithfulness=False)
        assert (other.targets != own.targets).all()
        # the raw logits' margin: log p * T are the raw logits up to a shift per face, which the margin ignores
        expected = log_odds(np.log(other.probabilities) * classifier.spec.temperature, other.targets)
        np.testing.assert_allclose(other.log_odds, expected, rtol=1e-3, atol=1e-2)
        if len(names) == 2:
            # two classes: the other class's log-odds is the negated log-odds of the predicted one,
            # so its evidence is exactly the negated evidence
            np.testing.assert_allclose(other.raw, -own.raw, atol=1e-4 * max(1.0, float(np.abs(own.raw).max())))
        differs = [float(np.abs(a - b).mean()) for a, b in zip(own.maps, other.maps, strict=True)]
        assert np.median(differs) > 0.05, differs


def test_log_odds_is_the_margin_of_the_raw_logits_and_probabilities_are_the_models(classifier, gradcam,
                                                                                  mixed_crops):
    x = classifier.prepare(mixed_crops)
    logits = gradcam.scorer.logits(x)
    np.testing.assert_allclose(gradcam.scorer.probabilities(logits), classifier.predict_prepared(x), atol=1e-5)
    t = logits.argmax(axis=1)
    z = logits.astype(np.float64)
    others = np.log(np.exp(z).sum(axis=1) - np.exp(z[np.arange(len(z)), t]))
    np.testing.assert_allclose(log_odds(logits, t), z[np.arange(len(z)), t] - others, rtol=1e-4, atol=1e-3)
    # softmax of the raw logits (temperature 1): the margin is log(p / (1 - p))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = p[np.arange(len(z)), t] / p.sum(axis=1)
    unsaturated = p < 0.999
    np.testing.assert_allclose(log_odds(logits, t)[unsaturated], np.log(p / (1 - p))[unsaturated], atol=1e-3)


# -- agreement with an independent implementation -----------------------------------------------

@pytest.mark.xfail(strict=True, reason=(
    "the committed v4 (three-class) model at its Grad-CAM layer block2_relu0: at layer resolution "
    "r >= 0.99 holds, at crop size r = 0.89 < 0.95 on the first face (v3: 0.88; the libraries' bilinear "
    "conventions: cv2's pixel centres vs scipy's corner-aligned zoom); known issue, see docs/known-issues.md"))
def test_gradcam_agrees_with_tf_keras_vis(classifier, mixed_crops):
    import keras
    import tensorflow as tf
    from tf_keras_vis.gradcam import Gradcam

    ours = GradCAM(classifier).explain(mixed_crops, faithfulness=False)
    layer = find_conv_layer(classifier.model).name
    x = classifier.prepare(mixed_crops)
    # tf-keras-vis on the model's own logits layer, with the same log-odds score written out here
    logits_model = keras.Model(classifier.model.inputs, classifier.model.get_layer("logits").output)
    vis = Gradcam(logits_model, clone=False)
    c = len(classifier.class_names)
    checked = 0
    for i in range(len(x)):
        if ours.raw[i].max() <= 0:  # nothing positive to compare (the map is all zero in both)
            continue
        t = int(ours.targets[i])
        rest = [j for j in range(c) if j != t]

        def score(out, t=t, rest=rest):
            return out[:, t] - tf.reduce_logsumexp(tf.gather(out, rest, axis=1), axis=1)

        theirs_raw = vis(score, x[i:i + 1], penultimate_layer=layer, seek_penultimate_conv_layer=False,
                         expand_cam=False, normalize_cam=False)[0]
        theirs = vis(score, x[i:i + 1], penultimate_layer=layer, seek_penultimate_conv_layer=False)[0]
        assert _pearson(np.maximum(ours.raw[i], 0), theirs_raw) >= 0.99  # the Grad-CAM itself, at the layer
        # at crop size each library keeps its own bilinear convention (cv2 pixel centres vs scipy's
        # corner-aligned zoom), which costs a few hundredths of r on an 8x8 map
        assert _pearson(ours.maps[i], theirs) >= 0.95
        checked += 1
    assert checked >= len(x) // 2


# -- occlusion ------------------------------------------------------------------------------

def _occlusion_loop(classifier, x: np.ndarray, target: int, patch: int, stride: int, fill: np.ndarray) -> np.ndarray:
    """Reference: one model call per patch position on the model's ``logits`` layer, no shared code."""
    import keras

    model = keras.Model(classifier.model.inputs, classifier.model.get_layer("logits").output)

    def margin(img):
        z = model(img[None], training=False).numpy()[0].astype(np.float64)
        return z[target] - np.log(np.exp(np.delete(z, target)).sum())

    base, s = margin(x), x.shape[0]
    total = np.zeros((s, s), np.float64)
    count = np.zeros((s, s), np.float64)
    starts = list(range(0, s - patch + 1, stride))
    if starts[-1] != s - patch:
        starts.append(s - patch)
    for top in starts:
        for left in starts:
            copy = x.copy()
            copy[top:top + patch, left:left + patch] = fill[top:top + patch, left:left + patch]
            total[top:top + patch, left:left + patch] += base - margin(copy)
            count[top:top + patch, left:left + patch] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


@pytest.mark.parametrize(("patch_fraction", "stride_fraction", "fill"),
                         [(0.125, 0.125, "grey"), (0.25, 0.125, "blur"), (0.25, 0.1875, "grey"),
                          (0.125, 0.125, "skin")])
def test_batched_occlusion_equals_a_per_patch_loop(classifier, mixed_crops, patch_fraction, stride_fraction, fill):
    import cv2

    explainer = Occlusion(classifier, patch_fraction=patch_fraction, stride_fraction=stride_fraction, fill=fill)
    crops = mixed_crops[[0, -1]]
    result = explainer.explain(crops, faithfulness=False)
    x = classifier.prepare(crops)
    for i in range(len(crops)):
        if fill == "grey":
            filled = np.full_like(x[i], classifier.spec.pixel_for(0.0))
        elif fill == "skin":
            filled = np.full_like(x[i], 0.0) + _forehead_median(x[i])
        else:
            filled = cv2.GaussianBlur(x[i], (0, 0), sigmaX=explainer.blur_sigma, borderType=cv2.BORDER_REFLECT)
        expected = _occlusion_loop(classifier, x[i], int(result.targets[i]), explainer.patch, explainer.stride, filled)
        np.testing.assert_allclose(result.raw[i], expected, atol=2e-3 * max(1.0, float(np.abs(expected).max())))
    assert np.abs(result.raw).max() > 1e-2, "occlusion changed nothing: the check would be vacuous"
    assert patch_starts(64, 16, 8)[-1] == 48 and patch_starts(64, 16, 12) == [0, 12, 24, 36, 48]


def _forehead_median(x: np.ndarray) -> np.ndarray:
    """The skin fill's colour for one model input (S, S, 3), computed here from SKIN_BAND's fractions."""
    (r0, r1), (c0, c1) = SKIN_BAND
    s = x.shape[0]
    return np.median(x[round(s * r0):round(s * r1), round(s * c0):round(s * c1)].reshape(-1, 3), axis=0)


def test_occlusion_fill_is_the_models_own_mid_grey_a_blur_or_the_forehead_colour(classifier, astronaut_crops):
    x = classifier.prepare(np.concatenate([astronaut_crops, astronaut_crops[:, ::-1]]))
    fill = Occlusion(classifier, fill="grey").fill_values(x)
    preprocess = classifier.model.get_layer("preprocess")
    np.testing.assert_allclose(preprocess(fill).numpy(), 0.0, atol=1e-6)  # the middle of the [-1, 1] range
    blurred = Occlusion(classifier, fill="blur").fill_values(x)
    assert blurred.shape == x.shape and 0 < np.abs(blurred - x).mean() < 40
    skin = Occlusion(classifier, fill="skin").fill_values(x)
    assert skin.shape == x.shape and skin.dtype == x.dtype
    for i in range(len(x)):  # one flat colour per face: its forehead band's median
        np.testing.assert_allclose(skin[i], np.broadcast_to(_forehead_median(x[i]), x[i].shape))
    assert np.abs(skin[0, 0, 0] - skin[1, 0, 0]).max() > 1, "an upside-down face has another 'forehead'"
    assert Occlusion(classifier, fill="skin").fill_values(x[:0]).shape == (0, *x.shape[1:])


def test_a_mask_filled_with_skin_reads_less_like_a_mask_than_a_blurred_one(classifier, val_masked_crops):
    """Why the skin fill exists: blurring the lower half of a masked face keeps much of the mask's
    evidence, painting it over with the face's own skin colour removes more of it."""
    if "mask" not in classifier.class_names:
        pytest.skip("the model has no 'mask' class")
    mask_id = classifier.spec.class_index("mask")
    crops = val_masked_crops[classifier.predict_crops(val_masked_crops).class_ids == mask_id]
    x = classifier.prepare(crops)
    half = classifier.input_size // 2
    scorer = Occlusion(classifier).scorer
    targets = np.full(len(x), mask_id)
    drops = {}
    for fill in ("blur", "skin"):
        filled = x.copy()
        filled[:, half:] = Occlusion(classifier, fill=fill).fill_values(x)[:, half:]
        drops[fill] = scorer.scores(x, targets) - scorer.scores(filled, targets)
    more = float(np.mean(drops["skin"] > drops["blur"]))
    print(f"\nlower half filled, mask log-odds drop (median): blur {np.median(drops['blur']):.2f}, "
          f"skin {np.median(drops['skin']):.2f}; skin drops more on {more:.0%} of {len(x)} faces")
    assert len(x) >= 100
    assert np.median(drops["skin"]) > np.median(drops["blur"]) and more > 0.5


# -- sanity checks --------------------------------------------------------------------------

def test_model_randomisation_changes_the_gradcam_map(classifier, mixed_crops, tmp_path):
    """Adebayo et al. (2018): a map that survives re-initialising the weights explains nothing."""
    import keras
    from scipy.stats import spearmanr

    from livemask.models.backends.keras_model import MaskClassifier

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
    import keras

    model = classifier.model
    found = find_conv_layer(model)
    spatial = [la for la in model.layers if len(getattr(la.output, "shape", ())) == 4 and la.output.shape[1] > 1]
    convs = [la for la in model.layers if isinstance(la, (keras.layers.Conv2D, keras.layers.SeparableConv2D))]
    last_conv = model.layers.index(convs[-1])
    assert found is [la for la in spatial if model.layers.index(la) < last_conv][-1]  # what feeds the last conv
    assert found is not spatial[-1] and found.output.shape[1:3] == spatial[-1].output.shape[1:3]
    earlier = next(la for la in spatial if la.output.shape[1] > found.output.shape[1] and "relu" in la.name)
    s = classifier.input_size
    assert GradCAM(classifier, layer=earlier.name).explain_prepared(
        np.full((1, s, s, 3), 100, np.float32), faithfulness=False).raw.shape == (1, *earlier.output.shape[1:3])
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
    k = suite.explainers[method].faithfulness_steps
    for curve in (f.deletion, f.insertion, f.random_deletion, f.random_insertion):
        assert curve.shape == (1, k + 1) and 0.0 <= curve.min() and curve.max() <= 1.0
    # nothing deleted yet: the unchanged crop's log-odds, which is 1 on the normalised scale
    assert f.unoccluded[0] == pytest.approx(float(result.log_odds[0]), abs=1e-3)
    assert f.deletion[0, 0] == 1.0 and f.insertion[0, -1] == 1.0
    # everything deleted = nothing inserted: the same baseline image
    assert f.deletion[0, -1] == f.insertion[0, 0] == f.random_deletion[0, -1]
    np.testing.assert_array_equal(f.random_insertion, f.random_deletion[:, ::-1])
    for name in faith.FIELDS[:4]:
        assert 0.0 <= getattr(f, name)[0] <= 1.0
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
        assert r.faithfulness.deletion.shape[0] == 0 and r.faithfulness.deletion_auc.shape == (0,)
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
    r = suite.renderer  # one row: the crop, its maps and their captions (the map in words)
    assert single.shape[0] == r.TITLE_H + r.row_size(2)[1] < 3 * tile and single.std() > 20


# -- faithfulness and plausibility on real data --------------------------------------------------

def test_faithfulness_normalisation_when_the_baseline_scores_higher():
    """A score the baseline raises (s_base > s0): the unit is MIN_DROP, nothing flips sign."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, (3, 16, 16, 3)).astype(np.float32)
    fill = np.full_like(x, 200.0)
    importance = x.mean(axis=3)

    def score(copies, targets):  # a stand-in model: brighter = more of the class
        return copies.mean(axis=(1, 2, 3)) / 20.0

    f = faith.curves(score, x, fill, importance, np.zeros(3, np.int64), steps=8)
    assert (f.baseline > f.unoccluded).all()
    np.testing.assert_allclose(f.zero, f.unoccluded - faith.MIN_DROP, atol=1e-5)
    for name in faith.FIELDS:
        assert np.isfinite(getattr(f, name)).all()
    assert (f.deletion[:, 0] == 1).all() and (f.deletion[:, -1] == 1).all()  # clipped at the crop's own score
    f2 = faith.curves(score, x, np.zeros_like(x), importance, np.zeros(3, np.int64), steps=8)
    # deleting the brightest pixels first lowers this score faster than a random order
    assert (f2.ratio < 1).all() and (f2.insertion_auc > f2.random_insertion_auc).all()
    f3 = faith.curves(score, x, np.zeros_like(x), -importance, np.zeros(3, np.int64), steps=8)
    assert (f3.ratio > 1).all()  # the reversed map is worse than random


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_maps_are_more_faithful_than_a_random_order(classifier, gradcam, occlusion, mixed_crops, method):
    explainer = gradcam if method == "gradcam" else occlusion
    result = explainer.explain(mixed_crops)
    f = result.faithfulness
    assert np.median(f.ratio) < 1.0, f.ratio
    # the same maps read backwards (least important first) must score worse than the maps
    x = classifier.prepare(mixed_crops)
    reversed_ = explainer.score(x, -resize_maps(result.raw, classifier.input_size), result.targets)
    assert np.median(reversed_.deletion_auc - f.deletion_auc) > 0
    assert np.median(f.insertion_auc - reversed_.insertion_auc) > 0


def test_faithfulness_does_not_depend_on_the_batch(classifier, gradcam, mixed_crops):
    both = gradcam.explain(mixed_crops[:3])
    one = gradcam.explain(mixed_crops[2:3])
    for name in faith.FIELDS:
        assert getattr(both.faithfulness, name)[2] == pytest.approx(float(getattr(one.faithfulness, name)[0]),
                                                                   abs=1e-4)


@pytest.mark.data
def test_masked_faces_called_mask_are_explained_by_the_lower_half(classifier, gradcam, val_masked_crops,
                                                                   record_property):
    """Plausibility: for masked faces the model calls mask, most Grad-CAM mass lies on the lower half.

    Occlusion is not held to this: on the log-odds, hiding the eyes lowers p(mask) more than hiding
    the mask (a blurred or grey patch over a mask still looks like a mask), so its maps put most mass
    on the lower half for only about half of these faces; benchmarks/bench_explain.py reports it."""
    if "mask" not in classifier.class_names:
        pytest.skip("the model has no 'mask' class")
    mask_id = classifier.spec.class_index("mask")
    called_mask = classifier.predict_crops(val_masked_crops).class_ids == mask_id
    crops = val_masked_crops[called_mask]
    half = classifier.input_size // 2
    maps = gradcam.explain(crops, faithfulness=False).maps
    lower = maps[:, half:].sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-12)
    share = float((lower > 0.5).mean())
    record_property("lower_half_share", share)
    print(f"\nGrad-CAM lower-half mass, val masked faces called mask: {share:.1%} of {len(crops)}")
    assert len(crops) >= 100
    assert share >= 0.8  # the target

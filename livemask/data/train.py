"""``livemask train``: build face crops with the inference detector and crop rule, then train.

Face photos: the detector runs on every image and its best face is cut with the same
crop function inference uses. Scene images: faces are cut from their annotation boxes
with the same margin rule. Splits follow the manifest's ``group`` (faces) and a fixed
hash of the image name (scenes), never single files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from livemask.core.errors import ConfigError, InputImageError
from livemask.core.images import read_image
from livemask.core.params import Range, check_fields
from livemask.data.datasets import is_class_folders, load_face_folders, load_scenes, read_list
from livemask.models.crop import DEFAULT_MARGIN, crop_face

log = logging.getLogger(__name__)

CLASS_NAMES = ("mask", "no_mask", "mask_incorrect")
# annotation / folder name -> class index
LABELS = {"with_mask": 0, "without_mask": 1, "mask_weared_incorrect": 2}
WIDE = 1.5  # stored crops are this much wider than the model's crop, room for scale/shift jitter
SCENE_HOLDOUT_PERCENT = 20
CALIB_PERCENT = 10  # faces-train groups kept out of training to fit the temperature
SMALL_FACE_PX = (12, 32)  # scene faces in this size range get SMALL_FACE_WEIGHT in the loss
SMALL_FACE_WEIGHT = 2.0
TRAIN_PARTS = ("faces-train", "scenes-train", "extra-train")
OCCLUDED_P = 0.35  # chance that an epoch sees a face's occluded copy instead of the face


def _hash_percent(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % 100


def scene_is_holdout(stem: str) -> bool:
    """A fixed, reproducible 20% of scenes/ images held out from classifier training."""
    return _hash_percent(stem) < SCENE_HOLDOUT_PERCENT


def group_is_calibration(group: str) -> bool:
    """A fixed 10% of faces-train groups used only to fit the temperature."""
    return _hash_percent("calib:" + group) < CALIB_PERCENT


def scene_images(data: Path):
    """(folder name, part, scene) of every annotated scene image under ``data``: scenes/ split into a fixed
    scenes-train and scenes-holdout, scenes_extra/ into extra-train and extra-val by its val.txt."""
    for name in ("scenes", "scenes_extra"):
        root = data / name
        if not root.is_dir():
            continue
        val = read_list(root / "val.txt") if (root / "val.txt").is_file() else set()
        for scene in load_scenes(root):
            if name == "scenes":
                part = "scenes-holdout" if scene_is_holdout(scene.path.stem) else "scenes-train"
            else:
                part = "extra-val" if scene.path.stem in val else "extra-train"
            yield name, part, scene


@dataclass
class CropSet:
    wide: np.ndarray  # (N, W, W, 3) uint8 BGR, WIDE x the model's crop, cut by the crop rule
    base: np.ndarray  # (N, S, S, 3) uint8 BGR, exactly the inference crop
    labels: np.ndarray  # (N,) int64 class index
    part: np.ndarray  # (N,) str: faces-train/-calib/-val, scenes-train/-holdout, extra-train/-val
    size: np.ndarray  # (N,) float32 face size (shorter box side) in source pixels
    source: np.ndarray  # (N,) str: the faces/ source (manifest prefix) or the scene set
    # the aligned rule only (None for box crops):
    aligned: np.ndarray | None = None  # (N,) bool: aligned by the landmarks (False: the box fallback)
    landmarks: np.ndarray | None = None  # (N, 5, 2) float32 landmarks in pixels of the wide crop (NaN: none)
    box_base: np.ndarray | None = None  # (N, S, S, 3) the box-rule crop of the same face, to compare with v3
    fallback: np.ndarray | None = None  # (N,) str: why the box fallback was used ('' when aligned)

    def arrays(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


def _face_row(image, box, landmarks, size: int, margin: float, rule: str) -> tuple:
    """(wide crop, base crop, aligned, landmarks in the wide crop, box-rule base crop, fallback reason)."""
    from livemask.models.crop import crop_face_by_rule, plausible_landmarks

    wide, m, aligned = crop_face_by_rule(image, box, landmarks, round(size * WIDE), (1 + margin) * WIDE - 1, rule)
    # the same decision for both crops: the checks do not depend on the margin
    base = crop_face_by_rule(image, box, landmarks, size, margin, rule)[0]
    lm = np.full((5, 2), np.nan, np.float32) if landmarks is None else (
        np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)
    reason = "" if aligned else (plausible_landmarks(box, landmarks) or "fit")
    return wide, base, aligned, lm, crop_face(image, box, size, margin), reason


def build_crops(data: Path, detector, size: int, margin: float = DEFAULT_MARGIN, rule: str = "box") -> CropSet:
    """Cut every usable face of ``data`` (faces/, scenes/ and scenes_extra/ below it) by ``rule``.

    Scene faces are cut from their annotation boxes; with the ``aligned`` rule the detector also runs on
    the scene image and a detection that overlaps an annotation box (IoU >= 0.4) lends it its landmarks.
    """
    from livemask.core.geometry import greedy_match, iou_matrix

    wide_size = round(size * WIDE)
    wide_margin = (1 + margin) * WIDE - 1
    rows: list[tuple] = []
    skipped = 0
    faces_root = data / "faces"
    if not is_class_folders(faces_root):
        raise ConfigError(f"{faces_root}: expected with_mask/, without_mask/ or mask_weared_incorrect/ folders")
    items = load_face_folders(faces_root)
    t0 = time.monotonic()

    def row(image, box, landmarks):
        if rule == "box":
            return (crop_face(image, box, wide_size, wide_margin), crop_face(image, box, size, margin))
        return _face_row(image, box, landmarks, size, margin, rule)

    for k, item in enumerate(items):
        try:
            image = read_image(item.path)
        except InputImageError as err:
            log.warning("%s", err)
            continue
        det = detector.detect(image)
        if not len(det):
            skipped += 1
            continue
        # the photo's subject: the largest face (a bystander can score higher)
        i = det.largest()
        box = det.boxes[i]
        if item.split == "val":
            part = "faces-val"
        else:
            part = "faces-calib" if group_is_calibration(item.group) else "faces-train"
        rows.append((*row(image, box, det.landmarks[i]), LABELS[item.label], part,
                     float((box[2:] - box[:2]).min()), item.path.stem.split("_")[0]))
        if k % 1000 == 0:
            log.info("faces: %d/%d (%.0f s)", k, len(items), time.monotonic() - t0)
    log.info("faces: %d cropped, %d without a detected face (left out)", len(rows), skipped)
    for name, part, scene in scene_images(data):
        image = read_image(scene.path)
        marks = np.full((len(scene.boxes), 5, 2), np.nan, np.float32)
        if rule != "box" and len(scene.boxes):
            det = detector.detect(image)
            for a, b in greedy_match(iou_matrix(scene.boxes, det.boxes), 0.4):
                marks[a] = det.landmarks[b]
        for box, label, lm in zip(scene.boxes, scene.names, marks):
            if label not in LABELS or (box[2:] - box[:2]).min() < 4:
                continue
            rows.append((*row(image, box, lm), LABELS[label], part, float((box[2:] - box[:2]).min()), name))
    log.info("scenes done (%.0f s)", time.monotonic() - t0)
    cols = list(zip(*rows))
    if rule == "box":
        wide, base, labels, part, sizes, source = cols
        return CropSet(np.stack(wide), np.stack(base), np.asarray(labels, np.int64), np.asarray(part),
                       np.asarray(sizes, np.float32), np.asarray(source))
    wide, base, aligned, lms, box_base, reason, labels, part, sizes, source = cols
    return CropSet(np.stack(wide), np.stack(base), np.asarray(labels, np.int64), np.asarray(part),
                   np.asarray(sizes, np.float32), np.asarray(source), np.asarray(aligned, bool),
                   np.stack(lms).astype(np.float32), np.stack(box_base), np.asarray(reason))


def crop_signature(detector, size: int, rule: str = "box", margin: float = DEFAULT_MARGIN) -> str:
    """Short hash of what the crops depend on: detector settings, crop size, margin, crop rule and splits."""
    # the runtime (ONNX Runtime or OpenCV) is left out: both give the same outputs to about 1e-5; the
    # precision counts only when it is not the network's own float32 (so caches made before it existed stay valid)
    settings = {k: v for k, v in detector.settings().items()
                if k != "runtime" and not (k == "precision" and v == "float32")}
    text = (f"v3{type(detector).__name__}{settings}{size}{margin}{WIDE}{SCENE_HOLDOUT_PERCENT}"
            f"{CALIB_PERCENT}{sorted(LABELS.items())}")
    if rule != "box":  # box caches keep their old names
        from livemask.models import crop

        text += f"{rule}{crop.TEMPLATE.tolist()}{crop.MAX_OUTSIDE}{crop.EYE_DISTANCE}{crop.MAX_ROLL_DEG}" \
                f"{crop.MIN_NOSE_DROP}{crop.MAX_RESIDUAL}{crop.SCALE_RANGE}"
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def build_model(size: int = 64, margin: float = DEFAULT_MARGIN, seed: int = 0,
                class_names: tuple[str, ...] = CLASS_NAMES, filters: tuple[int, int, int] = (64, 128, 256),
                crop_rule: str = "box"):
    """A small separable-convolution CNN; Grad-CAM explains the output of the last block's first convolution."""
    import keras
    from keras import layers

    from livemask.models.keras_layers import ClassProbabilities, Preprocess

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="face_rgb")
    x = Preprocess(channel_order="RGB", scale=1 / 127.5, offset=-1.0, crop_margin=margin, crop_rule=crop_rule,
                   name="preprocess")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, width in enumerate(filters):
        for j in range(2):
            x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"block{i}_conv{j}")(x)
            x = layers.BatchNormalization(name=f"block{i}_bn{j}")(x)
            x = layers.ReLU(name=f"block{i}_relu{j}")(x)
        if i < 2:
            x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    x = layers.Dense(len(class_names), name="logits")(x)
    outputs = ClassProbabilities(class_names=class_names, name="probabilities")(x)
    return keras.Model(inputs, outputs, name="livemask_mask_classifier")


def _augment_fn(size: int):
    """tf.data map function: wide BGR crop -> jittered model-ready RGB float crop.

    Besides geometry and photometric jitter, it simulates what real photos get wrong:
    unusual mask colours and black masks (hue, saturation and darkness of the lower face,
    masked classes only), pixelated faces (mosaic), turned heads (perspective warps that
    squeeze one side), and faces cut by the frame edge (a black band, as ``crop_face`` pads).
    """
    import tensorflow as tf

    inner = 1.0 / WIDE
    fsize = float(size)
    rows = tf.reshape(tf.linspace(0.0, 1.0, size), [size, 1, 1])
    lower = tf.clip_by_value((rows - 0.45) / 0.15, 0.0, 1.0)  # 0 above 45% of the height, 1 below 60%

    def chance(p):
        return tf.random.uniform([]) < p

    def recolour_lower(img):
        x = img / 255.0
        x = tf.image.adjust_hue(x, tf.random.uniform([], -0.5, 0.5))
        x = tf.image.adjust_saturation(x, tf.random.uniform([], 0.3, 2.0))
        x = tf.cond(chance(0.3), lambda: x * tf.random.uniform([], 0.15, 0.6), lambda: x)  # dark/black masks
        return lower * x * 255.0 + (1 - lower) * img

    def mosaic(img):
        k = tf.random.uniform([], 6, 18, dtype=tf.int32)
        small = tf.image.resize(img, [k, k], method="area")
        return tf.image.resize(small, [size, size], method="nearest")

    def edge_cut(img):
        cut = tf.cast(tf.random.uniform([], 0.08, 0.35) * fsize, tf.int32)
        keep = tf.sequence_mask(size - cut, size, dtype=tf.float32)  # 1 for kept columns
        keep = tf.cond(chance(0.5), lambda: keep, lambda: tf.reverse(keep, [0]))
        vertical = chance(0.5)
        m = tf.cond(vertical, lambda: tf.reshape(keep, [size, 1, 1]), lambda: tf.reshape(keep, [1, size, 1]))
        return img * m

    def augment(wide, label, weight, alt=None):
        if alt is not None:  # an occluded copy of the same face (livemask.data.occluders), same label
            wide = tf.cond(chance(OCCLUDED_P), lambda: alt, lambda: wide)
        img = tf.reverse(tf.cast(wide, tf.float32), axis=[-1])  # BGR -> RGB, as MaskClassifier.prepare
        # scale and shift jitter: a box around the centre crop
        scale = inner * tf.random.uniform([], 0.85, 1.2)
        cy = 0.5 + tf.random.uniform([], -0.08, 0.08) * inner
        cx = 0.5 + tf.random.uniform([], -0.08, 0.08) * inner
        box = tf.stack([cy - scale / 2, cx - scale / 2, cy + scale / 2, cx + scale / 2])
        img = tf.image.crop_and_resize(img[None], box[None], [0], [size, size])[0]
        # rotation, plus a perspective term and a horizontal squeeze (a head turned a little)
        angle = tf.random.uniform([], -0.2, 0.2)
        c, s = tf.cos(angle), tf.sin(angle)
        h = fsize / 2
        squeeze = tf.cond(chance(0.3), lambda: tf.random.uniform([], 1.0, 1.25), lambda: 1.0)
        p0 = tf.cond(chance(0.3), lambda: tf.random.uniform([], -0.003, 0.003), lambda: 0.0)
        transform = [c * squeeze, -s, h - c * squeeze * h + s * h, s, c, h - s * h - c * h, p0, 0.0]
        img = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None], transforms=[transform], output_shape=[size, size], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")[0]
        img = tf.image.random_flip_left_right(img)
        img = tf.cond((label != 1) & chance(0.3), lambda: recolour_lower(img), lambda: img)
        img = tf.image.adjust_hue(img / 255.0, tf.random.uniform([], -0.04, 0.04)) * 255.0
        # resolution loss (small, distant faces), or a mosaic (pixelated faces)
        low = tf.random.uniform([], 12, size + 1, dtype=tf.int32)
        img = tf.cond(chance(0.3),
                      lambda: tf.image.resize(tf.image.resize(img, [low, low], antialias=True), [size, size]),
                      lambda: img)
        img = tf.cond(chance(0.08), lambda: mosaic(img), lambda: img)
        img = tf.image.random_brightness(img, 40.0)
        img = tf.image.random_contrast(img, 0.7, 1.3)
        img = tf.clip_by_value(img, 0.0, 255.0)
        img = tf.cond(chance(0.1), lambda: edge_cut(img), lambda: img)
        img = tf.cond(chance(0.3),
                      lambda: tf.cast(tf.image.random_jpeg_quality(tf.cast(img, tf.uint8), 30, 95), tf.float32),
                      lambda: img)
        img = tf.cond(chance(0.1), lambda: tf.repeat(tf.image.rgb_to_grayscale(img), 3, -1), lambda: img)
        img.set_shape([size, size, 3])
        return img, tf.one_hot(label, len(CLASS_NAMES)), weight

    return augment


def load_or_build_crops(data: Path, detector, size: int, cache: Path | None, rule: str = "box",
                        margin: float = DEFAULT_MARGIN) -> CropSet:
    if cache is not None:
        cache = cache.with_name(f"{cache.stem}-{crop_signature(detector, size, rule, margin)}{cache.suffix}")
        if cache.is_file():
            z = np.load(cache)
            log.info("loaded %d cached crops from %s", len(z["labels"]), cache)
            return CropSet(**{k: z[k] for k in z.files})
    crops = build_crops(data, detector, size, margin, rule=rule)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".partial.npz")
        np.savez(tmp, **crops.arrays())
        tmp.replace(cache)
    return crops


@dataclass(frozen=True)
class Distillation:
    """The student's loss: ``alpha`` KL(teacher_T || student_T) T^2 + (1 - alpha) cross-entropy(hard label).

    ``temperature`` softens both the teacher's averaged probabilities and the student's logits (Hinton et al.,
    2015); T^2 keeps the soft term's gradients on the scale of the hard one's."""

    alpha: Annotated[float, Range(0, 1)] = 0.7
    temperature: Annotated[float, Range(1, 10)] = 3.0

    def __post_init__(self) -> None:
        check_fields(self)

    def soft_labels(self, probs: np.ndarray) -> np.ndarray:
        """Teacher probabilities (N, classes) -> its soft labels at the temperature, float32."""
        z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / self.temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def loss(self, classes: int = len(CLASS_NAMES), smoothing: float = 0.05):
        """A Keras loss on the logits; ``y_true`` is the one-hot label followed by the soft labels."""
        from keras import ops

        alpha, t = self.alpha, self.temperature

        def distillation_loss(y_true, logits):
            hard = y_true[:, :classes] * (1 - smoothing) + smoothing / classes
            soft = y_true[:, classes:]
            ce = -ops.sum(hard * ops.log_softmax(logits, axis=-1), axis=-1)
            kl = ops.sum(soft * (ops.log(ops.clip(soft, 1e-12, 1.0)) - ops.log_softmax(logits / t, axis=-1)), axis=-1)
            return alpha * kl * t * t + (1 - alpha) * ce

        return distillation_loss


def teacher_probabilities(teachers: tuple[Path, ...], crops: CropSet, rule: str, data: Path, detector, size: int,
                          cache: Path | None, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The teachers' averaged probabilities for every crop, each teacher on the crop of its own rule.

    A teacher of another crop rule than the training crops needs that rule's crop cache (built if missing);
    its faces must be the same, in the same order. Every teacher must be cut at the student's ``margin``.
    Cached beside the crop cache, keyed by the teachers' bytes."""
    from livemask.models.backends.keras_model import MaskClassifier

    key = hashlib.sha1(f"{crop_signature(detector, size, rule, margin)}{len(crops.labels)}".encode())
    for path in teachers:
        key.update(Path(path).read_bytes())
    store = None if cache is None else cache.with_name(f"{cache.stem}-teacher-{key.hexdigest()[:10]}.npy")
    if store is not None and store.is_file():
        log.info("teacher probabilities from %s", store)
        return np.load(store)
    others: dict[str, CropSet] = {}
    probs = []
    for path in teachers:
        clf = MaskClassifier(str(path))
        if tuple(clf.class_names) != CLASS_NAMES:
            raise ConfigError(f"--teacher {path}: classes {list(clf.class_names)}, expected {list(CLASS_NAMES)}")
        if clf.spec.crop_margin != margin:
            raise ConfigError(f"--teacher {path}: crop margin {clf.spec.crop_margin:g}, the student's is {margin:g}")
        want = clf.spec.crop_rule
        if want == rule:
            x = crops.base
        elif want == "box" and crops.box_base is not None:
            x = crops.box_base
        else:
            if want not in others:
                other = load_or_build_crops(data, detector, size, cache, want, margin)
                if not (np.array_equal(other.labels, crops.labels) and np.array_equal(other.part, crops.part)
                        and np.array_equal(other.size, crops.size)):
                    raise ConfigError(f"--teacher {path}: the {want} crop cache holds other faces than the {rule} one;"
                                      " delete both caches to rebuild them")
                others[want] = other
            x = others[want].base
        probs.append(clf.predict_crops(x).probabilities)
    mean = np.mean(probs, axis=0).astype(np.float32)
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
        np.save(store, mean)
    return mean


def fit(model, wide: np.ndarray, labels: np.ndarray, weights: np.ndarray, *, size: int, epochs: int, batch: int,
        seed: int, lr: float, alt: np.ndarray | None = None, soft: np.ndarray | None = None,
        distill: Distillation | None = None, val: tuple[np.ndarray, np.ndarray] | None = None):
    """Train ``model`` in place on augmented wide crops: cross-entropy, or with ``soft`` labels the distillation
    loss on its logits. ``val``: model-ready RGB crops and their labels, scored after every epoch."""
    import keras
    import tensorflow as tf

    k = len(CLASS_NAMES)
    augment = _augment_fn(size)
    columns = (wide, labels, weights) + (() if alt is None else (alt,)) + (() if soft is None else (soft,))
    if soft is None:
        mapped = augment
    else:
        def mapped(*cols):
            img, onehot, weight = augment(*cols[:-1])
            return img, tf.concat([onehot, cols[-1]], 0), weight
    ds = tf.data.Dataset.from_tensor_slices(columns)
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(mapped, num_parallel_calls=2).batch(batch).prefetch(2)
    val_data = None
    if val is not None:
        onehot = np.eye(k, dtype=np.float32)[val[1]]
        val_data = tf.data.Dataset.from_tensor_slices(
            (val[0], onehot if soft is None else np.concatenate([onehot, onehot], 1))).batch(256)
    steps = int(np.ceil(len(labels) / batch)) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=lr, warmup_steps=steps // 20)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=1e-4)
    if soft is None:
        model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
                      metrics=["accuracy"])
        return model.fit(ds, epochs=epochs, validation_data=val_data, verbose=2)
    from keras import ops

    def accuracy(y_true, logits):
        return ops.cast(ops.argmax(y_true[:, :k], axis=-1) == ops.argmax(logits, axis=-1), "float32")

    # the same weights, trained through their logits (the softmax's temperature is fitted afterwards)
    head = keras.Model(model.inputs, model.get_layer("logits").output)
    head.compile(optimizer=optimizer, loss=(distill or Distillation()).loss(k), metrics=[accuracy])
    return head.fit(ds, epochs=epochs, validation_data=val_data, verbose=2)


def train(data: Path, out: Path, detector, size: int = 64, epochs: int = 30, batch: int = 64, seed: int = 0,
          cache: Path | None = None, crop_rule: str = "box", occluders: bool = False, init: Path | None = None,
          lr: float = 3e-3, teachers: tuple[Path, ...] = (), distill: Distillation | None = None,
          margin: float = DEFAULT_MARGIN) -> dict:
    """Build crops (cached), train, fit the temperature, save the model and return the report.

    ``crop_rule``: ``box`` (v3, v4) or ``aligned`` (:mod:`livemask.models.crop`), stored in the model file.
    ``margin``: the crop margin, stored in the model file too; its crops have a cache of their own.
    ``occluders``: every training face gets one occluded copy (:mod:`livemask.data.occluders`, made once
    from ``seed``), seen instead of the face in a share :data:`OCCLUDED_P` of the epochs.
    ``teachers``: model files whose averaged probabilities (each on the crop of its own rule) are the soft
    labels of a distillation loss (:class:`Distillation`); computed once over every crop and cached."""
    import keras

    keras.utils.set_random_seed(seed)
    t_start = time.monotonic()
    crops = load_or_build_crops(data, detector, size, cache, crop_rule, margin)
    crop_s = time.monotonic() - t_start
    is_train = np.isin(crops.part, TRAIN_PARTS)
    is_val = crops.part == "faces-val"
    counts = np.bincount(crops.labels[is_train], minlength=len(CLASS_NAMES))
    # square root of the inverse class frequency: full inverse weights made the rare mask_incorrect class
    # swallow a twentieth of correctly worn masks (v3 trial: its precision 0.65 on faces val)
    class_weight = np.sqrt(counts.sum() / (len(counts) * np.maximum(counts, 1)))
    small = ~np.char.startswith(crops.part.astype(str), "faces") & (crops.size >= SMALL_FACE_PX[0]) & (
        crops.size <= SMALL_FACE_PX[1])
    weights = (class_weight[crops.labels] * np.where(small, SMALL_FACE_WEIGHT, 1.0)).astype(np.float32)
    log.info("train crops %d (per class %s), class weights %s, small scene faces %d", is_train.sum(),
             counts.tolist(), np.round(class_weight, 3).tolist(), int((small & is_train).sum()))

    columns = (crops.wide[is_train], crops.labels[is_train], weights[is_train])
    occluded_kinds: dict[str, int] = {}
    if occluders:
        alt, kinds = make_occluded(crops, is_train, size, seed, margin)
        columns = (*columns, alt)
        occluded_kinds = dict(zip(*(x.tolist() for x in np.unique(kinds, return_counts=True))))
        log.info("occluded copies: %s (%.0f s)", occluded_kinds, time.monotonic() - t_start - crop_s)
    soft = None
    if teachers:
        distill = distill or Distillation()
        t_teach = time.monotonic()
        probs = teacher_probabilities(teachers, crops, crop_rule, data, detector, size, cache, margin)
        teacher_s = time.monotonic() - t_teach
        soft = distill.soft_labels(probs)
        log.info("teachers %s: faces-val accuracy %.4f (%.0f s)", [str(t) for t in teachers],
                 float((probs[is_val].argmax(1) == crops.labels[is_val]).mean()), teacher_s)
    model = build_model(size, margin, seed=seed, crop_rule=crop_rule)
    if init is not None:
        from livemask.models.backends.keras_model import load_keras_model

        start = load_keras_model(str(init))
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(start.get_layer(layer.name).get_weights())
        log.info("weights from %s", init)
    val_x = np.ascontiguousarray(crops.base[is_val][..., ::-1], dtype=np.float32)
    t0 = time.monotonic()
    fit(model, *columns[:3], size=size, epochs=epochs, batch=batch, seed=seed, lr=lr,
        alt=columns[3] if occluders else None, soft=None if soft is None else soft[is_train],
        distill=distill, val=(val_x, crops.labels[is_val]))
    train_s = time.monotonic() - t0

    from livemask.data.temperature import expected_calibration_error, fit_temperature, logits_of

    calib = crops.part == "faces-calib"
    logits = logits_of(model, np.ascontiguousarray(crops.base[..., ::-1], dtype=np.float32))
    temperature = fit_temperature(logits[calib], crops.labels[calib])
    model.get_layer("probabilities").temperature = temperature
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial" + out.suffix)
    model.save(tmp)
    tmp.replace(out)
    total_s = time.monotonic() - t_start
    log.info("saved %s (%.1f MB), temperature %.3f, after %.0f s (training %.0f s)", out,
             out.stat().st_size / 1e6, temperature, total_s, train_s)
    report = crop_report(out, crops)
    report["calibration"] = {
        "temperature": round(temperature, 4),
        "fitted_on": f"faces-calib: {int(calib.sum())} faces of {CALIB_PERCENT}% of faces-train groups, not trained on",
        "ece_faces_val_before": round(expected_calibration_error(logits[is_val], crops.labels[is_val], 1.0), 4),
        "ece_faces_val_after": round(
            expected_calibration_error(logits[is_val], crops.labels[is_val], temperature), 4),
    }
    report["seconds"] = {"crops": round(crop_s, 1), "training": round(train_s, 1), "total": round(total_s, 1)}
    report["crop_rule"] = crop_rule
    report["recipe"] = {"epochs": epochs, "batch": batch, "seed": seed, "peak_lr": lr, "occluders": occluders,
                        "init": None if init is None else str(init)}
    if crops.aligned is not None:
        report["aligned_share"] = {p: round(float(crops.aligned[crops.part == p].mean()), 4)
                                   for p in sorted(set(crops.part.tolist()))}
    if teachers:
        report["distillation"] = {"teachers": [str(t) for t in teachers], "alpha": distill.alpha,
                                  "temperature": distill.temperature, "teacher_seconds": round(teacher_s, 1),
                                  "teacher_faces_val_accuracy": round(
                                      float((probs[is_val].argmax(1) == crops.labels[is_val]).mean()), 4)}
    if occluders:
        report["occluded_copies"] = {"kinds": occluded_kinds, "chance_per_epoch": OCCLUDED_P}
    report["train_crops"] = {"total": int(is_train.sum()), "per_class": dict(zip(CLASS_NAMES, counts.tolist())),
                             "small_scene_faces_weighted": int((small & is_train).sum())}
    report_path = out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", report_path)
    return report


def make_occluded(crops: CropSet, select: np.ndarray, size: int, seed: int,
                  margin: float = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """One occluded copy (and its kind) of each selected wide crop, placed by the crop's landmarks."""
    from livemask.data.occluders import occluded_copies
    from livemask.models.crop import template

    wide = crops.wide[select]
    marks = crops.landmarks[select] if crops.landmarks is not None else np.full((len(wide), 5, 2), np.nan, np.float32)
    typical = template(wide.shape[1], (1 + margin) * WIDE - 1)
    return occluded_copies(wide, marks, crops.labels[select], typical, seed)


def crop_report(model_path: Path, crops: CropSet) -> dict:
    """Accuracy and confusion per evaluation part and per source, and by face size on held-out scenes."""
    from livemask.models.backends.keras_model import MaskClassifier

    clf = MaskClassifier(str(model_path))
    pred = clf.predict_crops(crops.base).class_ids
    report: dict = {"class_names": list(CLASS_NAMES)}
    for part in ("faces-val", "scenes-holdout", "extra-val"):
        sel = crops.part == part
        if part != "faces-val":
            sel &= crops.size >= 16
        report[part] = summarise(crops.labels[sel], pred[sel])
    val = crops.part == "faces-val"
    report["faces-val-by-source"] = {
        str(src): summarise(crops.labels[val & (crops.source == src)], pred[val & (crops.source == src)])
        for src in sorted(set(crops.source[val].tolist()))
    }
    bins = [(4, 16), (16, 24), (24, 32), (32, 48), (48, 10_000)]
    held = np.isin(crops.part, ["scenes-holdout", "extra-val"])
    report["scene-holdout-and-extra-val-by-size"] = {
        f"{lo}-{hi if hi < 10_000 else 'up'} px": summarise(crops.labels[m], pred[m])
        for lo, hi in bins
        for m in [held & (crops.size >= lo) & (crops.size < hi)]
    }
    return report


def summarise(truth: np.ndarray, pred: np.ndarray) -> dict:
    k = len(CLASS_NAMES)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    recall = {CLASS_NAMES[i]: round(float(confusion[i, i] / confusion[i].sum()), 4)
              for i in range(k) if confusion[i].sum()}
    precision = {CLASS_NAMES[i]: round(float(confusion[i, i] / confusion[:, i].sum()), 4)
                 for i in range(k) if confusion[:, i].sum()}
    return {"n": len(truth), "accuracy": round(float((truth == pred).mean()), 4) if len(truth) else None,
            "recall": recall, "precision": precision,
            "confusion (rows truth, cols predicted)": confusion.tolist()}

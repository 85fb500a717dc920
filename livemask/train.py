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

import numpy as np

from livemask.crop import DEFAULT_MARGIN, crop_face
from livemask.datasets import is_class_folders, load_face_folders, load_scenes
from livemask.errors import ConfigError, InputImageError
from livemask.images import read_image

log = logging.getLogger(__name__)

CLASS_NAMES = ("mask", "no_mask")
# annotation / folder name -> class index; mask_weared_incorrect is left out of training
LABELS = {"with_mask": 0, "without_mask": 1}
WIDE = 1.5  # stored crops are this much wider than the model's crop, room for scale/shift jitter
SCENE_HOLDOUT_PERCENT = 20


def scene_is_holdout(stem: str) -> bool:
    """A fixed, reproducible 20% of scene images held out from classifier training."""
    return int(hashlib.sha1(stem.encode()).hexdigest(), 16) % 100 < SCENE_HOLDOUT_PERCENT


@dataclass
class CropSet:
    wide: np.ndarray  # (N, W, W, 3) uint8 BGR, WIDE x the model's crop
    base: np.ndarray  # (N, S, S, 3) uint8 BGR, exactly the inference crop
    labels: np.ndarray  # (N,) int64 class index
    part: np.ndarray  # (N,) str: faces-train, faces-val, scenes-train, scenes-holdout
    size: np.ndarray  # (N,) float32 face size (shorter box side) in source pixels


def build_crops(data: Path, detector, size: int, margin: float = DEFAULT_MARGIN) -> CropSet:
    """Cut every usable face of ``data`` (faces/ and scenes/ below it)."""
    wide_size = round(size * WIDE)
    wide_margin = (1 + margin) * WIDE - 1
    wide, base, labels, part, sizes = [], [], [], [], []
    skipped = 0
    faces_root, scenes_root = data / "faces", data / "scenes"
    if not is_class_folders(faces_root):
        raise ConfigError(f"{faces_root}: expected with_mask/ and without_mask/ folders")
    items = load_face_folders(faces_root)
    t0 = time.monotonic()
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
        box = det.boxes[int(np.argmax(det.scores))]
        wide.append(crop_face(image, box, wide_size, wide_margin))
        base.append(crop_face(image, box, size, margin))
        labels.append(LABELS[item.label])
        part.append("faces-val" if item.split == "val" else "faces-train")
        sizes.append(float((box[2:] - box[:2]).min()))
        if k % 500 == 0:
            log.info("faces: %d/%d (%.0f s)", k, len(items), time.monotonic() - t0)
    log.info("faces: %d cropped, %d without a detected face (left out)", len(labels), skipped)
    if scenes_root.is_dir():
        for scene in load_scenes(scenes_root):
            image = read_image(scene.path)
            holdout = scene_is_holdout(scene.path.stem)
            for box, name in zip(scene.boxes, scene.names):
                if name not in LABELS or (box[2:] - box[:2]).min() < 4:
                    continue
                wide.append(crop_face(image, box, wide_size, wide_margin))
                base.append(crop_face(image, box, size, margin))
                labels.append(LABELS[name])
                part.append("scenes-holdout" if holdout else "scenes-train")
                sizes.append(float((box[2:] - box[:2]).min()))
    return CropSet(np.stack(wide), np.stack(base), np.asarray(labels, np.int64), np.asarray(part),
                   np.asarray(sizes, np.float32))


def crop_signature(detector, size: int) -> str:
    """Short hash of what the crops depend on: detector settings, crop size and margin."""
    settings = {k: v for k, v in sorted(vars(detector).items()) if isinstance(v, (int, float, str, bool))}
    text = f"{type(detector).__name__}{settings}{size}{DEFAULT_MARGIN}{WIDE}{SCENE_HOLDOUT_PERCENT}"
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def build_model(size: int = 64, margin: float = DEFAULT_MARGIN, seed: int = 0):
    """A small separable-convolution CNN; the last conv block is the Grad-CAM layer."""
    import keras
    from keras import layers

    from livemask.modelspec import ClassProbabilities, Preprocess

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="face_rgb")
    x = Preprocess(channel_order="RGB", scale=1 / 127.5, offset=-1.0, crop_margin=margin, name="preprocess")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, filters in enumerate((64, 128, 192)):
        for j in range(2):
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv{j}")(x)
            x = layers.BatchNormalization(name=f"block{i}_bn{j}")(x)
            x = layers.ReLU(name=f"block{i}_relu{j}")(x)
        if i < 2:
            x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    x = layers.Dense(len(CLASS_NAMES), name="logits")(x)
    outputs = ClassProbabilities(class_names=CLASS_NAMES, name="probabilities")(x)
    return keras.Model(inputs, outputs, name="livemask_mask_classifier")


def _augment_fn(size: int, seed: int):
    """tf.data map function: wide BGR crop -> jittered model-ready RGB float crop."""
    import tensorflow as tf

    inner = 1.0 / WIDE

    def augment(wide, label):
        img = tf.reverse(tf.cast(wide, tf.float32), axis=[-1])  # BGR -> RGB, as MaskClassifier.prepare
        # scale and shift jitter: a box around the centre crop
        scale = inner * tf.random.uniform([], 0.85, 1.2)
        cy = 0.5 + tf.random.uniform([], -0.08, 0.08) * inner
        cx = 0.5 + tf.random.uniform([], -0.08, 0.08) * inner
        box = tf.stack([cy - scale / 2, cx - scale / 2, cy + scale / 2, cx + scale / 2])
        img = tf.image.crop_and_resize(img[None], box[None], [0], [size, size])[0]
        # small rotation via a projective transform around the centre
        angle = tf.random.uniform([], -0.2, 0.2)
        c, s = tf.cos(angle), tf.sin(angle)
        h = tf.cast(size, tf.float32) / 2
        transform = [c, -s, h - c * h + s * h, s, c, h - s * h - c * h, 0.0, 0.0]
        img = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None], transforms=[transform], output_shape=[size, size], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")[0]
        img = tf.image.random_flip_left_right(img)
        # resolution loss (small, distant faces) or blur
        low = tf.random.uniform([], 12, size + 1, dtype=tf.int32)
        img = tf.cond(tf.random.uniform([]) < 0.35,
                      lambda: tf.image.resize(tf.image.resize(img, [low, low], antialias=True), [size, size]),
                      lambda: img)
        img = tf.image.random_brightness(img, 40.0)
        img = tf.image.random_contrast(img, 0.7, 1.3)
        img = tf.clip_by_value(img, 0.0, 255.0)
        img = tf.cond(tf.random.uniform([]) < 0.3,
                      lambda: tf.cast(tf.image.random_jpeg_quality(tf.cast(img, tf.uint8), 30, 95), tf.float32),
                      lambda: img)
        img = tf.cond(tf.random.uniform([]) < 0.1, lambda: tf.repeat(tf.image.rgb_to_grayscale(img), 3, -1),
                      lambda: img)
        img.set_shape([size, size, 3])
        return img, label

    return augment


def train(data: Path, out: Path, detector, size: int = 64, epochs: int = 30, batch: int = 64, seed: int = 0,
          cache: Path | None = None) -> dict:
    """Build crops (cached), train, save the model and return the evaluation report."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    crops = None
    if cache is not None:
        cache = cache.with_name(f"{cache.stem}-{crop_signature(detector, size)}{cache.suffix}")
    if cache is not None and cache.is_file():
        z = np.load(cache)
        crops = CropSet(z["wide"], z["base"], z["labels"], z["part"], z["size"])
        log.info("loaded %d cached crops from %s", len(crops.labels), cache)
    if crops is None:
        crops = build_crops(data, detector, size)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, wide=crops.wide, base=crops.base, labels=crops.labels, part=crops.part, size=crops.size)
    is_train = np.isin(crops.part, ["faces-train", "scenes-train"])
    is_val = crops.part == "faces-val"
    counts = np.bincount(crops.labels[is_train], minlength=len(CLASS_NAMES))
    class_weight = {i: float(counts.sum() / (len(counts) * c)) for i, c in enumerate(counts)}
    log.info("train crops %d (per class %s), class weights %s", is_train.sum(), counts.tolist(), class_weight)

    ds = tf.data.Dataset.from_tensor_slices((crops.wide[is_train], crops.labels[is_train]))
    ds = ds.shuffle(int(is_train.sum()), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(_augment_fn(size, seed), num_parallel_calls=2).batch(batch).prefetch(2)
    val_x = np.ascontiguousarray(crops.base[is_val][..., ::-1], dtype=np.float32)
    val = tf.data.Dataset.from_tensor_slices((val_x, crops.labels[is_val])).batch(256)

    model = build_model(size, seed=seed)
    steps = int(np.ceil(is_train.sum() / batch)) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=3e-3, warmup_steps=steps // 20)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    t0 = time.monotonic()
    model.fit(ds, epochs=epochs, validation_data=val, class_weight=class_weight, verbose=2)
    train_s = time.monotonic() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    log.info("saved %s (%.1f MB) after %.0f s of training", out, out.stat().st_size / 1e6, train_s)
    report = crop_report(out, crops)
    report["train_seconds"] = round(train_s, 1)
    report["train_crops"] = {"total": int(is_train.sum()), "per_class": dict(zip(CLASS_NAMES, counts.tolist()))}
    report_path = out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", report_path)
    return report


def crop_report(model_path: Path, crops: CropSet) -> dict:
    """Accuracy and confusion per evaluation part, and accuracy by face size on held-out scenes."""
    from livemask.classifier import MaskClassifier

    clf = MaskClassifier(str(model_path))
    pred = clf.predict_crops(crops.base).class_ids
    report: dict = {"class_names": list(CLASS_NAMES)}
    for part in ("faces-val", "scenes-holdout"):
        sel = crops.part == part
        if part == "scenes-holdout":
            sel &= crops.size >= 16
        report[part] = summarise(crops.labels[sel], pred[sel])
    bins = [(4, 16), (16, 24), (24, 32), (32, 48), (48, 10_000)]
    report["scenes-holdout-by-size"] = {
        f"{lo}-{hi if hi < 10_000 else 'up'} px": summarise(crops.labels[m], pred[m])
        for lo, hi in bins
        for m in [(crops.part == "scenes-holdout") & (crops.size >= lo) & (crops.size < hi)]
    }
    return report


def summarise(truth: np.ndarray, pred: np.ndarray) -> dict:
    k = len(CLASS_NAMES)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    return {"n": len(truth), "accuracy": round(float((truth == pred).mean()), 4) if len(truth) else None,
            "confusion (rows truth, cols predicted)": confusion.tolist()}

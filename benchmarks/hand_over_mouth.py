"""Unmasked faces with a hand over the mouth: the share each model calls ``no_mask``.

    python benchmarks/hand_over_mouth.py --data ../shared/data [--model A.keras --model B.onnx ...]
        [--seed 2029] [--limit N] [--save-examples F.png]

The test set is made from ``faces/`` rows with split ``val`` and label ``without_mask`` (never trained
on): CenterFace finds the photo's largest face, a synthetic skin-coloured hand
(``livemask.data.occluders.hand``: a palm and four fingers in the cheeks' own colour, at a random
angle) is drawn over its mouth on the photo itself, at the photo's resolution; then each model sees
the photo as ``livemask eval`` would: the configured detector, the largest face, the model's own crop
rule. Photos where no face is found after the hand is drawn are counted apart. The hand shapes come
from the same generator that training's occluder augmentation uses (with another seed and on faces
never trained on), so this measures the synthetic case, not real hands; ``--save-examples`` writes a
contact sheet to look at.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

WORK = 256  # the face region is drawn on at this size, then put back at the photo's resolution


def with_hand(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo with a hand over the face's mouth (drawn on a square around the face, pasted back)."""
    from livemask.data.occluders import hand
    from livemask.models.crop import square_box

    h, w = image.shape[:2]
    x1, y1, x2, y2 = square_box(box, 1.0)
    pad = max(0, -x1, -y1, x2 - w, y2 - h)
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    region = canvas[y1 + pad:y2 + pad, x1 + pad:x2 + pad]
    k = WORK / region.shape[0]
    small = cv2.resize(region, (WORK, WORK), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    lm = (np.asarray(landmarks, np.float64) - [x1, y1]) * k
    drawn = hand(small, lm, rng, "mouth")
    # only the hand's pixels go back, at the photo's resolution
    diff = (np.abs(drawn.astype(np.int16) - small.astype(np.int16)).max(-1) > 0).astype(np.float32)
    back = cv2.resize(drawn, region.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(diff, region.shape[1::-1], interpolation=cv2.INTER_LINEAR)[..., None]
    region[:] = (region * (1 - alpha) + back * alpha).astype(np.uint8)
    return canvas[pad:pad + h, pad:pad + w].copy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", action="append", default=None, help="model file (repeatable)")
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    parser.add_argument("--save-examples", type=Path, default=None)
    args = parser.parse_args()

    from livemask.apps.compose import apply_overrides, classifier, detector, load_config
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders

    config = load_config(None)
    det = detector(config)
    models = args.model or ["models/mask_classifier.keras"]
    clfs = [classifier(apply_overrides(config, {"classifier.model_path": m})) for m in models]
    items = [i for i in load_face_folders(args.data / "faces", split="val") if i.label == "without_mask"]
    if args.limit:
        items = items[:args.limit]
    counts = [dict.fromkeys(c.class_names, 0) for c in clfs]
    plain = [dict.fromkeys(c.class_names, 0) for c in clfs]
    lost = no_face = 0
    examples = []
    for n, item in enumerate(items):
        image = read_image(item.path)
        found = det.detect(image)
        if not len(found):
            no_face += 1
            continue
        i = found.largest()
        if not np.isfinite(found.landmarks[i]).all():
            no_face += 1
            continue
        rng = np.random.default_rng([args.seed, n])
        covered = with_hand(image, found.boxes[i], found.landmarks[i], rng)
        again = det.detect(covered)
        if not len(again):
            lost += 1
            continue
        j = again.largest()
        for clf, tally, base in zip(clfs, counts, plain):
            tally[clf.classify(covered, again[j]).labels[0]] += 1
            base[clf.classify(image, found[i]).labels[0]] += 1
        if args.save_examples is not None and len(examples) < 48:
            crop = clfs[0].crops(covered, again[j])[0]
            examples.append(cv2.resize(crop, (96, 96)))
    done = sum(counts[0].values()) if counts else 0
    print(f"hand over the mouth, faces val without_mask: {len(items)} photos, {no_face} without a face or "
          f"landmarks, {lost} face lost after drawing the hand, {done} classified (seed {args.seed})")
    print("| model | crop rule | no_mask with the hand | mask | mask_incorrect | no_mask without the hand |")
    print("|---|---|---|---|---|---|")
    for m, clf, tally, base in zip(models, clfs, counts, plain):
        share = tally.get("no_mask", 0) / max(done, 1)
        print(f"| {m} | {clf.spec.crop_rule} | {share:.3f} ({tally.get('no_mask', 0)}/{done}) | "
              f"{tally.get('mask', 0)} | {tally.get('mask_incorrect', 0)} | "
              f"{base.get('no_mask', 0) / max(done, 1):.3f} |")
    if examples:
        rows = [np.hstack(examples[r:r + 12] + [np.zeros_like(examples[0])] * (12 - len(examples[r:r + 12])))
                for r in range(0, len(examples), 12)]
        cv2.imwrite(str(args.save_examples), np.vstack(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

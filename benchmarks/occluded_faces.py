"""Faces with a synthetic occluder drawn on the photo: the share each model still calls right.

    python benchmarks/occluded_faces.py --data ../shared/data [--kind hand --kind pattern ...]
        [--model A.keras --model B.onnx ...] [--seed 2029] [--limit N] [--save-examples DIR]

Each kind is a failure family seen on real photos the project does not have (see the model card):

| kind | photos (faces/, split val) | drawn on the largest face | right answer |
|---|---|---|---|
| hand | without_mask | a skin-coloured hand over the mouth | no_mask |
| nose-hand | without_mask | a hand over the nose | no_mask |
| phone | without_mask | a phone in front of the lower face | no_mask |
| pattern | with_mask | the mask given stripes, dots, checks or blobs | mask |
| recolour | with_mask | the mask made pink, beige, black, white, red, blue or green | mask |
| valve | with_mask | a respirator valve on the mask | mask |

The photos are never trained on. CenterFace finds the photo's largest face; the occluder
(``livemask.data.occluders``, at the photo's resolution) is drawn on the photo itself; then each model
sees the photo as ``livemask eval`` would: the configured detector, the largest face, the model's own
crop rule. Photos where no face is found after drawing, or where a mask's colour region is not found
(nothing drawn), are counted apart. The occluders come from the same generator that training's
``--occluders`` augmentation uses (another seed, faces never trained on), so a model trained with it
has seen their kind: this measures the synthetic case, not real hands or masks; ``--save-examples``
writes one contact sheet per kind to look at.
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
# kind: (label of the photos in faces/, the right class, how it is drawn on a face region)
KINDS = {
    "hand": ("without_mask", "no_mask", lambda o, img, lm, rng: o.hand(img, lm, rng, "mouth")),
    "nose-hand": ("without_mask", "no_mask", lambda o, img, lm, rng: o.hand(img, lm, rng, "nose")),
    "phone": ("without_mask", "no_mask", lambda o, img, lm, rng: o.phone(img, lm, rng)),
    "pattern": ("with_mask", "mask", lambda o, img, lm, rng: o.recolour(img, lm, rng, pattern=True)),
    "recolour": ("with_mask", "mask", lambda o, img, lm, rng: o.recolour(img, lm, rng)),
    "valve": ("with_mask", "mask", lambda o, img, lm, rng: o.valve(img, lm, rng)),
}


def drawn_on(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, kind: str,
             rng: np.random.Generator) -> np.ndarray | None:
    """The photo with ``kind`` drawn on the face (on a square around it, pasted back), or None when the
    generator drew nothing (a mask whose colour region was not found)."""
    from livemask.data import occluders
    from livemask.models.crop import square_box

    h, w = image.shape[:2]
    x1, y1, x2, y2 = square_box(box, 1.0)
    pad = max(0, -x1, -y1, x2 - w, y2 - h)
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    region = canvas[y1 + pad:y2 + pad, x1 + pad:x2 + pad]
    k = WORK / region.shape[0]
    small = cv2.resize(region, (WORK, WORK), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    lm = (np.asarray(landmarks, np.float64) - [x1, y1]) * k
    drawn = KINDS[kind][2](occluders, small, lm, rng)
    # only the drawn pixels go back, at the photo's resolution
    diff = (np.abs(drawn.astype(np.int16) - small.astype(np.int16)).max(-1) > 0).astype(np.float32)
    if not diff.any():
        return None
    back = cv2.resize(drawn, region.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(diff, region.shape[1::-1], interpolation=cv2.INTER_LINEAR)[..., None]
    region[:] = (region * (1 - alpha) + back * alpha).astype(np.uint8)
    return canvas[pad:pad + h, pad:pad + w].copy()


def run_kind(kind: str, items, det, models, clfs, seed: int, examples_dir: Path | None, plain_seen: dict) -> None:
    """One kind's table. ``plain_seen`` keeps each photo's own detection and the models' answers on it (the
    "without it" column) across kinds: the unmasked kinds share their photos, and so do the masked ones."""
    from livemask.core.images import read_image

    right = KINDS[kind][1]
    counts = [dict.fromkeys(c.class_names, 0) for c in clfs]
    plain = [dict.fromkeys(c.class_names, 0) for c in clfs]
    no_face = lost = nothing = 0
    examples = []
    for n, item in enumerate(items):
        image = read_image(item.path)
        if item.path not in plain_seen:
            found = det.detect(image)
            usable = len(found) and np.isfinite(found.landmarks[found.largest()]).all()
            plain_seen[item.path] = (found, [clf.classify(image, found[found.largest()]).labels[0] for clf in clfs]
                                     if usable else None)
        found, plain_labels = plain_seen[item.path]
        if plain_labels is None:
            no_face += 1
            continue
        i = found.largest()
        covered = drawn_on(image, found.boxes[i], found.landmarks[i], kind, np.random.default_rng([seed, n]))
        if covered is None:
            nothing += 1
            continue
        again = det.detect(covered)
        if not len(again):
            lost += 1
            continue
        j = again.largest()
        for clf, tally, base, label in zip(clfs, counts, plain, plain_labels):
            tally[clf.classify(covered, again[j]).labels[0]] += 1
            base[label] += 1
        if examples_dir is not None and len(examples) < 48:
            examples.append(cv2.resize(clfs[0].crops(covered, again[j])[0], (96, 96)))
    done = sum(counts[0].values()) if counts else 0
    print(f"\n{kind}: faces val {KINDS[kind][0]}, {len(items)} photos, {no_face} without a face or landmarks, "
          f"{nothing} with nothing drawn, {lost} face lost after drawing, {done} classified (seed {seed})")
    others = [c for c in clfs[0].class_names if c != right]
    print(f"| model | crop rule | {right} with the {kind} | " + " | ".join(others) + f" | {right} without it |")
    print("|---|---|---|" + "---|" * len(others) + "---|")
    for m, clf, tally, base in zip(models, clfs, counts, plain):
        print(f"| {m} | {clf.spec.crop_rule} | {tally.get(right, 0) / max(done, 1):.3f} ({tally.get(right, 0)}/{done}) "
              f"| " + " | ".join(str(tally.get(c, 0)) for c in others) +
              f" | {base.get(right, 0) / max(done, 1):.3f} |")
    if examples:
        examples_dir.mkdir(parents=True, exist_ok=True)
        blank = np.zeros_like(examples[0])
        rows = [np.hstack(examples[r:r + 12] + [blank] * (12 - len(examples[r:r + 12])))
                for r in range(0, len(examples), 12)]
        cv2.imwrite(str(examples_dir / f"{kind}.png"), np.vstack(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--kind", action="append", choices=sorted(KINDS), default=None,
                        help="occluder (repeatable; default: all)")
    parser.add_argument("--model", action="append", default=None, help="model file (repeatable)")
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--limit", type=int, default=0, help="first N photos of each kind only (0: all)")
    parser.add_argument("--save-examples", type=Path, default=None, help="folder for one contact sheet per kind")
    args = parser.parse_args()
    if not (args.data / "faces").is_dir():
        print(f"error: no faces/ folder in {args.data}", file=sys.stderr)
        return 2

    from livemask.apps.compose import apply_overrides, classifier, detector, load_config
    from livemask.data.datasets import load_face_folders

    config = load_config(None)
    det = detector(config)
    models = args.model or ["models/mask_classifier.keras"]
    clfs = [classifier(apply_overrides(config, {"classifier.model_path": m})) for m in models]
    val = load_face_folders(args.data / "faces", split="val")
    plain_seen: dict = {}
    for kind in args.kind or list(KINDS):
        items = [i for i in val if i.label == KINDS[kind][0]]
        run_kind(kind, items[:args.limit] if args.limit else items, det, models, clfs, args.seed, args.save_examples,
                 plain_seen)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where occlusion finds the evidence for ``mask``, row band by row band, and against which class.

    python benchmarks/where_evidence.py [--model models/mask_classifier.keras] [--per-class N] [--crops F]

The masked val faces that the model calls ``mask`` (the faces of ``bench_explain.py``'s
lower-half figure, or crops it saved with ``--save-crops``), occluded with config.yaml's
explain settings. From the same occluded copies it makes three maps per face, each the drop of
a score when a patch is filled:

* the score every explanation uses: ``mask``'s log-odds against both other classes;
* ``z_mask - z_no_mask``: the evidence for a mask at all;
* ``z_mask - z_mask_incorrect``: the evidence that the mask is worn right (over the nose).

For each it prints the share of faces with most of the positive map on the crop's lower half
(the issue's lower-half figure), the mean lower-half share, and the share of the positive map
in each band of 8 rows, averaged over faces. Needs a model with the three classes. With the
photos at hand (``--data``) it also prints where CenterFace's eye, nose and mouth landmarks fall
on the crop (median row over up to ``--landmark-photos`` masked val photos, their largest face).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_explain import add_face_arguments, lower_half, sweep_faces

BAND = 8


def landmark_rows(classifier, data: Path, photos: int):
    """Median crop rows of the eyes, nose tip and mouth corners of masked val photos' largest faces
    (None without the photos)."""
    import numpy as np

    from face_detector import CenterFaceDetector
    from livemask.core.images import read_image
    from livemask.data.datasets import load_face_folders
    from livemask.models.crop import square_box

    if not (data / "faces").is_dir() or photos <= 0:
        return None
    items = [f for f in load_face_folders(data / "faces", split="val") if f.label == "with_mask"]
    items = items[::max(1, len(items) // photos)][:photos]
    detector, spec = CenterFaceDetector(), classifier.spec
    rows = []
    for item in items:
        det = detector.detect(read_image(item.path))
        if not len(det):
            continue
        sides = (det.boxes[:, 2:] - det.boxes[:, :2]).min(axis=1)
        i = int(np.argmax(sides))
        _, top, _, bottom = square_box(det.boxes[i], spec.crop_margin)
        rows.append((det.landmarks[i][:, 1] - top) / (bottom - top) * spec.input_size)
    if not rows:
        return None
    rows = np.array(rows)
    return len(rows), float(np.median(rows[:, :2])), float(np.median(rows[:, 2])), float(np.median(rows[:, 3:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_face_arguments(parser, timed=1)
    parser.add_argument("--landmark-photos", type=int, default=150, help="masked val photos for the landmark rows")
    args = parser.parse_args(argv)
    faces = sweep_faces(args)
    if faces is None:
        return 2
    import numpy as np
    from common import machine, table

    from livemask.explain.occlusion import Occlusion
    from livemask.explain.scores import log_odds

    names = faces.classifier.class_names
    if set(names) != {"mask", "no_mask", "mask_incorrect"}:
        print(f"needs a model with the classes mask, no_mask, mask_incorrect; this one has {list(names)}",
              file=sys.stderr)
        return 2
    s = faces.settings
    occlusion = Occlusion(faces.classifier, **{k: s[k] for k in ("patch_fraction", "stride_fraction", "fill",
                                                                    "blur_sigma_fraction") if k in s})
    x = faces.x[faces.masked_called_mask]
    n, p = len(x), len(occlusion.positions)
    logits = occlusion.scorer.logits(x)
    copies = np.concatenate([
        occlusion.scorer.logits(occlusion.occluded_copies(x[i:i + 8], occlusion.fill_values(x[i:i + 8])))
        for i in range(0, n, 8)]).reshape(n, p, -1)
    m, no, inc = (names.index(c) for c in ("mask", "no_mask", "mask_incorrect"))
    scores = {
        "mask against both others (what every map explains)": lambda z: log_odds(z, np.full(len(z), m)),
        "z_mask - z_no_mask (a mask at all)": lambda z: z[:, m] - z[:, no],
        "z_mask - z_mask_incorrect (worn over the nose)": lambda z: z[:, m] - z[:, inc],
    }
    size = occlusion.size
    cover = occlusion.masks[..., 0]
    coverage = np.maximum(cover.sum(axis=0), 1.0)  # patches over each pixel
    rows = []
    for label, score in scores.items():
        drop = score(logits)[:, None] - score(copies.reshape(n * p, -1)).reshape(n, p)
        maps = np.einsum("np,pyx->nyx", drop, cover) / coverage
        share = lower_half(maps)
        profile = np.maximum(maps, 0).sum(axis=2)
        profile = (profile / np.maximum(profile.sum(axis=1, keepdims=True), 1e-12)).mean(axis=0)
        bands = [profile[r:r + BAND].sum() for r in range(0, size, BAND)]
        rows.append([label, f"{np.mean(share > 0.5):.0%}", f"{share.mean():.2f}", *[f"{b:.2f}" for b in bands]])
    print(f"machine: {machine()}\nmodel: {args.model}; {n} masked val faces called mask; occlusion patch "
          f"{occlusion.patch} px, stride {occlusion.stride} px, fill {occlusion.fill}\n")
    bands = [f"rows {r}-{r + BAND - 1}" for r in range(0, size, BAND)]
    print(table(["score", "lower half", "mean lower share", *bands], rows))
    marks = landmark_rows(faces.classifier, args.data, args.landmark_photos)
    if marks is not None:
        print(f"\nlandmarks on the {size} px crop (median row, {marks[0]} masked val photos, largest face): "
              f"eyes {marks[1]:.1f}, nose tip {marks[2]:.1f}, mouth corners {marks[3]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

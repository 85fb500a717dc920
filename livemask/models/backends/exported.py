"""Backends for exported models: ``.onnx`` with ONNX Runtime, ``.tflite`` with LiteRT.

Neither imports TensorFlow. The model's contract (:class:`~livemask.models.spec.ModelSpec`)
comes with the file: in an ONNX file as the metadata entry ``livemask`` (JSON), next to a
``.tflite`` file as the sidecar ``NAME.tflite.json``, which also holds the SHA-256 of the
model file it belongs to. Every way a file can be wrong (not a model, another format, no
contract, a contract for another file, an input or output that does not match the
contract) is a one-line :class:`ModelFileError` at load time, exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from livemask.core.errors import ModelFileError, exception_line
from livemask.core.quiet import stderr_to_devnull
from livemask.models.backends.base import DEFAULT_BATCH_SIZES, FaceClassifier, check_batch_sizes
from livemask.models.spec import ModelSpec

METADATA_KEY = "livemask"  # ONNX metadata_props key holding the contract JSON
SIDECAR_SUFFIX = ".json"  # model.tflite -> model.tflite.json


class ExplanationsNeedKeras(ModelFileError, ImportError):
    """Asked for the Keras model (explanations) of a classifier loaded from an exported file.

    It is an :class:`ImportError` as well, so code that treats explanations as an optional
    feature (the live window's g / o / e keys) shows it as "explanations unavailable (...)"
    and goes on; everywhere else it is a one-line :class:`ModelFileError` (exit 2).
    """


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file (a .keras model checked against the export that names it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


class ExportedClassifier(FaceClassifier):
    """Shared checks of the exported backends; subclasses load the runtime and run a batch.

    ``threads``: the runtime's threads for one batch (0: one per core).
    ``explain_model``: the ``.keras`` file explanations use (``classifier.explain_model``), loaded with
    TensorFlow on the first use of :attr:`model`, never before. It must be the file this one was
    exported from: its SHA-256 is checked against the contract's ``exported_from_sha256``.
    """

    contract: dict  # the exported contract: the spec plus what the file was made from

    def __init__(self, path: Path, batch_sizes=DEFAULT_BATCH_SIZES, explain_model: str | None = None,
                 threads: int = 0):
        self.path = Path(path)
        self.threads = int(threads) or _threads()  # the runtime's threads for one batch (0: one per core)
        self.batch_sizes = check_batch_sizes(batch_sizes)
        self.explain_model = explain_model
        self._keras_model = None
        self._keras_lock = threading.Lock()

    @property
    def keras_loaded(self) -> bool:
        return self._keras_model is not None

    @property
    def model(self):
        """The Keras model of ``explain_model`` (TensorFlow is imported here, once)."""
        with self._keras_lock:
            if self._keras_model is None:
                self._keras_model = self._load_keras()
            return self._keras_model

    def _load_keras(self):
        if not self.explain_model:
            raise ExplanationsNeedKeras(
                f"explanations need the Keras model, but classifier.model_path is the exported {self.kind} file "
                f"{self.path} and classifier.explain_model is not set: name the .keras file it was exported from"
            )
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            raise ExplanationsNeedKeras("explanations need TensorFlow, which this install lacks: "
                                        "pip install 'livemask[tf]'")
        from livemask.models.backends.keras_model import load_keras_model, resolve_model_path
        from livemask.models.keras_layers import read_spec

        key = "classifier.explain_model"
        source = resolve_model_path(self.explain_model)
        model = load_keras_model(self.explain_model, key)
        recorded = self.contract.get("exported_from_sha256")
        if recorded is not None and file_sha256(source) != recorded:
            raise ModelFileError(f"{source}: not the Keras model {self.path.name} was exported from (SHA-256 "
                                 f"differs; {key}); export it again with 'livemask export'")
        spec = read_spec(model)
        if spec != self.spec:
            raise ModelFileError(f"{source}: its contract differs from {self.path.name}'s ({key})")
        return model

    def _check_shapes(self, input_shape, output_shape) -> None:
        """Input (B, S, S, 3) with S the contract's size; output (B, C) with C its class count."""
        s, names = self.spec.input_size, list(self.spec.class_names)
        dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in input_shape]
        output_shape = [int(d) if isinstance(d, (int, np.integer)) else None for d in output_shape]
        if len(dims) != 4 or dims[1:] != [s, s, 3]:
            raise ModelFileError(f"{self.path}: input shape {list(input_shape)} does not match the contract "
                                 f"(batch, {s}, {s}, 3)")
        if len(output_shape) != 2 or output_shape[1] != len(names):
            raise ModelFileError(f"{self.path}: {output_shape[-1]} outputs but the contract names "
                                 f"{len(names)} classes {names}")

    def _probe(self) -> None:
        """One real batch: the file runs, and its output has one probability per class."""
        s = self.spec.input_size
        try:
            out = self._run(np.zeros((1, s, s, 3), np.float32))
        except ModelFileError:
            raise
        except Exception as err:
            raise ModelFileError(f"{self.path}: cannot run model ({exception_line(err)})") from None
        self._check_shapes((1, s, s, 3), out.shape)


class OnnxClassifier(ExportedClassifier):
    """An ``.onnx`` file exported by ``livemask export`` run with ONNX Runtime on the CPU.

    ONNX Runtime takes any batch size, so batches are not padded (only split at the largest
    of ``batch_sizes``).
    """

    kind = "onnx"
    pad_batches = False

    def __init__(self, path: Path, batch_sizes=DEFAULT_BATCH_SIZES, explain_model: str | None = None,
                 threads: int = 0):
        super().__init__(path, batch_sizes, explain_model, threads)
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelFileError(f"{self.path}: running .onnx models needs onnxruntime: "
                                 "pip install 'livemask[lite]' (or pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: they become our own one-line message
        # no busy-waiting between batches: on a shared or small machine the spinning threads take the
        # cores the detector and the capture thread need (measured 1.2-2.1 vs 0.8-0.9 ms/face under load)
        options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # InvalidProtobuf, Fail, ... for a file that is not an ONNX model
            raise ModelFileError(f"{self.path}: not a readable ONNX model ("
                                 f"{exception_line(err)})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ModelFileError(f"{self.path}: no livemask contract in the ONNX metadata (key '{METADATA_KEY}'); "
                                 "export the model with 'livemask export'")
        self.spec = ModelSpec.from_json(meta[METADATA_KEY], str(self.path))
        self.contract = json.loads(meta[METADATA_KEY])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input and one output, got {len(inputs)} and "
                                 f"{len(outputs)}")
        self._input, self._output = inputs[0].name, outputs[0].name
        self._check_shapes(inputs[0].shape, outputs[0].shape)
        self._probe()

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output], {self._input: x})[0]


class LiteRTClassifier(ExportedClassifier):
    """A ``.tflite`` file (float or int8) run with LiteRT's interpreter (``ai-edge-litert``).

    An interpreter's tensors are allocated for one batch size, so there is one interpreter
    per size in ``batch_sizes`` (made when first needed) and batches are padded up to them.
    Models with int8 / uint8 inputs or outputs are (de)quantised with their own parameters.
    """

    kind = "tflite"

    def __init__(self, path: Path, batch_sizes=DEFAULT_BATCH_SIZES, explain_model: str | None = None,
                 threads: int = 0):
        super().__init__(path, batch_sizes, explain_model, threads)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelFileError(f"{self.path}: running .tflite models needs LiteRT: "
                                 "pip install 'livemask[lite]' (or pip install ai-edge-litert)") from None
        self._Interpreter = Interpreter
        self._content = self.path.read_bytes()
        if self._content[4:8] != b"TFL3":
            raise ModelFileError(f"{self.path}: not a LiteRT (.tflite) model file")
        side = sidecar_path(self.path)
        if not side.is_file():
            raise ModelFileError(f"{self.path}: its contract file {side.name} is missing (written next to the model "
                                 "by 'livemask export'; copy both files)")
        try:
            data = json.loads(side.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise ModelFileError(f"{side}: bad livemask model contract: not JSON "
                                 f"({exception_line(err, with_type=False)})") from None
        digest = hashlib.sha256(self._content).hexdigest()
        if isinstance(data, dict) and data.get("model_sha256") != digest:
            raise ModelFileError(f"{side}: written for another model file (its model_sha256 does not match "
                                 f"{self.path.name}); export again or copy the matching pair")
        self.spec = ModelSpec.from_dict(data, str(side))
        self.contract = data
        self.quantization = data.get("quantization", "none")
        self._interpreters: dict[int, tuple] = {}
        _, inp, out = self._interpreter(1)
        self._check_shapes(list(inp["shape_signature"]), [None, *list(out["shape"])[1:]])
        self._probe()

    def _interpreter(self, batch: int):
        if batch not in self._interpreters:
            try:
                with stderr_to_devnull():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate"
                    it = self._Interpreter(model_content=self._content, num_threads=self.threads)
                inp, out = it.get_input_details(), it.get_output_details()
                if len(inp) != 1 or len(out) != 1:
                    raise ModelFileError(f"{self.path}: expected one input and one output, got {len(inp)} and "
                                         f"{len(out)}")
                it.resize_tensor_input(inp[0]["index"], [batch, *list(inp[0]["shape"])[1:]])
                with stderr_to_devnull():
                    it.allocate_tensors()
            except ModelFileError:
                raise
            except Exception as err:
                raise ModelFileError(f"{self.path}: cannot load LiteRT model ("
                                     f"{exception_line(err)})") from None
            self._interpreters[batch] = (it, it.get_input_details()[0], it.get_output_details()[0])
        return self._interpreters[batch]

    def _run(self, x: np.ndarray) -> np.ndarray:
        it, inp, out = self._interpreter(len(x))
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

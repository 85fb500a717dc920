"""The classifier's contract as plain data, without Keras.

:class:`ModelSpec` says what a caller must feed the model and how to read its output:
input size, colour order, the 0-255 -> network scaling, the crop rule and margin it was
trained with, the class names in output order and the calibration temperature. A ``.keras``
file carries it in its ``Preprocess`` / ``ClassProbabilities`` layers
(:mod:`livemask.models.keras_layers`); an exported ``.onnx`` or ``.tflite`` file carries it
as JSON (:meth:`ModelSpec.to_json`), in the ONNX metadata or in a sidecar file. This
module imports neither Keras nor TensorFlow, so the lean runtimes can use it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from livemask.core.errors import ModelFileError

SPEC_FORMAT = "livemask.classifier/1"  # written into every exported contract of a box-crop model
# an aligned-crop model's contract: a reader that does not know the crop rule must refuse it, not crop by the box
SPEC_FORMAT_ALIGNED = "livemask.classifier/2"
SPEC_FORMATS = (SPEC_FORMAT, SPEC_FORMAT_ALIGNED)
CROP_RULES = ("box", "aligned")  # livemask.models.crop.CROP_RULES (spec imports neither OpenCV nor Keras)


@dataclass(frozen=True)
class ModelSpec:
    """What a caller needs to feed the model: read from the model, never assumed."""

    input_size: int
    channel_order: str
    scale: float
    offset: float
    crop_margin: float
    class_names: tuple[str, ...]
    temperature: float = 1.0
    crop_rule: str = "box"  # "box" (v3, v4) or "aligned" (by the five landmarks; tried, not shipped)

    def pixel_for(self, model_value: float) -> float:
        """The 0-255 input value that the model's preprocessing maps to ``model_value``."""
        return (model_value - self.offset) / self.scale

    def class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise ValueError(f"unknown class {name!r}; the model's classes are {list(self.class_names)}")
        return self.class_names.index(name)

    # -- the exported form ----------------------------------------------------------------
    def to_dict(self) -> dict:
        data = {**asdict(self), "class_names": list(self.class_names)}
        if self.crop_rule == "box":  # written as before: older readers still read box-crop models
            del data["crop_rule"]
            return {"format": SPEC_FORMAT, **data}
        return {"format": SPEC_FORMAT_ALIGNED, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object, where: str) -> ModelSpec:
        """Validate an exported contract; anything wrong is a one-line :class:`ModelFileError`."""

        def bad(what: str) -> ModelFileError:
            return ModelFileError(f"{where}: bad livemask model contract: {what}")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") not in SPEC_FORMATS:
            raise bad(f"format {data.get('format')!r}, expected one of {list(SPEC_FORMATS)}")
        missing = [k for k in ("input_size", "channel_order", "scale", "offset", "crop_margin", "class_names",
                               "temperature") if k not in data]
        if missing:
            raise bad("missing " + ", ".join(missing))

        def number(key: str) -> float:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(f"{key} must be a finite number, got {v!r}")
            return float(v)

        size = data["input_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise bad(f"input_size must be a positive integer, got {size!r}")
        if data["channel_order"] not in ("RGB", "BGR"):
            raise bad(f"channel_order must be RGB or BGR, got {data['channel_order']!r}")
        names = data["class_names"]
        if (not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) and n for n in names)
                or len(set(names)) != len(names)):
            raise bad(f"class_names must be two or more distinct names, got {names!r}")
        scale, offset, margin, temperature = (number(k) for k in ("scale", "offset", "crop_margin", "temperature"))
        if scale == 0:
            raise bad("scale must not be 0")
        if margin < 0:
            raise bad(f"crop_margin must be >= 0, got {margin}")
        if not 0.05 <= temperature <= 100:
            raise bad(f"temperature must be in [0.05, 100], got {temperature}")
        rule = data.get("crop_rule", "box") if data["format"] == SPEC_FORMAT_ALIGNED else "box"
        if rule not in CROP_RULES:
            raise bad(f"crop_rule must be one of {list(CROP_RULES)}, got {rule!r}")
        if data["format"] == SPEC_FORMAT and "crop_rule" in data:
            raise bad(f"crop_rule needs format {SPEC_FORMAT_ALIGNED!r}")
        return cls(size, data["channel_order"], scale, offset, margin, tuple(names), temperature, rule)

    @classmethod
    def from_json(cls, text: str, where: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise ModelFileError(f"{where}: bad livemask model contract: not JSON ({err})") from None
        return cls.from_dict(data, where)

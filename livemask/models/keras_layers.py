"""Keras layers that carry the classifier's contract inside the model file.

``Preprocess`` is the model's first layer: it records the colour order the model
wants (``RGB``), the crop rule (``box`` or ``aligned``, :mod:`livemask.models.crop`) and margin it
was trained with, and turns 0-255 pixels into the
network's range (``x * scale + offset``). ``ClassProbabilities`` is its last layer: a
softmax that records the class names in output order. Code reads both back from the
loaded model; no class index, colour conversion or scaling is written anywhere else. :func:`read_spec`
returns them as a :class:`~livemask.models.spec.ModelSpec`, which exported models carry as JSON.
"""

from __future__ import annotations

import keras

from livemask.core.errors import ModelFileError
from livemask.models.spec import CROP_RULES, ModelSpec  # the keras-free contract; re-exported here


@keras.saving.register_keras_serializable(package="livemask")
class Preprocess(keras.layers.Layer):
    def __init__(self, channel_order: str = "RGB", scale: float = 1 / 127.5, offset: float = -1.0,
                 crop_margin: float = 0.2, crop_rule: str = "box", **kwargs):
        super().__init__(**kwargs)
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {channel_order!r}")
        self.channel_order = channel_order
        self.scale = float(scale)
        self.offset = float(offset)
        self.crop_margin = float(crop_margin)
        if crop_rule not in CROP_RULES:
            raise ValueError(f"crop_rule must be one of {list(CROP_RULES)}, got {crop_rule!r}")
        self.crop_rule = crop_rule

    def call(self, x):
        return x * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "channel_order": self.channel_order, "scale": self.scale,
                "offset": self.offset, "crop_margin": self.crop_margin,
                **({} if self.crop_rule == "box" else {"crop_rule": self.crop_rule})}


@keras.saving.register_keras_serializable(package="livemask")
class ClassProbabilities(keras.layers.Layer):
    """Softmax over ``logits / temperature``; records the class names in output order.

    ``temperature`` is fitted after training on faces that were not trained on (see
    ``livemask.data.temperature``), so a probability of 0.9 is right about nine times in ten.
    Models saved before calibration existed load with temperature 1.
    """

    def __init__(self, class_names=("mask", "no_mask"), temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.class_names = tuple(class_names)
        if not (isinstance(temperature, (int, float)) and 0.05 <= float(temperature) <= 100):
            raise ValueError(f"temperature must be a number in [0.05, 100], got {temperature!r}")
        self.temperature = float(temperature)

    def call(self, logits):
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def get_config(self):
        return {**super().get_config(), "class_names": list(self.class_names), "temperature": self.temperature}


def read_spec(model: keras.Model) -> ModelSpec:
    pre = [layer for layer in model.layers if isinstance(layer, Preprocess)]
    head = [layer for layer in model.layers if isinstance(layer, ClassProbabilities)]
    if len(pre) != 1 or len(head) != 1:
        raise ModelFileError(
            f"model '{model.name}' lacks livemask's Preprocess/ClassProbabilities layers; "
            "train it with 'livemask train'"
        )
    shape = model.input_shape
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise ModelFileError(f"model '{model.name}': expected input (None, S, S, 3), got {shape}")
    p = pre[0]
    out_shape = model.output_shape
    if len(out_shape) != 2 or out_shape[1] != len(head[0].class_names):
        names = list(head[0].class_names)
        raise ModelFileError(f"model '{model.name}': {out_shape[-1]} outputs but {len(names)} class names {names}")
    return ModelSpec(int(shape[1]), p.channel_order, p.scale, p.offset, p.crop_margin, head[0].class_names,
                     head[0].temperature, p.crop_rule)

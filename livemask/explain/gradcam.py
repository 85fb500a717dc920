"""Grad-CAM (Selvaraju et al., 2017) on the log-odds of the target class.

The feature maps of one convolutional layer (found automatically: the input of the last
convolution, see :func:`find_conv_layer`; or named) are
weighted by the spatially averaged gradient of the target's log-odds
``z_t - logsumexp(z_others)`` (see :mod:`livemask.explain.scores`; with two classes
``z_t - z_other``, whose gradient is a positive multiple of the softmax probability's,
without the vanishing gradients of a saturated softmax). All faces go through one
compiled call on a separate functional model that shares the caller's layers.
"""

from __future__ import annotations

import numpy as np

from livemask.core.errors import ConfigError
from livemask.explain.base import Explainer
from livemask.explain.scores import class_head


def find_conv_layer(model, name: str | None = None):
    """The Grad-CAM layer: ``name``, or the feature map that feeds the model's last convolution.

    For livemask's model that is ``block2_relu0`` (8x8), the rectified output of the last block's
    first convolution. Measured on the faces val split (``benchmarks/sweep_gradcam.py``, docs/explanations.md
    "Choosing the Grad-CAM layer"): the map of the last feature map itself (``block2_relu1``, the
    input of the pooled linear head, where Grad-CAM equals CAM) beats a random deletion order less
    often and survives re-initialising the model's weights (Adebayo et al., 2018), so it says more
    about the image than about what the model learned. A model with one convolution gets the last
    spatial feature map after it."""
    if name:
        try:
            layer = model.get_layer(name)
        except ValueError:
            spatial = [la.name for la in model.layers if len(getattr(la.output, "shape", ())) == 4]
            raise ConfigError(f"explain.layer: model has no layer {name!r} (spatial layers: "
                              f"{', '.join(spatial[-6:])})") from None
        if len(layer.output.shape) != 4:
            raise ConfigError(f"explain.layer: layer {name!r} output {tuple(layer.output.shape)} is not (N, h, w, C)")
        return layer
    import keras

    conv_types = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    convs = [i for i, layer in enumerate(model.layers) if isinstance(layer, conv_types)]
    if not convs:
        raise ConfigError(f"model '{model.name}' has no convolutional layer with a spatial output for Grad-CAM")

    def spatial(layer) -> bool:
        shape = getattr(layer.output, "shape", ())
        return len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1

    end = convs[-1] if len(convs) > 1 else len(model.layers)  # before the last convolution, if there are two
    found = [layer for layer in model.layers[convs[0]:end] if spatial(layer)]
    if not found:
        raise ConfigError(f"model '{model.name}' has no convolutional layer with a spatial output for Grad-CAM")
    return found[-1]


class GradCAM(Explainer):
    """Grad-CAM on the target's log-odds; ``layer``: a layer name, or None for the feature map that
    feeds the last convolution."""

    method = "gradcam"

    def __init__(self, classifier, layer: str | None = None, **kwargs):
        super().__init__(classifier, **kwargs)
        import keras
        import tensorflow as tf

        self.layer = find_conv_layer(self.model, layer)
        head = class_head(self.model)
        # a separate model sharing the caller's layers and weights; the caller's model is untouched
        self._features = keras.Model(self.model.inputs, [self.layer.output, head.input], name="livemask_gradcam")
        s, c = self.size, len(self.class_names)
        features = self._features

        def cam(x, targets):
            onehot = tf.one_hot(targets, c, dtype=tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(x)
                fmaps, logits = features(x, training=False)
                target_logit = tf.reduce_sum(logits * onehot, axis=1)
                others = tf.where(onehot > 0, tf.fill(tf.shape(logits), -1e9), logits)
                score = target_logit - tf.reduce_logsumexp(others, axis=1) if c > 1 else target_logit
            grads = tape.gradient(score, fmaps)  # faces are independent in inference mode
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            return tf.reduce_sum(weights * fmaps, axis=-1)

        signature = [tf.TensorSpec([None, s, s, 3], tf.float32), tf.TensorSpec([None], tf.int32)]
        self._cam_fn = tf.function(cam, autograph=False, input_signature=signature)  # one trace for any batch
        self._chunk = classifier.batch_sizes[-1]

    @property
    def layer_name(self) -> str:
        return self.layer.name

    def _raw_maps(self, x, targets, logits):
        if len(x) == 0:  # TF's batch norm refuses an empty batch
            return np.zeros((0, *self.layer.output.shape[1:3]), np.float32)
        out = []
        for start in range(0, len(x), self._chunk):
            chunk = slice(start, start + self._chunk)
            out.append(self._cam_fn(x[chunk], targets[chunk].astype(np.int32)).numpy())
        return np.concatenate(out)

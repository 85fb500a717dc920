"""The score every explanation explains and measures: the target class's log-odds.

For logits ``z`` (the input of the model's ``ClassProbabilities`` layer, the layer named
``logits``) and a target class ``t`` the score is the logit margin

    s_t = z_t - logsumexp(z_j for j != t)

which is ``log(p_t / (1 - p_t))`` for the softmax of the raw logits: the target's log-odds
against all other classes together (with two classes simply ``z_t - z_other``). It does
not saturate: a face at p = 0.99999 still has room to move, so hiding a patch or deleting
pixels shows up in the score where the probability would stay at 1.0000. The model's
calibration ``temperature`` only divides the logits, so it rescales every score by the same
factor and changes no map or ranking; the raw logits are used. The probability (the
softmax of ``z / temperature``, exactly what the model outputs) stays the verdict shown.
"""

from __future__ import annotations

import numpy as np

from livemask.core.errors import ModelFileError
from livemask.core.types import check_array

CHUNK = 128  # inputs per compiled call (bounded memory, one trace for any batch size)


def log_odds(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Logit margin (N,) of class ``targets[i]`` against the others, for logits (N, C)."""
    logits = np.asarray(logits, np.float64)
    n, c = logits.shape
    if n == 0:
        return np.zeros((0,), np.float32)
    rows = np.arange(n)
    target = logits[rows, targets]
    if c == 1:
        return target.astype(np.float32)
    others = logits.copy()
    others[rows, targets] = -np.inf
    top = others.max(axis=1)
    rest = top + np.log(np.exp(others - top[:, None]).sum(axis=1))
    return (target - rest).astype(np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    if z.size == 0:
        return z.astype(np.float32)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def class_head(model):
    """The model's ``ClassProbabilities`` layer (its input are the logits)."""
    from livemask.models.keras_layers import ClassProbabilities

    heads = [layer for layer in model.layers if isinstance(layer, ClassProbabilities)]
    if len(heads) != 1:
        raise ModelFileError(f"model '{model.name}' has no ClassProbabilities layer to take the logits from")
    return heads[0]


class LogitScorer:
    """Logits of a classifier's model through one compiled call, on a separate functional model
    that shares the caller's layers and weights (the caller's model is never changed)."""

    def __init__(self, classifier):
        import keras
        import tensorflow as tf

        model = classifier.model
        self.head = class_head(model)
        self.temperature = float(self.head.temperature)
        self.class_names: tuple[str, ...] = tuple(classifier.spec.class_names)
        self.size = classifier.spec.input_size
        self._model = keras.Model(model.inputs, self.head.input, name="livemask_logits")
        s = self.size
        self._call = tf.function(lambda x: self._model(x, training=False), autograph=False,
                                 input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw logits (N, C) for model inputs (N, S, S, 3) float32."""
        c = len(self.class_names)
        if len(x) == 0:  # TF's batch norm refuses an empty batch
            return np.zeros((0, c), np.float32)
        check_array("model input", x, (None, self.size, self.size, 3), np.float32)
        return np.concatenate([self._call(x[i:i + CHUNK]).numpy() for i in range(0, len(x), CHUNK)])

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """What the model outputs for these logits: the softmax of ``logits / temperature``."""
        return softmax(logits, self.temperature)

    def scores(self, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Log-odds (N,) of class ``targets[i]`` for input ``x[i]``."""
        return log_odds(self.logits(x), targets)

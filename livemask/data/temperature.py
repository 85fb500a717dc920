"""Temperature scaling and expected calibration error (ECE).

A single temperature ``T`` divides the logits before the softmax; it is fitted by
minimising the negative log-likelihood on faces that were not trained on (Guo et al.,
2017), which leaves the predicted class unchanged and makes the top probability mean
what it says. ECE: 15 equal-width confidence bins on the predicted class, the
count-weighted mean gap between confidence and accuracy.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] with the least NLL (a fine log grid, then a refinement)."""
    if not len(labels):
        raise ValueError("no calibration faces")
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
    best = min(grid, key=lambda t: nll(logits, labels, t))
    fine = best * np.exp(np.linspace(-0.03, 0.03, 61))
    return float(min(fine, key=lambda t: nll(logits, labels, t)))


def expected_calibration_error(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0,
                               bins: int = ECE_BINS) -> float:
    return ece_of_probabilities(softmax(logits, temperature), labels, bins)


def ece_of_probabilities(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    if not len(labels):
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def logits_of(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The model's pre-softmax outputs (its ``logits`` layer) for model-ready inputs."""
    import keras

    head = keras.Model(model.inputs, model.get_layer("logits").output)
    return np.concatenate([np.asarray(head(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])

"""Synthetic occluders for training crops: things in front of a face that are not masks, and masks
that do not look like the usual blue surgical one.

Every function takes a BGR uint8 face crop (S, S, 3), the face's five landmarks in pixels of that
crop (left eye, right eye, nose tip, left and right mouth corner; from the aligned crop rule they sit
at fixed places) and a ``numpy.random.Generator``, and returns a new crop of the same shape and dtype;
the label never changes. Drawing is done at 4x the crop size and shrunk (smooth edges).

* ``no_mask`` faces: a skin-coloured hand (palm and fingers) over the mouth or nose, a phone, a cup,
  a scarf up to the lower lip, strands of hair across the nose and mouth.
* masked faces (``mask``, ``mask_incorrect``): a hand in front; the mask recoloured (pink, beige,
  black, white, any colour) or given a pattern (stripes, dots, checks, blobs), keeping its shading;
  a valve: a disk with a ring on one side of the mask.

:func:`occlude` picks one by the class and a seed; :func:`occluded_copies` makes one copy per crop,
reproducibly from one seed.
"""

from __future__ import annotations

import cv2
import numpy as np

UP = 4  # drawing resolution (x the crop size)
NO_MASK_KINDS = ("hand", "phone", "cup", "scarf", "hair")
NO_MASK_P = (0.4, 0.2, 0.12, 0.13, 0.15)
MASK_KINDS = ("hand", "recolour", "pattern", "valve")
MASK_P = (0.25, 0.3, 0.3, 0.15)
INCORRECT_KINDS = ("hand", "recolour", "pattern")
INCORRECT_P = (0.4, 0.3, 0.3)
SKIN_TONES_BGR = ((190, 210, 240), (150, 180, 225), (110, 150, 200), (80, 115, 165), (50, 75, 110))
MASK_COLOURS_BGR = ((180, 150, 245), (150, 190, 225), (30, 30, 30), (245, 245, 245), (60, 60, 160),
                    (150, 100, 40), (90, 140, 90))  # pink, beige, black, white, dark red, blue, green


def _geometry(lm: np.ndarray):
    """Eye centre, unit vectors along (x) and down (y) the face, eye distance, nose tip, mouth centre."""
    lm = np.asarray(lm, np.float64)
    eyes = (lm[0] + lm[1]) / 2
    ex = lm[1] - lm[0]
    d = max(float(np.hypot(*ex)), 1e-3)
    ux = ex / d
    uy = np.array([-ux[1], ux[0]])
    return eyes, ux, uy, d, lm[2], (lm[3] + lm[4]) / 2


def _alpha(size: int, draw) -> np.ndarray:
    """(size, size) float32 alpha in [0, 1] from ``draw(canvas, k)`` on a (size*UP)^2 canvas (k = UP)."""
    canvas = np.zeros((size * UP, size * UP), np.uint8)
    draw(canvas, UP)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _pts(points, k: int) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * k).astype(np.int32)


def _blend(img: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32) * (1 - alpha[..., None]) + layer.astype(np.float32) * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _shade(size: int, colour, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A (size, size, 3) float layer of ``colour`` with a linear light gradient in a random direction."""
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    g = 1 + strength * (np.cos(a) * xx + np.sin(a) * yy) * 2
    return np.asarray(colour, np.float32)[None, None, :] * g[..., None]


def skin_colour(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The median BGR colour of the cheeks (below each eye, beside the nose)."""
    eyes, ux, uy, d, _nose, _ = _geometry(lm)
    s = img.shape[0]
    samples = []
    for side in (-1, 1):
        c = eyes + side * 0.35 * d * ux + 0.45 * d * uy
        r = max(int(0.1 * d), 1)
        x, y = round(c[0]), round(c[1])
        patch = img[max(y - r, 0):min(y + r + 1, s), max(x - r, 0):min(x + r + 1, s)]
        if patch.size:
            samples.append(patch.reshape(-1, 3))
    if not samples:
        return np.array([120, 150, 200], np.float32)
    return np.median(np.concatenate(samples), axis=0).astype(np.float32)


def hand(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator, over: str = "mouth") -> np.ndarray:
    """A skin-coloured hand: a palm and four fingers, over the mouth (or the nose), at a random angle."""
    s = img.shape[0]
    _eyes, ux, uy, d, nose, mouth = _geometry(lm)
    centre = (mouth if over == "mouth" else (nose + mouth) / 2) + rng.normal(0, 0.12 * d, 2)
    angle = rng.uniform(-0.9, 0.9) + (np.pi if rng.random() < 0.5 else 0.0)  # fingers to the left or right
    dirx = np.cos(angle) * ux + np.sin(angle) * uy  # along the fingers
    diry = np.array([-dirx[1], dirx[0]])
    scale = d * rng.uniform(0.8, 1.2)
    palm = centre - dirx * 0.5 * scale
    finger_len = scale * rng.uniform(0.7, 1.0)
    fw = scale * 0.2

    def draw(canvas, k):
        cv2.ellipse(canvas, tuple(_pts(palm, k)), (max(int(0.55 * scale * k), 1), max(int(0.5 * scale * k), 1)),
                    float(np.degrees(np.arctan2(dirx[1], dirx[0]))), 0, 360, 255, -1, cv2.LINE_AA)
        for j in range(4):
            base = palm + dirx * 0.45 * scale + diry * (j - 1.5) * fw * 1.05
            tip = base + dirx * finger_len * (0.85 if j in (0, 3) else 1.0)
            cv2.line(canvas, tuple(_pts(base, k)), tuple(_pts(tip, k)), 255, max(int(fw * k), 1), cv2.LINE_AA)
    alpha = _alpha(s, draw)
    # the face's own skin, pulled towards a skin tone (the cheek sample can be shadow or make-up), one brightness
    tone = np.asarray(SKIN_TONES_BGR[int(rng.integers(len(SKIN_TONES_BGR)))], np.float32)
    colour = (0.6 * skin_colour(img, lm) + 0.4 * tone) * rng.uniform(0.85, 1.15)
    layer = _shade(s, colour, rng)
    # the finger gaps: darker lines between fingers
    def gaps(canvas, k):
        for j in range(3):
            base = palm + dirx * 0.45 * scale + diry * (j - 1.0) * fw * 1.05
            cv2.line(canvas, tuple(_pts(base, k)), tuple(_pts(base + dirx * finger_len, k)), 255, max(k, 1),
                     cv2.LINE_AA)
    layer *= 1 - 0.5 * _alpha(s, gaps)[..., None]
    return _blend(img, layer, alpha)


def phone(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark rounded rectangle (a phone held to the mouth or cheek), with a thin light edge."""
    s = img.shape[0]
    _eyes, ux, _uy, d, _nose, mouth = _geometry(lm)
    centre = mouth + rng.normal(0, 0.2 * d, 2) + ux * rng.choice([-0.4, 0.0, 0.4]) * d
    w, h = d * rng.uniform(0.5, 0.8), d * rng.uniform(1.0, 1.6)
    angle = float(np.degrees(np.arctan2(ux[1], ux[0])) + rng.uniform(-40, 40))

    def draw(canvas, k):
        box = cv2.boxPoints(((centre[0] * k, centre[1] * k), (w * k, h * k), angle))
        cv2.fillPoly(canvas, [box.astype(np.int32)], 255, cv2.LINE_AA)
        cv2.polylines(canvas, [box.astype(np.int32)], True, 255, max(int(0.12 * w * k), 1), cv2.LINE_AA)
    alpha = _alpha(s, draw)
    colour = rng.choice([(25, 25, 25), (60, 60, 60), (200, 200, 205), (120, 80, 40), (40, 40, 120)])
    return _blend(img, _shade(s, colour, rng, 0.4), alpha)


def cup(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cup or glass at the mouth: a slightly tapered body with an elliptic rim, a plain colour."""
    s = img.shape[0]
    _eyes, ux, uy, d, _nose, mouth = _geometry(lm)
    top = mouth + uy * rng.uniform(-0.15, 0.2) * d + ux * rng.normal(0, 0.15 * d)
    w = d * rng.uniform(0.8, 1.2)
    h = d * rng.uniform(1.0, 1.6)

    def draw(canvas, k):
        body = [top - ux * w / 2, top + ux * w / 2, top + ux * w * 0.4 + uy * h, top - ux * w * 0.4 + uy * h]
        cv2.fillPoly(canvas, [_pts(body, k)], 255, cv2.LINE_AA)
        cv2.ellipse(canvas, tuple(_pts(top, k)), (max(int(w / 2 * k), 1), max(int(w * 0.15 * k), 1)),
                    float(np.degrees(np.arctan2(ux[1], ux[0]))), 0, 360, 255, -1, cv2.LINE_AA)
    alpha = _alpha(s, draw)
    colour = rng.integers(30, 250, 3)
    return _blend(img, _shade(s, colour, rng, 0.5), alpha)


def scarf(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scarf or collar from below the crop up to the lower lip: the mouth stays partly in view."""
    s = img.shape[0]
    _eyes, ux, uy, d, _nose, mouth = _geometry(lm)
    edge = mouth + uy * rng.uniform(0.1, 0.35) * d
    tilt = rng.uniform(-0.25, 0.25)

    def draw(canvas, k):
        a = edge - ux * 2 * d + uy * tilt * 2 * d
        b = edge + ux * 2 * d - uy * tilt * 2 * d
        poly = [a, b, b + uy * 3 * d, a + uy * 3 * d]
        cv2.fillPoly(canvas, [_pts(poly, k)], 255, cv2.LINE_AA)
    alpha = _alpha(s, draw)
    return _blend(img, _textured(s, rng.integers(20, 240, 3), rng), alpha)


def hair(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strands of hair across the nose and mouth: thin dark curves, mostly see-through."""
    s = img.shape[0]
    eyes, ux, uy, d, _nose, mouth = _geometry(lm)
    colour = rng.choice([(20, 20, 25), (30, 50, 80), (60, 90, 140), (120, 170, 210)])
    n = int(rng.integers(6, 16))
    side = rng.choice([-1.0, 1.0])

    def draw(canvas, k):
        for _ in range(n):
            start = eyes + ux * side * rng.uniform(0.2, 0.9) * d - uy * rng.uniform(0.3, 0.8) * d
            end = mouth + ux * side * rng.uniform(-0.5, 0.3) * d + uy * rng.uniform(0.2, 1.0) * d
            mid = (start + end) / 2 + ux * side * rng.uniform(0.1, 0.5) * d
            t = np.linspace(0, 1, 12)[:, None]
            curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t ** 2 * end
            cv2.polylines(canvas, [_pts(curve, k)], False, 255, max(int(rng.uniform(0.02, 0.05) * d * k), 1),
                          cv2.LINE_AA)
    alpha = _alpha(s, draw) * rng.uniform(0.7, 1.0)
    return _blend(img, _shade(s, colour, rng), alpha)


def _textured(size: int, colour, rng: np.random.Generator) -> np.ndarray:
    """A float (size, size, 3) layer: a plain colour with a pattern (stripes, dots, checks or blobs)."""
    base = np.asarray(colour, np.float32)
    other = rng.integers(0, 256, 3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = int(rng.integers(4))
    period = rng.uniform(4, 12)
    a = rng.uniform(0, np.pi)
    u = np.cos(a) * xx + np.sin(a) * yy
    v = -np.sin(a) * xx + np.cos(a) * yy
    if kind == 0:  # stripes
        m = (np.sin(u * 2 * np.pi / period) > 0).astype(np.float32)
    elif kind == 1:  # dots
        m = ((np.mod(u, period) - period / 2) ** 2 + (np.mod(v, period) - period / 2) ** 2 < (period / 4) ** 2)
        m = m.astype(np.float32)
    elif kind == 2:  # checks
        m = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    else:  # blobs (flowers, camouflage)
        noise = cv2.resize(rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        m = (noise > 0.55).astype(np.float32)
    m = cv2.GaussianBlur(m, (3, 3), 0)
    return base[None, None] * (1 - m[..., None]) + other[None, None] * m[..., None]


def mask_region(img: np.ndarray, lm: np.ndarray, on_chin: bool = False) -> np.ndarray:
    """(S, S) float32 in [0, 1]: the pixels of the mask, found as the colour of the mask's middle (below the
    nose, or on the chin for a mask worn low) inside the lower face, where the alignment puts the mask."""
    s = img.shape[0]
    _eyes, ux, uy, d, nose, mouth = _geometry(lm)
    core = mouth + uy * (0.45 if on_chin else 0.0) * d + (0 if on_chin else -0.2) * (mouth - nose)
    r = max(int(0.15 * d), 1)
    x, y = round(core[0]), round(core[1])
    patch = img[max(y - r, 0):min(y + r + 1, s), max(x - r, 0):min(x + r + 1, s)].reshape(-1, 3)
    if not len(patch):
        return np.zeros((s, s), np.float32)
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).astype(np.float32)
    ref = cv2.cvtColor(np.median(patch, 0).astype(np.uint8)[None, None], cv2.COLOR_BGR2LAB).astype(np.float32)[0, 0]
    dist = np.sqrt(((lab[..., 1:] - ref[1:]) ** 2).sum(-1) + 0.15 * (lab[..., 0] - ref[0]) ** 2)

    def draw(canvas, k):
        top = nose + uy * (0.5 if on_chin else -0.35) * d
        poly = [top - ux * 1.0 * d, top + ux * 1.0 * d, mouth + ux * 1.1 * d + uy * 1.3 * d,
                mouth - ux * 1.1 * d + uy * 1.3 * d]
        cv2.fillPoly(canvas, [_pts(poly, k)], 255, cv2.LINE_AA)
    region = _alpha(s, draw)
    m = (dist < 22).astype(np.float32) * region
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.GaussianBlur(m, (3, 3), 0)


def recolour(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator, pattern: bool = False,
             on_chin: bool = False) -> np.ndarray:
    """The mask recoloured (pink, beige, black, white, ... or a pattern), keeping its folds' shading."""
    s = img.shape[0]
    m = mask_region(img, lm, on_chin)
    if m.sum() < 0.03 * s * s:
        return img.copy()
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = float((grey * m).sum() / m.sum())
    shading = np.clip(grey / max(mean, 1.0), 0.5, 1.5)[..., None]
    colour = MASK_COLOURS_BGR[int(rng.integers(len(MASK_COLOURS_BGR)))] if rng.random() < 0.7 else \
        tuple(int(v) for v in rng.integers(0, 256, 3))
    layer = _textured(s, colour, rng) if pattern else np.broadcast_to(np.asarray(colour, np.float32), img.shape)
    return _blend(img, layer * shading, m)


def valve(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A respirator valve: a disk with a darker ring on one side of the mask, below the nose."""
    s = img.shape[0]
    _eyes, ux, uy, d, nose, mouth = _geometry(lm)
    c = (nose + mouth) / 2 + ux * rng.choice([-1, 1]) * rng.uniform(0.35, 0.55) * d + uy * 0.2 * d
    r = d * rng.uniform(0.18, 0.28)
    disk = _alpha(s, lambda cv, k: cv2.circle(cv, tuple(_pts(c, k)), int(r * k), 255, -1, cv2.LINE_AA))
    ring = _alpha(s, lambda cv, k: cv2.circle(cv, tuple(_pts(c, k)), int(r * 0.7 * k), 255, max(int(0.12 * r * k), 1),
                                              cv2.LINE_AA))
    colour = np.asarray(rng.choice([(235, 235, 235), (40, 40, 40), (200, 120, 40), (60, 60, 200)]), np.float32)
    out = _blend(img, _shade(s, colour, rng, 0.5), disk)
    return _blend(out, _shade(s, colour * 0.5, rng, 0.2), ring)


def occlude(img: np.ndarray, lm: np.ndarray, label: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One occluder for a face of class ``label`` (0 mask, 1 no_mask, 2 mask_incorrect): the new crop and
    the kind drawn."""
    if label == 1:
        kind = str(rng.choice(NO_MASK_KINDS, p=NO_MASK_P))
    elif label == 0:
        kind = str(rng.choice(MASK_KINDS, p=MASK_P))
    else:
        kind = str(rng.choice(INCORRECT_KINDS, p=INCORRECT_P))
    if kind == "hand":
        over = "mouth" if label != 1 or rng.random() < 0.7 else "nose"
        return hand(img, lm, rng, over), kind
    if kind in ("recolour", "pattern"):
        return recolour(img, lm, rng, kind == "pattern", on_chin=label == 2), kind
    return {"phone": phone, "cup": cup, "scarf": scarf, "hair": hair, "valve": valve}[kind](img, lm, rng), kind


def occluded_copies(crops: np.ndarray, landmarks: np.ndarray, labels: np.ndarray, typical: np.ndarray,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One occluded copy of every crop (N, S, S, 3) and the kinds drawn (N,); ``landmarks`` (N, 5, 2) in crop
    pixels, the ``typical`` (5, 2) positions where a face has none. The same seed gives the same copies."""
    out = np.empty_like(crops)
    kinds = []
    for i in range(len(crops)):
        rng = np.random.default_rng([seed, i])
        lm = landmarks[i] if np.isfinite(landmarks[i]).all() else typical
        out[i], kind = occlude(crops[i], lm, int(labels[i]), rng)
        kinds.append(kind)
    return out, np.asarray(kinds)

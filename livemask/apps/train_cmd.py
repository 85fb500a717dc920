"""``livemask train``: train the mask classifier from a data folder laid out like ../shared/data."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from livemask.core.errors import ConfigError, InputImageError
from livemask.models.crop import DEFAULT_MARGIN

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder with faces/ (and scenes/)")
    parser.add_argument("--out", type=Path, default=Path("models/mask_classifier.keras"), help="model file to write")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=64, help="classifier input side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", choices=("box", "aligned"), default="box",
                        help="crop rule stored in the model: the box (shipped) or aligned by the five landmarks")
    parser.add_argument("--occluders", action=argparse.BooleanOptionalAction, default=False,
                        help="train on occluded copies too: hands, phones, cups over unmasked faces, recoloured masks")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="crop margin stored in the model: the square crop's side is (1 + margin) times the face "
                             f"box's longer side (default {DEFAULT_MARGIN:g}, v4's; v4.1 runs v4 at 0.32)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this model's weights (same architecture) instead of random ones")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine schedule)")
    parser.add_argument("--teacher", type=Path, action="append", default=[],
                        help="distil from this model (repeatable: their probabilities are averaged, each on its own "
                             "crop rule); the student keeps --crop and the shipped network")
    parser.add_argument("--distill-alpha", type=float, default=0.7,
                        help="weight of the teacher's soft labels in the loss, in [0, 1] (the rest: the hard label)")
    parser.add_argument("--distill-temperature", type=float, default=3.0,
                        help="temperature of the soft labels, in [1, 10]")
    parser.add_argument("--cache", type=Path, default=Path(".cache/train-crops.npz"),
                        help="crop cache (built once with the configured detector); delete it to rebuild")


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.data.train import CLASS_NAMES, Distillation, train

    if not (args.data / "faces").is_dir():
        raise InputImageError(f"{args.data}: expected a faces/ folder (with_mask/, without_mask/, manifest.csv)")
    if not (0 < args.lr <= 1) or args.epochs < 1:
        raise ConfigError(f"--lr must be in (0, 1] and --epochs at least 1, got {args.lr} and {args.epochs}")
    margin = args.margin
    if not (0 <= margin <= 1):
        raise ConfigError(f"--margin must be in [0, 1], got {margin:g}")
    if args.init is not None and not args.init.is_file():
        raise ConfigError(f"--init {args.init}: no such model file")
    for teacher in args.teacher:
        if not teacher.is_file():
            raise ConfigError(f"--teacher {teacher}: no such model file")
        if teacher.suffix != ".keras":
            raise ConfigError(f"--teacher {teacher}: a teacher must be a .keras model file")
    if not 0 <= args.distill_alpha <= 1 or not 1 <= args.distill_temperature <= 10:
        raise ConfigError(f"--distill-alpha must be in [0, 1] and --distill-temperature in [1, 10], got "
                          f"{args.distill_alpha} and {args.distill_temperature}")
    if args.out.suffix != ".keras":
        raise InputImageError(f"{args.out}: the model file must end in .keras")
    teachers = tuple(args.teacher)
    if teachers:  # a file that is not a model, or of other classes, fails here in one line, before the crops
        from livemask.models.backends.keras_model import checked_spec, load_keras_model
        from livemask.models.keras_layers import read_spec

        for teacher in teachers:
            spec = checked_spec(load_keras_model(str(teacher), key="--teacher"), str(teacher), read_spec)
            if spec.class_names != CLASS_NAMES:
                raise ConfigError(f"--teacher {teacher}: classes {list(spec.class_names)}, "
                                  f"expected {list(CLASS_NAMES)}")
            if spec.crop_margin != margin:
                raise ConfigError(f"--teacher {teacher}: crop margin {spec.crop_margin:g}, the student's is {margin:g}")
    detector = compose.detector(config)
    report = train(args.data, args.out, detector, size=args.size, epochs=args.epochs, seed=args.seed,
                   cache=args.cache, crop_rule=args.crop, occluders=args.occluders, init=args.init, lr=args.lr,
                   teachers=teachers, distill=Distillation(args.distill_alpha, args.distill_temperature),
                   margin=margin)
    print(json.dumps(report, indent=2))
    # the labels come from the exported file: without a new export they would still be the old model's
    log.info("labels use the exported model: livemask export --format onnx --model %s", args.out)
    return 0

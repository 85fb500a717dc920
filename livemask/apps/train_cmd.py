"""``livemask train``: train the mask classifier from a data folder laid out like ../shared/data."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from livemask.core.errors import ConfigError, InputImageError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder with faces/ (and scenes/)")
    parser.add_argument("--out", type=Path, default=Path("models/mask_classifier.keras"), help="model file to write")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=64, help="classifier input side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", choices=("box", "aligned"), default="box",
                        help="crop rule stored in the model: the box (v3, shipped) or aligned by the five landmarks")
    parser.add_argument("--occluders", action=argparse.BooleanOptionalAction, default=False,
                        help="train on occluded copies too: hands, phones, cups over unmasked faces, recoloured masks")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this model's weights (same architecture) instead of random ones")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine schedule)")
    parser.add_argument("--cache", type=Path, default=Path(".cache/train-crops.npz"),
                        help="crop cache (built once with the configured detector); delete it to rebuild")


def command(args, config) -> int:
    from livemask.apps import compose
    from livemask.data.train import train

    if not (args.data / "faces").is_dir():
        raise InputImageError(f"{args.data}: expected a faces/ folder (with_mask/, without_mask/, manifest.csv)")
    if not (0 < args.lr <= 1) or args.epochs < 1:
        raise ConfigError(f"--lr must be in (0, 1] and --epochs at least 1, got {args.lr} and {args.epochs}")
    if args.init is not None and not args.init.is_file():
        raise ConfigError(f"--init {args.init}: no such model file")
    if args.out.suffix != ".keras":
        raise InputImageError(f"{args.out}: the model file must end in .keras")
    detector = compose.detector(config)
    report = train(args.data, args.out, detector, size=args.size, epochs=args.epochs, seed=args.seed,
                   cache=args.cache, crop_rule=args.crop, occluders=args.occluders, init=args.init, lr=args.lr)
    print(json.dumps(report, indent=2))
    # the labels come from the exported file: without a new export they would still be the old model's
    log.info("labels use the exported model: livemask export --format onnx --model %s", args.out)
    return 0

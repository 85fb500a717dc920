"""The ``livemask`` command: run, image, batch, eval, explain, train.

Every expected failure is a :class:`LivemaskError`; it is printed as one line and the
process exits with the error's status, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from livemask import __version__
from livemask.core.errors import LivemaskError

log = logging.getLogger("livemask")

# command -> module that defines add_arguments(parser) and command(args, config) -> int
COMMANDS = {
    "run": ("livemask.apps.run", "detect and classify faces live from a camera, file, URL or image folder"),
    "image": ("livemask.apps.image_cmd", "annotate still images"),
    "batch": ("livemask.apps.batch_cmd", "process many video files and photos (local process pool or Ray)"),
    "eval": ("livemask.data.evaluate", "measure detection and classification on a labelled folder"),
    "explain": ("livemask.apps.explain_cmd", "Grad-CAM / occlusion maps for every face in images"),
    "train": ("livemask.apps.train_cmd", "train the mask classifier on a data folder"),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: config.yaml of the project)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livemask", description="Real-time face-mask detection with explanations.")
    parser.add_argument("--version", action="version", version=f"livemask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from livemask.config import apply_overrides, load_config, parse_set
    from livemask.core.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    try:
        config = apply_overrides(load_config(args.config), parse_set(args.set), "--set")
        return int(importlib.import_module(args._module).command(args, config) or 0)
    except LivemaskError as err:
        print(f"livemask: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("livemask: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry: run, then leave without TensorFlow's slow interpreter teardown.

    Every output is closed by the time ``main`` returns; TensorFlow's teardown takes one to
    two seconds on 2 cores, which would make the live window's q/Esc feel sluggish.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()

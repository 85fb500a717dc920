"""The ``livemask`` command: run, image, batch, eval, explain, train, serve, export, report.

Every expected failure is a :class:`LivemaskError`; it is printed as one line and the
process exits with the error's status, never with a traceback. Every message that
reaches stderr (errors and log lines) is redacted (no credentials of a URL) and errors
are bounded to one line. Exit statuses are listed in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(_signum, _frame) -> None:
    """Ctrl-C before the command runs: nothing to clean up, so leave at once, without a traceback."""
    os.write(2, b"livemask: interrupted\n")
    os._exit(130)


# first thing, before the heavy imports (numpy, OpenCV, TensorFlow) that take seconds
try:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
except ValueError:  # imported outside the main thread (a test runner): nothing to install
    pass

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402

from livemask import __version__  # noqa: E402
from livemask.core.errors import ConfigError, LivemaskError  # noqa: E402
from livemask.core.redact import redact_text, safe_message  # noqa: E402

log = logging.getLogger("livemask")

EXIT_INTERNAL = 70  # an unexpected error (a bug): one line, the traceback only with --verbose
EXIT_BROKEN_PIPE = 141  # stdout closed by the reader (``livemask image --json | head``), as 128 + SIGPIPE
# environment variables read as config overrides (after the config file, before --set / flags),
# so that a stream URL with credentials need not be on the command line
ENV_OVERRIDES = {"LIVEMASK_SOURCE": "source.source", "LIVEMASK_MAX_PIXELS": "images.max_pixels",
                 "LIVEMASK_ALERT_WEBHOOK": "alerts.webhook", "LIVEMASK_MQTT_URL": "mqtt.url"}

# command -> module that defines add_arguments(parser) and command(args, config) -> int
COMMANDS = {
    "run": ("livemask.apps.run", "detect and classify faces live from a camera, file, URL or image folder"),
    "image": ("livemask.apps.image_cmd", "annotate still images"),
    "batch": ("livemask.apps.batch_cmd", "process many video files and photos (local process pool or Ray)"),
    "eval": ("livemask.apps.eval_cmd", "measure detection and classification on a labelled folder"),
    "explain": ("livemask.apps.explain_cmd", "Grad-CAM / occlusion maps for every face in images"),
    "train": ("livemask.apps.train_cmd", "train the mask classifier on a data folder"),
    "serve": ("livemask.apps.serve_cmd", "browser page and HTTP API (photos, explanations, live stream, webcam)"),
    "export": ("livemask.apps.export_cmd", "export the classifier to ONNX or LiteRT (.tflite), optionally int8"),
    "report": ("livemask.apps.report_cmd", "compliance report (HTML charts, CSV, JSON) from event logs and batches"),
}
# commands that always need TensorFlow; the others import it only when classifier.model_path is a .keras file
TF_COMMANDS = ("explain", "train", "export")
MODEL_FREE_COMMANDS = ("report",)  # commands that never load a model: TensorFlow is never imported for them


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: config.yaml of the project)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {safe_message(message)}\n")


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


class _RedactingFormatter(logging.Formatter):
    """Log lines without URL credentials; each record stays on its line(s) as written."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def error_line(err: BaseException) -> str:
    """``livemask: error: ...`` on one bounded, redacted line."""
    return f"livemask: error: {safe_message(str(err) or type(err).__name__)}"


def _env_overrides() -> dict:
    from livemask.core import safeyaml

    out = {}
    for name, key in ENV_OVERRIDES.items():
        text = os.environ.get(name)
        if text is None:
            continue
        if not text.strip():
            raise ConfigError(f"environment variable {name} is set but empty")
        text_keys = ("source.source", "alerts.webhook", "mqtt.url")  # taken as they are, not parsed as YAML
        out[key] = text.strip() if key in text_keys else safeyaml.loads(text, f"environment {name}")
    return out


_interrupts: list[int] = []  # SIGINTs seen by _raise_interrupt


def _raise_interrupt(signum, _frame) -> None:
    """Ctrl-C while a command runs: KeyboardInterrupt, remembered. Code that catches it and raises
    something else instead (a C extension whose import it interrupts raises "ImportError:
    initialization failed"; a model loader wraps that into its own error) still ends as an interrupt."""
    _interrupts.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> int:
    print("livemask: interrupted", file=sys.stderr, flush=True)
    return 130


def main(argv: list[str] | None = None) -> int:
    try:
        if threading_main():
            signal.signal(signal.SIGINT, _raise_interrupt)  # from here on: KeyboardInterrupt
        return _main(argv)
    except LivemaskError as err:
        if _interrupts and err.exit_code != 130:  # the error came from the interrupt (a load it cut short)
            return _interrupted()
        print(error_line(err), file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as err:  # a bug: still one line; the traceback with --verbose
        if _interrupts:  # not a bug: the interrupt turned into another exception on its way up
            log.debug("interrupted", exc_info=True)
            return _interrupted()
        log.debug("unexpected error", exc_info=True)
        print(f"livemask: error: internal error ({type(err).__name__}: {safe_message(str(err), 200)})",
              file=sys.stderr, flush=True)
        return EXIT_INTERNAL


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_RedactingFormatter(handler.formatter._fmt if handler.formatter else None))
    from livemask.apps.compose import apply_image_limits, apply_overrides, load_config
    from livemask.config import parse_set
    from livemask.core.quiet import import_tensorflow_quietly
    from livemask.models.backends import DEFAULT_MODEL, needs_tensorflow

    config = load_config(args.config)
    config = apply_overrides(config, _env_overrides(), "environment")
    config = apply_overrides(config, parse_set(args.set), "--set")
    apply_image_limits(config)  # pixel limit, before any image is decoded
    # TensorFlow first (as its slow import must not run while a live source is already open), but
    # only when the command or the configured model needs it: exported models run without it
    model_path = config.get("classifier", {}).get("model_path", DEFAULT_MODEL)
    module = importlib.import_module(args._module)
    if args.command in TF_COMMANDS or (args.command not in MODEL_FREE_COMMANDS and needs_tensorflow(model_path)):
        # a command may put something on screen first (the kiosk's start screen), kept painted meanwhile
        screen = module.start_screen(args, config) if hasattr(module, "start_screen") else None
        if screen is not None:
            screen.wait_for(import_tensorflow_quietly)
        else:
            import_tensorflow_quietly()
    return int(module.command(args, config) or 0)


def entry() -> None:
    """Console-script entry: run, then leave without TensorFlow's slow interpreter teardown.

    Every output is closed by the time ``main`` returns; TensorFlow's teardown takes one to
    two seconds on 2 cores, which would make the live window's q/Esc feel sluggish.
    """
    from livemask.apps.kiosk_start import early_start_screen

    # kiosk mode: "Starting..." on screen before the heavy imports, which then run while it stays painted
    early_start_screen(sys.argv[1:], ("livemask.apps.compose", *(module for module, _ in COMMANDS.values())))
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            if stream is sys.stdout:
                code = code or EXIT_BROKEN_PIPE
    os._exit(code)


if __name__ == "__main__":
    entry()

"""The composition root: the only code that turns a config into objects.

It declares which class each ``config.yaml`` section configures (:data:`SCHEMA`, handed
to :mod:`livemask.config`, which imports nothing above ``livemask.core``) and builds the
detector, the classifier, the tracker, the source, the sinks and the engine from a
validated config. Everything below receives built objects (or, for the explanation
window, a function that builds them later), never the config dict.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from face_detector import DETECTORS
from livemask import config as _config
from livemask.config import Config, Schema
from livemask.core.images import ImageLimits
from livemask.core.params import Range, check_fields
from livemask.engine.engine import Engine
from livemask.engine.pipeline import FrameProcessor, PipelineOptions
from livemask.engine.stream import SourceOptions
from livemask.engine.tracker import Tracker
from livemask.explain.suite import ExplainSuite
from livemask.models.backends import FaceClassifier, open_classifier
from livemask.sinks.kiosk import KioskOptions

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """The ``run`` section of config.yaml (see there for the meaning of each key)."""

    headless: bool = False
    output: str | None = None
    events: str | None = None
    snapshot_dir: str = "snapshots"
    snapshot_overlay: bool = False
    window_name: str = "livemask"
    progress: bool = True
    overlay: bool = True

    def __post_init__(self) -> None:
        check_fields(self)


Fraction = Annotated[float, Range(0, 1, lo_open=True)]
# ExplainSuite (livemask.explain) does not declare its argument types; they are declared here
EXPLAIN_TYPES = {
    "layer": str | None,
    "patch_fraction": Fraction,
    "stride_fraction": Fraction,
    "fill": str,
    "faithfulness_steps": Annotated[int, Range(0, 1000)],
    "seed": Annotated[int, Range(0, 2**32 - 1)],
    "tile": Annotated[int, Range(48, 4096)],
    "alpha": Annotated[float, Range(0, 1)],
    "colormap": str,
}

SCHEMA = (Schema()
          .register("detector", DETECTORS)
          .register("classifier", open_classifier)  # .keras, .onnx or .tflite, by suffix
          .register("explain", ExplainSuite, declared=EXPLAIN_TYPES)
          .register("source", SourceOptions)
          .register("pipeline", PipelineOptions)
          .register("tracker", Tracker)
          .register("run", RunOptions)
          .register("kiosk", KioskOptions)
          .register("images", ImageLimits))


def load_config(path: str | Path | None = None) -> Config:
    """config.yaml (or ``path``) validated against :data:`SCHEMA`."""
    return _config.load_config(path, SCHEMA)


build = _config.build
apply_overrides = _config.apply_overrides


# -- models --------------------------------------------------------------------------------------
def detector(config: Config, video_long_side: int = 0):
    """The configured detector; for CenterFace on video, at ``video_long_side`` (0: the detector section's)."""
    if video_long_side and config.get("detector", {}).get("name", "centerface") == "centerface":
        # at video size a face filling the frame is still in the main pass's range: no coarse pass
        return build(config, "detector", input_long_side=video_long_side, coarse_long_side=0)
    return build(config, "detector")


def classifier(config: Config) -> FaceClassifier:
    return build(config, "classifier")


def explain_suite(config: Config, classifier: FaceClassifier) -> ExplainSuite:
    return build(config, "explain", classifier=classifier)


def explain_session_factory(config: Config, classifier: FaceClassifier) -> Callable[[], object]:
    """For the live window: makes the explanation session on the first g / o / e key (import included)."""

    def make():
        from livemask.explain.live import ExplainSession

        classifier.model  # noqa: B018  (an exported model raises here: explanations need the Keras model)
        return ExplainSession(classifier, make_suite=lambda: explain_suite(config, classifier))

    return make


def engine(config: Config, capture, det, clf, sinks=(), display=None,
           stop_reason: Callable[[], str | None] | None = None) -> Engine:
    """The engine over an opened ``capture`` with the given models and sinks (tracker and stages from the config)."""
    pipeline_options: PipelineOptions = build(config, "pipeline")
    processor = FrameProcessor(det, clf, build(config, "tracker"), pipeline_options.detect_every)
    return Engine(capture, processor, sinks, display, pipeline_options.stage_queue, stop_reason)


# -- livemask run --------------------------------------------------------------------------------
def run_options(config: Config) -> RunOptions:
    return build(config, "run")


def kiosk_options(config: Config) -> KioskOptions:
    return build(config, "kiosk")


def run_sinks(options: RunOptions, live: bool, extra=()) -> list:
    """The file and console sinks of a run (``extra`` sinks before the summary), in the order they are written."""
    from livemask.sinks.console import ProgressBar, SummaryLog
    from livemask.sinks.recording import EventLog, VideoSink
    from livemask.sinks.render import Renderer

    sinks: list = []
    if options.headless and options.progress and not live:
        sinks.append(ProgressBar())  # first: closed before the other sinks log their lines
    if options.output:
        sinks.append(VideoSink(options.output, Renderer(options.overlay)))
    if options.events:
        sinks.append(EventLog(options.events))
    sinks.extend(extra)
    sinks.append(SummaryLog())
    return sinks


def run_engine(config: Config, stop_event: threading.Event, max_frames: int | None = None,
               stop_reason: Callable[[], str | None] | None = None, source=None, extra_sinks=()) -> Engine:
    """Open the source (failing fast, before the models load), build the models, the sinks and the engine."""
    options = run_options(config)
    source_options: SourceOptions = build(config, "source")
    pipeline_options: PipelineOptions = build(config, "pipeline")
    capture = source_options.make_capture(stop_event, max_frames, source)
    capture.open()  # a missing camera or file fails here, before the models load
    src = capture.source
    log.info("source %s: %s, %.2f fps%s", src.name, "x".join(map(str, src.size or ("?", "?"))), src.fps,
             f", {src.frame_count} frames" if src.frame_count else "")
    try:
        det = detector(config, pipeline_options.detector_long_side)
        clf = classifier(config)
        clf.warmup()
        tracker = build(config, "tracker")
    except BaseException:
        capture.stop()
        raise
    display = None
    kiosk = kiosk_options(config)
    if not options.headless and kiosk.enabled:
        from livemask.sinks.kiosk import KioskRenderer, QuitSequence
        from livemask.sinks.window import LiveWindow

        # no explanations, snapshots or pause: every key but the quit sequence does nothing
        display = LiveWindow(options.window_name, options.snapshot_dir, None, KioskRenderer(kiosk),
                             pipeline_options.max_display_age_ms, keys=QuitSequence(kiosk.quit_keys,
                                                                                    kiosk.quit_within_s),
                             fullscreen=kiosk.fullscreen)
    elif not options.headless:
        from livemask.sinks.render import Renderer
        from livemask.sinks.window import LiveWindow

        display = LiveWindow(options.window_name, options.snapshot_dir, explain_session_factory(config, clf),
                             Renderer(options.overlay), pipeline_options.max_display_age_ms,
                             snapshot_overlay=options.snapshot_overlay)
    processor = FrameProcessor(det, clf, tracker, pipeline_options.detect_every)
    sinks = run_sinks(options, capture.live, extra_sinks)
    return Engine(capture, processor, sinks, display, pipeline_options.stage_queue, stop_reason)

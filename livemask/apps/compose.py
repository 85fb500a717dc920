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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from face_detector import DETECTORS
from livemask import config as _config
from livemask.config import Config, Schema
from livemask.core.errors import ConfigError
from livemask.core.images import ImageLimits
from livemask.core.params import OneOf, Range, check_fields
from livemask.core.redact import redact_url
from livemask.engine.cameras import CameraOptions
from livemask.engine.capture import SourceOptions
from livemask.engine.engine import Engine
from livemask.engine.people import AlertRule, People, PeopleOptions
from livemask.engine.pipeline import FrameProcessor, PipelineOptions
from livemask.engine.tracker import Tracker
from livemask.explain.base import FILLS
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


Seconds = Annotated[float, Range(0, 86_400)]


@dataclass
class AlertOptions:
    """The ``alerts`` section of config.yaml (see there for the meaning of each key)."""

    enabled: bool = True
    classes: list[str] = field(default_factory=lambda: ["no_mask", "mask_incorrect"])
    after_s: Seconds = 2.0
    cooldown_s: Seconds = 30.0
    snapshots: bool = True
    webhook: str | None = None
    webhook_timeout_s: Annotated[float, Range(0, 600, lo_open=True)] = 2.0
    webhook_retries: Annotated[int, Range(0, 20)] = 3
    webhook_backoff_s: Annotated[float, Range(0, 600)] = 0.5
    command: str | None = None
    command_timeout_s: Annotated[float, Range(0, 3600, lo_open=True)] = 5.0
    sound: bool = False
    queue_size: Annotated[int, Range(1, 10_000)] = 16
    finish_s: Annotated[float, Range(0, 600)] = 5.0

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.classes:
            raise ConfigError("alerts.classes: expected at least one class name")
        if self.webhook is not None:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(self.webhook)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018  (a bad port raises here)
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"alerts.webhook: expected an http:// or https:// URL, got "
                                  f"{redact_url(self.webhook)!r}")
        if self.command is not None:
            import shlex

            try:
                args = shlex.split(self.command)
            except ValueError as err:
                raise ConfigError(f"alerts.command: cannot split {self.command!r} ({err})") from None
            if not args:
                raise ConfigError("alerts.command: empty command")


@dataclass
class PrivacyOptions:
    """The ``privacy`` section of config.yaml (see there for the meaning of each key)."""

    blur_faces: str | bool = "off"  # YAML reads an unquoted off as false: that means "off" too
    blur_live: bool = False

    def __post_init__(self) -> None:
        from livemask.sinks.privacy import BLUR_MODES

        check_fields(self)
        if self.blur_faces is False:
            self.blur_faces = "off"
        if self.blur_faces not in BLUR_MODES:
            raise ConfigError(f"privacy.blur_faces: expected one of {', '.join(BLUR_MODES)}, got {self.blur_faces!r}")


Fraction = Annotated[float, Range(0, 1, lo_open=True)]
# ExplainSuite (livemask.explain) does not declare its argument types; they are declared here
EXPLAIN_TYPES = {
    "layer": str | None,
    "patch_fraction": Fraction,
    "stride_fraction": Fraction,
    "fill": Annotated[str, OneOf(*FILLS)],
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
          .register("people", PeopleOptions)
          .register("alerts", AlertOptions)
          .register("privacy", PrivacyOptions)
          .register("run", RunOptions)
          .register("kiosk", KioskOptions)
          .register("images", ImageLimits)
          .register("cameras", CameraOptions, keyed=True))


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
        from livemask.explain.frozen_frame import ExplainSession

        classifier.model  # noqa: B018  (an exported model raises here: explanations need the Keras model)
        return ExplainSession(classifier, make_suite=lambda: explain_suite(config, classifier))

    return make


def engine(config: Config, capture, det, clf, sinks=(), display=None,
           stop_reason: Callable[[], str | None] | None = None, tracker=None, people=None) -> Engine:
    """The engine over an opened ``capture`` with the given models and sinks (the stages from the config;
    the tracker too unless given)."""
    pipeline_options: PipelineOptions = build(config, "pipeline")
    processor = FrameProcessor(det, clf, tracker if tracker is not None else build(config, "tracker"),
                               pipeline_options.detect_every)
    return Engine(capture, processor, sinks, display, pipeline_options.stage_queue, stop_reason, people=people)


# -- livemask run --------------------------------------------------------------------------------
def run_options(config: Config) -> RunOptions:
    return build(config, "run")


def kiosk_options(config: Config) -> KioskOptions:
    return build(config, "kiosk")


def run_sinks(options: RunOptions, live: bool, extra=(), alerts=None, blur=None) -> list:
    """The file and console sinks of a run (``extra`` sinks before the summary), in the order they are written.

    ``alerts``: the alert sink, closed before the event log so the summary line holds its counts;
    ``blur``: the face blur of recordings (privacy).
    """
    from livemask.sinks.console import ProgressBar, SummaryLog
    from livemask.sinks.recording import EventLog, VideoSink
    from livemask.sinks.render import Renderer

    sinks: list = []
    if options.headless and options.progress and not live:
        sinks.append(ProgressBar())  # first: closed before the other sinks log their lines
    if options.output:
        sinks.append(VideoSink(options.output, Renderer(options.overlay, blur=blur)))
    if alerts is not None:
        sinks.append(alerts)
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
        people, alert_sink, blur = people_parts(config, options, tracker, tuple(clf.class_names))
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

        privacy: PrivacyOptions = build(config, "privacy")
        renderer = Renderer(options.overlay, blur=blur if privacy.blur_live else None, snapshot_blur=blur,
                            recording_notice=bool(options.output))
        display = LiveWindow(options.window_name, options.snapshot_dir, explain_session_factory(config, clf),
                             renderer, pipeline_options.max_display_age_ms,
                             snapshot_overlay=options.snapshot_overlay)
    sinks = run_sinks(options, capture.live, extra_sinks, alert_sink, blur)
    return engine(config, capture, det, clf, sinks, display, stop_reason, tracker, people)


def check_alerts(config: Config) -> None:
    """Before the models load: the alerts and privacy sections build, and an alert command's program exists."""
    import shlex
    import shutil

    alerts: AlertOptions = build(config, "alerts")
    build(config, "privacy")
    build(config, "people")
    if alerts.enabled and alerts.command:
        program = shlex.split(alerts.command)[0]
        if shutil.which(program) is None:
            raise ConfigError(f"alerts.command: program not found: {program}")


def people_stage(config: Config, class_names: tuple[str, ...]):
    """For ``livemask batch`` and ``serve``'s live source: a function making a fresh people stage (alert
    lines in the event log, no snapshots or other destinations)."""
    import functools

    options: PeopleOptions = build(config, "people")
    return functools.partial(People, options, alert_rule(build(config, "alerts"), class_names), None)


def alert_rule(alerts: AlertOptions, class_names: tuple[str, ...]) -> AlertRule | None:
    """The alert rule over the alert classes the model has; None when alerts are off or it has none of them."""
    known = [n for n in alerts.classes if n in class_names]
    return AlertRule(known, alerts.after_s, alerts.cooldown_s) if alerts.enabled and known else None


def people_parts(config: Config, options: RunOptions, tracker: Tracker, class_names: tuple[str, ...]):
    """The people stage (None without tracking), the alert sink (None when nothing but the event log
    receives alerts) and the face blur of saved images (None: off), checked against the model's classes."""
    from livemask.sinks.privacy import face_blur

    privacy: PrivacyOptions = build(config, "privacy")
    blur = face_blur(privacy.blur_faces)
    alerts: AlertOptions = build(config, "alerts")
    people_options: PeopleOptions = build(config, "people")
    notifying = alerts.enabled and (alerts.webhook or alerts.command or alerts.sound)
    if not tracker.enabled:
        if notifying:
            raise ConfigError("alerts need tracking (tracker.enabled: true): an alert is about one tracked face")
        return None, None, blur
    for key, names in (("alerts.classes", alerts.classes), ("people.masked_classes", people_options.masked_classes)):
        unknown = [n for n in names if n not in class_names]
        if len(unknown) == len(names) and names:
            raise ConfigError(f"{key}: none of {', '.join(names)} is a class of the model "
                              f"({', '.join(class_names)})")
        if unknown:
            log.info("%s: %s not in the model's classes (%s); ignored", key, ", ".join(unknown), ", ".join(class_names))
    rule = alert_rule(alerts, class_names)  # the loop above refused alert classes the model lacks entirely
    # alert crops in their own folder, apart from the window's snapshots
    people = People(people_options, rule,
                    Path(options.snapshot_dir) / "alerts" if alerts.enabled and alerts.snapshots else None)
    if not alerts.enabled or not (notifying or alerts.snapshots):
        return people, None, blur
    from livemask.sinks.alerts import AlertSink, CommandNotifier, SoundNotifier, WebhookNotifier

    notifiers = []
    if alerts.webhook:
        notifiers.append(WebhookNotifier(alerts.webhook, alerts.webhook_timeout_s, alerts.webhook_retries,
                                         alerts.webhook_backoff_s, alerts.queue_size))
    if alerts.command:
        notifiers.append(CommandNotifier(alerts.command, alerts.command_timeout_s, alerts.queue_size))
    if alerts.sound:
        notifiers.append(SoundNotifier(queue_size=min(alerts.queue_size, 4)))
    return people, AlertSink(notifiers, blur, alerts.finish_s), blur


# -- several cameras (livemask run --camera / the cameras section) -------------------------------------
def with_cameras(config: Config, items: list[str] | None) -> Config:
    """The config with ``--camera NAME=SOURCE`` items added to its ``cameras`` section (a name already in
    the config gets that source, its other keys kept); a bad or repeated name is a ConfigError."""
    from livemask.engine.cameras import parse_camera_arguments

    given = parse_camera_arguments(items)
    current = config.get("cameras", {})
    return apply_overrides(config, {f"cameras.{name}": {**current.get(name, {}), "source": source}
                                    for name, source in given.items()}, "--camera")


def cameras(config: Config) -> dict[str, CameraOptions]:
    """The enabled cameras of the ``cameras`` section, in config order."""
    return {name: cam for name, cam in _config.build_keyed(config, "cameras").items() if cam.enabled}


def camera_config(config: Config, camera: CameraOptions, options: RunOptions) -> Config:
    """The whole config as one camera sees it: its own keys over the sections', its own outputs."""
    return apply_overrides(config, {**camera.overrides(), "run.output": options.output, "run.events": options.events,
                                    "run.headless": True, "run.progress": False,
                                    "run.snapshot_dir": str(Path(options.snapshot_dir) / camera.name)},
                           f"cameras.{camera.name}")


def camera_outputs(output_dir: str | None, name: str, record: bool) -> tuple[str | None, str | None]:
    """(video, events) of one camera: ``DIR/<camera>.mp4`` (with ``record``) and ``DIR/<camera>.jsonl``."""
    if output_dir is None:
        return None, None
    return (str(Path(output_dir) / f"{name}.mp4") if record else None), str(Path(output_dir) / f"{name}.jsonl")


def run_site(config: Config, stop_event: threading.Event, output_dir: str | None, record: bool = False,
             max_frames: int | None = None, stop_reason: Callable[[], str | None] | None = None,
             on_state: Callable[[str, str], None] | None = None, extra_sinks: Callable[[str], list] | None = None,
             classifier_=None, snapshots: bool = True):
    """Every enabled camera as its own engine (its source opened on its own thread, not here), one shared
    classifier; returns the :class:`~livemask.engine.cameras.Site`. ``extra_sinks(name)``: more sinks
    for one camera (the server's hub); ``classifier_``: the classifier to share (default: the config's);
    ``snapshots`` False: no alert snapshots or notifiers (``serve``: alerts are event lines on the page)."""
    from livemask.engine.cameras import Camera, SharedClassifier, Site

    chosen = cameras(config)
    if not chosen:
        raise ConfigError("no enabled camera (cameras section or --camera NAME=SOURCE)")
    clf = classifier_
    if clf is None:
        clf = classifier(config)
        clf.warmup()
    shared = SharedClassifier(clf)
    base = run_options(config)
    built: list[Camera] = []
    for name, camera in chosen.items():
        video, events = camera_outputs(output_dir, name, record)
        cam_config = camera_config(config, camera, RunOptions(**{**vars(base), "output": video, "events": events}))
        options = run_options(cam_config)
        source_options: SourceOptions = build(cam_config, "source")
        pipeline_options: PipelineOptions = build(cam_config, "pipeline")
        capture = source_options.make_capture(threading.Event(), max_frames)
        det = detector(cam_config, pipeline_options.detector_long_side)
        tracker = build(cam_config, "tracker")
        if snapshots:
            people, alert_sink, blur = people_parts(cam_config, options, tracker, tuple(clf.class_names))
        else:
            people = people_stage(cam_config, tuple(clf.class_names))() if tracker.enabled else None
            alert_sink, blur = None, None
        sinks = run_sinks(options, True, extra_sinks(name) if extra_sinks else (), alert_sink, blur)
        processor = FrameProcessor(det, shared, tracker, pipeline_options.detect_every)
        built.append(Camera(name, Engine(capture, processor, sinks, None, pipeline_options.stage_queue, stop_reason,
                                         people=people, camera=name)))
    return Site(built, stop_event, on_state, classifier=shared)

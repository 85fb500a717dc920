"""The composition root: the only code that turns a config into objects.

It declares which class each ``config.yaml`` section configures (:data:`SCHEMA`, handed
to :mod:`livemask.config`, which imports nothing above ``livemask.core``) and builds the
detector, the classifier, the tracker, the source, the sinks and the engine from a
validated config. Everything below receives built objects (or, for the explanation
window, a function that builds them later), never the config dict.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from face_detector import DETECTORS
from livemask import config as _config
from livemask.config import Config, Schema
from livemask.core.errors import ConfigError
from livemask.core.images import ImageLimits
from livemask.engine.cameras import CameraOptions
from livemask.engine.capture import SourceOptions
from livemask.engine.engine import Engine
from livemask.engine.people import AlertRule, People, PeopleOptions
from livemask.engine.pipeline import FrameProcessor, PipelineOptions
from livemask.engine.tracker import Tracker
from livemask.explain.suite import ExplainSuite
from livemask.models.backends import FaceClassifier, open_classifier
from livemask.sinks.alerts import AlertOptions
from livemask.sinks.kept_events import KeptEventsOptions
from livemask.sinks.kiosk import KioskOptions
from livemask.sinks.mqtt import MqttOptions
from livemask.sinks.privacy import PrivacyOptions
from livemask.sinks.run_outputs import RunOptions

log = logging.getLogger(__name__)


SCHEMA = (Schema()
          .register("detector", DETECTORS)
          .register("classifier", open_classifier)  # .keras, .onnx or .tflite, by suffix
          .register("explain", ExplainSuite)
          .register("source", SourceOptions)
          .register("pipeline", PipelineOptions)
          .register("tracker", Tracker)
          .register("people", PeopleOptions)
          .register("alerts", AlertOptions)
          .register("privacy", PrivacyOptions)
          .register("run", RunOptions)
          .register("kiosk", KioskOptions)
          .register("images", ImageLimits)
          .register("report", KeptEventsOptions)
          .register("mqtt", MqttOptions)
          .register("cameras", CameraOptions, keyed=True))


def load_config(path: str | Path | None = None) -> Config:
    """config.yaml (or ``path``) validated against :data:`SCHEMA`."""
    return _config.load_config(path, SCHEMA)


build = _config.build
apply_overrides = _config.apply_overrides


# -- models --------------------------------------------------------------------------------------
def model_threads(config: Config, section: str, cameras: int = 1) -> int:
    """A model's runtime threads for one call: ``SECTION.threads`` when set; else (0) with several cameras in one
    process the cores shared out among them, at least one each (each camera's detector runs in its own thread,
    so one call split over two threads only adds work: docs/cameras.md), and 0 (the runtime's own choice) for
    one camera."""
    threads = int(config.get(section, {}).get("threads", 0) or 0)
    if threads or cameras <= 1:
        return threads
    return max(1, (os.cpu_count() or 1) // cameras)


def detector(config: Config, video_long_side: int = 0, cameras: int = 1):
    """The configured detector; for CenterFace on video, at ``video_long_side`` (0: the detector section's), with
    :func:`model_threads` for ``cameras`` cameras."""
    if config.get("detector", {}).get("name", "centerface") != "centerface":
        return build(config, "detector")
    threads = model_threads(config, "detector", cameras)
    if video_long_side:
        # at video size a face filling the frame is still in the main pass's range: no coarse pass
        return build(config, "detector", input_long_side=video_long_side, coarse_long_side=0, threads=threads)
    return build(config, "detector", threads=threads)


def video_detector(config: Config):
    """The configured detector at the pipeline's video input size (``pipeline.detector_long_side``)."""
    return detector(config, pipeline_options(config).detector_long_side)


def classifier(config: Config, cameras: int = 1) -> FaceClassifier:
    """The configured classifier, with :func:`model_threads` for ``cameras`` cameras sharing it."""
    return build(config, "classifier", threads=model_threads(config, "classifier", cameras))


def pipeline_options(config: Config) -> PipelineOptions:
    return build(config, "pipeline")


def apply_image_limits(config: Config) -> None:
    """The ``images`` section's pixel limit, in force for every image decoded from now on."""
    build(config, "images").apply()


def capture(config: Config, stop_event: threading.Event | None = None, max_frames: int | None = None,
            source=None):
    """The ``source`` section's capture (not opened yet)."""
    options: SourceOptions = build(config, "source")
    return options.make_capture(stop_event, max_frames, source)


def explain_suite(config: Config, classifier: FaceClassifier) -> ExplainSuite:
    return build(config, "explain", classifier=classifier)


def explain_suite_factory(config: Config, classifier: FaceClassifier) -> Callable[[], ExplainSuite]:
    """For ``serve``: makes the explanation suite when first asked (the Keras model and TensorFlow load then)."""

    def make() -> ExplainSuite:
        classifier.model  # noqa: B018  (first: without TensorFlow, the one line naming the extra to install)
        return explain_suite(config, classifier)

    return make


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
    pipeline = pipeline_options(config)
    processor = FrameProcessor(det, clf, tracker if tracker is not None else build(config, "tracker"),
                               pipeline.detect_every)
    return Engine(capture, processor, sinks, display, pipeline.stage_queue, stop_reason, people=people)


# -- livemask run --------------------------------------------------------------------------------
def run_options(config: Config) -> RunOptions:
    return build(config, "run")


def kiosk_options(config: Config) -> KioskOptions:
    return build(config, "kiosk")


def run_sinks(options: RunOptions, live: bool, extra=(), alerts=None, blur=None, events_out=()) -> list:
    """The file and console sinks of a run (``extra`` sinks before the summary), in the order they are written.

    ``alerts``: the alert sink, closed before the event log so the summary line holds its counts;
    ``blur``: the face blur of recordings (privacy); ``events_out``: sinks to the site's systems (MQTT),
    closed before the event log too.
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
    sinks.extend(events_out)
    if options.events:
        sinks.append(EventLog(options.events))
    sinks.extend(extra)
    sinks.append(SummaryLog())
    return sinks


def run_engine(config: Config, stop_event: threading.Event, max_frames: int | None = None,
               stop_reason: Callable[[], str | None] | None = None, source=None, extra_sinks=(),
               metrics=None) -> Engine:
    """Open the source (failing fast, before the models load), build the models, the sinks and the engine
    (``metrics``: a :class:`~livemask.sinks.metrics.Metrics` that gets this camera's sink and the model load time)."""
    options = run_options(config)
    pipeline = pipeline_options(config)
    cap = capture(config, stop_event, max_frames, source)
    cap.open()  # a missing camera or file fails here, before the models load
    src = cap.source
    log.info("source %s: %s, %.2f fps%s", src.name, "x".join(map(str, src.size or ("?", "?"))), src.fps,
             f", {src.frame_count} frames" if src.frame_count else "")
    try:
        loading = time.monotonic()
        det = detector(config, pipeline.detector_long_side)
        clf = classifier(config)
        clf.warmup()
        if metrics is not None:
            metrics.model_load.set(time.monotonic() - loading)
            extra_sinks = (*extra_sinks, metrics.camera())
        tracker = build(config, "tracker")
        people, alert_sink, blur = people_parts(config, options, tracker, tuple(clf.class_names))
        blur = kiosk_recording_blur(config, options, blur)
    except BaseException:
        cap.stop()
        raise
    display = None
    kiosk = kiosk_options(config)
    if not options.headless and kiosk.enabled:
        from livemask.sinks.kiosk import KioskRenderer, QuitSequence
        from livemask.sinks.window import LiveWindow

        # no explanations, snapshots or pause: every key but the quit sequence does nothing
        display = LiveWindow(options.window_name, options.snapshot_dir, None, KioskRenderer(kiosk),
                             pipeline.max_display_age_ms, keys=QuitSequence(kiosk.quit_keys,
                                                                                    kiosk.quit_within_s),
                             fullscreen=kiosk.fullscreen)
    elif not options.headless:
        from livemask.sinks.render import Renderer
        from livemask.sinks.window import LiveWindow

        privacy: PrivacyOptions = build(config, "privacy")
        renderer = Renderer(options.overlay, blur=blur if privacy.blur_live else None, snapshot_blur=blur,
                            recording_notice=bool(options.output))
        display = LiveWindow(options.window_name, options.snapshot_dir, explain_session_factory(config, clf),
                             renderer, pipeline.max_display_age_ms,
                             snapshot_overlay=options.snapshot_overlay)
    sinks = run_sinks(options, cap.live, extra_sinks, alert_sink, blur, mqtt_sinks(config))
    built = engine(config, cap, det, clf, sinks, display, stop_reason, tracker, people)
    if metrics is not None:
        metrics.camera().attach(built)
    return built


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

    blur = face_blur(build(config, "privacy").blur_faces)
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
    from livemask.sinks.alerts import AlertSink, AlertSnapshots, CommandNotifier, SoundNotifier, WebhookNotifier

    # alert crops in their own folder, apart from the window's snapshots, written as the alert fires
    snapshots = (AlertSnapshots(alert_snapshot_dir(options), alert_snapshot_blur(config, options))
                 if alerts.enabled and alerts.snapshots else None)
    people = People(people_options, rule, snapshots)
    if not alerts.enabled or not (notifying or alerts.snapshots):
        return people, None, blur

    notifiers = []
    if alerts.webhook:
        notifiers.append(WebhookNotifier(alerts.webhook, alerts.webhook_timeout_s, alerts.webhook_retries,
                                         alerts.webhook_backoff_s, alerts.queue_size))
    if alerts.command:
        notifiers.append(CommandNotifier(alerts.command, alerts.command_timeout_s, alerts.queue_size))
    if alerts.sound:
        notifiers.append(SoundNotifier(queue_size=min(alerts.queue_size, 4)))
    return people, AlertSink(notifiers, blur, alerts.finish_s, snapshots=snapshots), blur


# -- livemask batch ------------------------------------------------------------------------------
def batch_models(config: Config, every: int = 1, overlap: bool = True):
    """Detector, classifier (warmed up), tracker and people factories and the per-file wiring, as config.yaml
    says; each batch worker calls this once.

    ``overlap``: detect and classify in overlapping threads (a worker with two or more cores) or in turn
    (a worker with one core: it then keeps one core busy, not two, and N workers scale on N cores).

    With ``every`` K > 1 the tracker's ``max_age`` (detector runs a track survives unseen) and ``vote_frames``
    are scaled so that they cover the same span of video as without sampling: the detector then runs on
    every sampled frame, i.e. every K source frames instead of every ``pipeline.detect_every``.
    """
    import functools
    import math

    from livemask.batch.worker import Models
    from livemask.core.quiet import import_tensorflow_quietly
    from livemask.engine.sources import quiet_video_backend

    quiet_video_backend()
    if needs_tensorflow(config):
        import_tensorflow_quietly()  # before OpenCV's and the models' threads start
    pipeline = pipeline_options(config)
    source: SourceOptions = build(config, "source")
    det = detector(config, pipeline.detector_long_side)
    clf = classifier(config)
    clf.warmup()
    tracker_args = dict(config.get("tracker", {}))
    if every > 1:
        defaults = Tracker()
        max_age = tracker_args.get("max_age", defaults.max_age)
        votes = tracker_args.get("vote_frames", defaults.vote_frames)
        tracker_args["max_age"] = max(1, math.ceil(max_age * pipeline.detect_every / every))
        tracker_args["vote_frames"] = max(1, math.ceil(votes / every))
    build(config, "tracker", **tracker_args)  # fail here, not in the first file, on a bad tracker section
    factory = functools.partial(Tracker, **tracker_args)
    people = people_stage(config, tuple(clf.class_names))
    return Models(det, clf, factory, pipeline.detect_every, pipeline.stage_queue, source.queue_size,
                  overlap, people_factory=people, file_run=batch_file_run)


def needs_tensorflow(config: Config) -> bool:
    """True when the configured classifier is a Keras model (its backend imports TensorFlow)."""
    from livemask.models.backends import DEFAULT_MODEL, needs_tensorflow

    return needs_tensorflow(config.get("classifier", {}).get("model_path", DEFAULT_MODEL))


def batch_model_factory(config: Config, every: int, threads: int):
    """What each batch worker calls once to build its models: a worker with one thread (one core) runs its
    stages in turn, a worker with more overlaps them."""
    import functools

    return functools.partial(batch_models, config, every, threads >= 2)


def batch_file_run(models, item, folder: Path, options, stop_event: threading.Event,
                   stop_reason: Callable[[], str | None]):
    """One batch input's run: its source and capture (opened), the batch's sinks (people counts, the event
    log and, with ``write_video``, the annotated video or photo) and the engine of ``livemask run``."""
    from livemask.batch.file_parts import AnnotatedImage, FileRun, PeopleCounts, make_source
    from livemask.batch.out_folder import EVENTS
    from livemask.engine.capture import Capture
    from livemask.sinks.privacy import FaceBlur
    from livemask.sinks.recording import EventLog, VideoSink
    from livemask.sinks.render import Renderer

    tracker = models.tracker_factory()
    people = models.people_factory() if models.people_factory is not None and tracker.enabled else None
    counts = PeopleCounts(people, photo=item.kind == "image")
    source = make_source(item, options.every)
    cap = Capture(source, models.queue_size, stop_event=stop_event)
    cap.open()
    outputs = [EVENTS]
    sinks: list = [counts, EventLog(folder / EVENTS)]  # counts close first: the summary line has their alerts
    if options.write_video:
        renderer = Renderer(overlay=False, blur=FaceBlur("blur") if options.blur_faces else None)
        if item.kind == "image":
            name = "annotated" + (Path(item.path).suffix.lower() or ".png")
            sinks.append(AnnotatedImage(folder / name, renderer))
        else:
            name = "annotated.mp4"
            sinks.append(VideoSink(folder / name, renderer, fps=(source.fps or 30.0) / options.every))
        outputs.append(name)
    processor = FrameProcessor(models.detector, models.classifier, tracker,
                               1 if options.every > 1 else models.detect_every)
    run = Engine(cap, processor, sinks, stage_queue=models.stage_queue, overlap=models.overlap,
                 stop_reason=stop_reason, people=people)
    return FileRun(run, source, counts, tracker.enabled, people, outputs)


def report_options(config: Config) -> KeptEventsOptions:
    """The ``report`` section: where serve keeps its event lines, and for how long."""
    return build(config, "report")


def kept_events(config: Config):
    """The sink that keeps ``serve``'s event lines for ``/v1/report`` (None when ``report.keep_events`` is off)."""
    from livemask.sinks.kept_events import KeptEvents

    options = report_options(config)
    return KeptEvents(options) if options.keep_events else None


# -- events out to the site's systems (MQTT) -----------------------------------------------------
def mqtt_options(config: Config) -> MqttOptions:
    return build(config, "mqtt")


def check_mqtt(config: Config) -> None:
    """Before the source opens and the models load: the mqtt section builds and, when on, paho-mqtt is there."""
    if mqtt_options(config).enabled:
        from livemask.sinks.mqtt import paho_client

        paho_client()


def mqtt_sinks(config: Config, camera: str = "default", link=None) -> list:
    """The MQTT sink of one camera (``camera``: its name in the topics), or none while ``mqtt.url`` is unset.
    ``link``: the process's :func:`mqtt_link` (several cameras share it); without one the sink has its own."""
    options = mqtt_options(config)
    if not options.enabled:
        return []
    from livemask.sinks.mqtt import MqttSink

    return [MqttSink(options, camera, link)]


def metrics_server(port: int):
    """``run --metrics-port``: the metrics registry, served on 127.0.0.1:``port`` from now on (a busy port fails
    here, before the models load)."""
    from livemask.sinks.metrics import Metrics

    metrics = Metrics()
    metrics.serve(port)
    return metrics


def site_watcher(config: Config):
    """``serve`` with ``mqtt.site``: the subscriber that lists the site's cameras (not started), else None."""
    options = mqtt_options(config)
    if not (options.enabled and options.site):
        return None
    from livemask.web.remote_site import SiteWatcher

    return SiteWatcher(options)



def alert_snapshot_dir(options: RunOptions) -> Path:
    """Where alert face crops go: ``run.snapshot_dir/alerts``."""
    return Path(options.snapshot_dir) / "alerts"


def check_snapshot_dir(config: Config, options: RunOptions) -> None:
    """At start-up, before the models load: when alerts write snapshots (alerts and tracking on), their
    folder must be usable (created, writable; not a file, not under /proc, /sys or /dev), else one
    OutputError line (exit 2) naming ``run.snapshot_dir``."""
    from livemask.core.output_paths import prepare_out_dir

    alerts: AlertOptions = build(config, "alerts")
    if alerts.enabled and alerts.snapshots and build(config, "tracker").enabled:
        prepare_out_dir(alert_snapshot_dir(options), "run.snapshot_dir")


def alert_snapshot_blur(config: Config, options: RunOptions):
    """The face blur of alert snapshots: ``privacy.blur_faces`` when it is on, else ``privacy.snapshots``
    (``blur`` by default: a snapshot is sharp only when ``sharp`` is asked for), and never sharp in kiosk
    mode (a kiosk says it records no one)."""
    from livemask.sinks.privacy import FaceBlur, face_blur

    privacy: PrivacyOptions = build(config, "privacy")
    if privacy.blur_faces != "off":
        return face_blur(privacy.blur_faces)
    if privacy.snapshots != "sharp":
        return FaceBlur(privacy.snapshots)
    if not options.headless and kiosk_options(config).enabled:
        log.info("kiosk mode: alert snapshots are blurred although privacy.snapshots is sharp")
        return FaceBlur("blur")
    return None


def kiosk_recording_blur(config: Config, options: RunOptions, blur):
    """The face blur of recordings: ``blur`` as configured, but never None in kiosk mode."""
    from livemask.sinks.privacy import FaceBlur

    if blur is None and not options.headless and kiosk_options(config).enabled:
        return FaceBlur("blur")
    return blur



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
             classifier_=None, snapshots: bool = True, mqtt_link=None, display=None):
    """Every enabled camera as its own engine (its source opened on its own thread, not here), one shared
    classifier; returns the :class:`~livemask.engine.cameras.Site`. ``extra_sinks(name)``: more sinks
    for one camera (the server's hub); ``classifier_``: the classifier to share (default: the config's);
    ``snapshots`` False: no alert snapshots or notifiers (``serve``: alerts are event lines on the page);
    ``mqtt_link``: the process's :func:`mqtt_link`, shared by the cameras' MQTT sinks (its owner finishes it).
    ``display``: the window of every camera (:func:`site_window`), whose quit shows as ``"user"`` in each
    camera's summary."""
    from livemask.engine.cameras import Camera, SharedClassifier, Site

    chosen = cameras(config)
    if not chosen:
        raise ConfigError("no enabled camera (cameras section or --camera NAME=SOURCE)")
    clf = classifier_
    if clf is None:
        clf = classifier(config, len(chosen))
        clf.warmup()
    shared = SharedClassifier(clf)
    base = run_options(config)
    if display is not None:
        reason = stop_reason or (lambda: None)

        def stop_reason() -> str | None:
            return reason() or display.ended_by

    built: list[Camera] = []
    for name, camera in chosen.items():
        video, events = camera_outputs(output_dir, name, record)
        cam_config = camera_config(config, camera, RunOptions(**{**vars(base), "output": video, "events": events}))
        options = run_options(cam_config)
        source_options: SourceOptions = build(cam_config, "source")
        pipeline: PipelineOptions = build(cam_config, "pipeline")
        capture = source_options.make_capture(threading.Event(), max_frames)
        det = detector(cam_config, pipeline.detector_long_side, len(chosen))
        tracker = build(cam_config, "tracker")
        if snapshots:
            people, alert_sink, blur = people_parts(cam_config, options, tracker, tuple(clf.class_names))
        else:
            people = people_stage(cam_config, tuple(clf.class_names))() if tracker.enabled else None
            alert_sink, blur = None, None
        sinks = run_sinks(options, True, extra_sinks(name) if extra_sinks else (), alert_sink, blur,
                          mqtt_sinks(cam_config, name, mqtt_link))
        processor = FrameProcessor(det, shared, tracker, pipeline.detect_every)
        built.append(Camera(name, Engine(capture, processor, sinks, None, pipeline.stage_queue, stop_reason,
                                         people=people, camera=name)))
    return Site(built, stop_event, on_state, classifier=shared, display=display)


# -- one MQTT connection per process, kept events of several cameras --------------------------------------
def mqtt_link(config: Config):
    """The process's one connection to the broker (availability and last will), shared by every camera's MQTT
    sink; None while ``mqtt.url`` is unset. Its owner calls ``finish()`` when the process ends."""
    options = mqtt_options(config)
    if not options.enabled:
        return None
    from livemask.sinks.mqtt import MqttLink

    return MqttLink(options)


def kept_events_file(config: Config):
    """``serve`` with cameras: the one writer of the kept event files that every camera's sink shares (None when
    ``report.keep_events`` is off)."""
    from livemask.sinks.kept_events import KeptEventsFile

    options = report_options(config)
    return KeptEventsFile(options) if options.keep_events else None


def camera_kept_events(config: Config, camera: str, kept_file) -> list:
    """One camera's kept-events sink, its lines named ``camera``, through the shared ``kept_file`` (none: [])."""
    if kept_file is None:
        return []
    from livemask.sinks.kept_events import KeptEvents

    return [KeptEvents(report_options(config), camera, kept_file)]


def site_window(config: Config, names: list[str], clf, record: bool = False):
    """The window of a run with several cameras (:class:`~livemask.sinks.site_window.SiteWindow`): one tile
    feed and one renderer per camera (privacy as the single window has it), explanations of the focused
    camera's frame by ``clf``. Its ``sinks_for(name)`` gives each camera's engine its tile feed."""
    from livemask.sinks.privacy import face_blur
    from livemask.sinks.render import Renderer
    from livemask.sinks.site_window import SiteWindow, TileFeed

    options = run_options(config)
    privacy: PrivacyOptions = build(config, "privacy")
    blur = face_blur(privacy.blur_faces)
    feeds = {name: TileFeed(name) for name in names}
    renderers = {name: Renderer(options.overlay, blur=blur if privacy.blur_live else None, snapshot_blur=blur,
                                recording_notice=record) for name in names}
    return SiteWindow(options.window_name, options.snapshot_dir, feeds, renderers,
                      explain_session_factory(config, clf))

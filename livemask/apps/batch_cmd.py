"""``livemask batch``: many videos and photos, each into its own output folder, with a summary table.

This module is the batch's composition root: it reads the config and hands the worker processes (or Ray
actors) :func:`build_models`, which each of them calls once. Everything else lives in :mod:`livemask.batch`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys

from livemask.core.errors import ConfigError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video or image files, folders (searched recursively) or .txt/.lst files listing "
                             "paths or URLs, one a line")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: one folder per input and "
                                                                   "summary.csv")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: worker processes on this machine (default); ray: Ray actors, on this machine "
                             "or the cluster at --address (pip install 'livemask[ray]')")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes / actors (default: CPU cores)")
    parser.add_argument("--threads", type=int, metavar="T",
                        help="OpenCV/TensorFlow threads per worker (default: cores / workers, at least 1)")
    parser.add_argument("--address", metavar="RAY_ADDRESS", help="join this Ray cluster (with --engine ray)")
    parser.add_argument("--resume", action="store_true", help="skip inputs whose complete outputs exist "
                                                              "(same path, size and modification time)")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="process every K-th frame (fast survey)")
    parser.add_argument("--write-video", action="store_true", help="also write the annotated video / image")
    parser.add_argument("--blur-faces", action="store_true", help="blur the faces in the annotated video / image")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_models(config: dict, every: int = 1, overlap: bool = True):
    """Detector, classifier (warmed up) and a tracker factory, as config.yaml says; run once per worker.

    ``overlap``: detect and classify in overlapping threads (a worker with two or more cores) or in turn
    (a worker with one core: it then keeps one core busy, not two, and N workers scale on N cores).

    With ``every`` K > 1 the tracker's ``max_age`` (detector runs a track survives unseen) and ``vote_frames``
    are scaled so that they cover the same span of video as without sampling: the detector then runs on
    every sampled frame, i.e. every K source frames instead of every ``pipeline.detect_every``.
    """
    from livemask.core.quiet import import_tensorflow_quietly
    from livemask.engine.sources import quiet_video_backend

    quiet_video_backend()
    import_tensorflow_quietly()  # first: the composition root imports the TensorFlow backend
    from livemask.apps import compose
    from livemask.apps.compose import build
    from livemask.batch.worker import Models
    from livemask.engine.tracker import Tracker

    pipeline = build(config, "pipeline")
    source = build(config, "source")
    detector = compose.detector(config, pipeline.detector_long_side)
    classifier = compose.classifier(config)
    classifier.warmup()
    tracker_args = dict(config.get("tracker", {}))
    if every > 1:
        defaults = Tracker()
        max_age = tracker_args.get("max_age", defaults.max_age)
        votes = tracker_args.get("vote_frames", defaults.vote_frames)
        tracker_args["max_age"] = max(1, math.ceil(max_age * pipeline.detect_every / every))
        tracker_args["vote_frames"] = max(1, math.ceil(votes / every))
    build(config, "tracker", **tracker_args)  # fail here, not in the first file, on a bad tracker section
    factory = functools.partial(Tracker, **tracker_args)
    people = compose.people_stage(config, tuple(classifier.class_names))
    return Models(detector, classifier, factory, pipeline.detect_every, pipeline.stage_queue, source.queue_size,
                  overlap, people_factory=people)


def model_factory(config: dict, every: int, threads: int):
    """What each worker calls once to build its models: a worker with one thread (one core) runs its
    stages in turn, a worker with more overlaps them."""
    return functools.partial(build_models, config, every, threads >= 2)


def command(args, config) -> int:
    from livemask.batch.runner import run_batch
    from livemask.batch.worker import FileOptions

    cores = os.cpu_count() or 1
    workers = args.workers if args.workers is not None else cores
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if args.every < 1:
        raise ConfigError(f"--every must be at least 1, got {args.every}")
    if args.address and args.engine != "ray":
        raise ConfigError("--address needs --engine ray")
    if args.address:
        from livemask.batch.ray_executor import check_address

        check_address(args.address)  # an unreachable cluster: one line within seconds, not Ray's retries
    threads = args.threads if args.threads is not None else max(1, cores // workers)
    options = FileOptions(args.every, args.write_video, args.blur_faces)
    factory = model_factory(config, args.every, threads)
    if args.engine == "ray":
        from livemask.batch.ray_executor import import_ray

        import_ray()  # the one-line install hint before anything else happens

    def make_executor(out_dir):
        if args.engine == "ray":
            from livemask.batch.ray_executor import RayExecutor

            return RayExecutor(factory, out_dir, options, workers, threads, args.address)
        from livemask.batch.local_executor import LocalExecutor

        return LocalExecutor(factory, out_dir, options, workers, threads)

    report = run_batch(args.inputs, args.out, make_executor, resume=args.resume, progress=not args.no_progress)
    ok, failed, skipped = report.count("ok"), report.count("failed"), report.count("skipped")
    print(f"livemask: batch: {ok} ok, {failed} failed, {skipped} skipped in {report.elapsed_s:.1f} s; "
          f"summary in {report.tables[0] if report.tables else args.out}", file=sys.stderr)
    for row in report.rows:
        if row.status == "failed":
            text = row.error if row.path in (row.error or "") else f"{row.path}: {row.error}"
            print(f"livemask: failed: {text}", file=sys.stderr)
    return report.exit_code

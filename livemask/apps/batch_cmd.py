"""``livemask batch``: many videos and photos, each into its own output folder, with a summary table.

It hands the worker processes (or Ray actors) the composition root's
:func:`~livemask.apps.compose.batch_models`, which each of them calls once. Everything else lives in
:mod:`livemask.batch`.
"""

from __future__ import annotations

import logging
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
    parser.add_argument("--no-report", action="store_true", help="do not write report.html (the compliance report "
                                                                  "of every input's events) beside summary.csv")


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
    from livemask.apps.compose import batch_model_factory

    factory = batch_model_factory(config, args.every, threads)
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
    if not args.no_report:
        from livemask.apps.report_cmd import folder_report

        folder_report(args.out)
    return report.exit_code

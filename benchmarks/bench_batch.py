"""``livemask batch`` throughput: 1 vs 2 local workers, Ray vs local, and the per-worker model load.

The clips are made here from scikit-image's photos (``livemask.apps.demo``: the astronaut moving across a
640x480 frame), ``--clips`` files of ``--frames`` frames each. Each configuration runs the real batch
(:func:`livemask.batch.runner.run_batch` with the composition root's ``batch_models``) into a fresh folder:

* ``wall``: from start to summary written, including worker start-up and model loading;
* ``fps (wall)``: frames / wall; ``fps (processing)``: the sum over workers of each worker's frames / the
  seconds it spent on files (model load and scheduling excluded), the rate a long batch approaches;
* ``load``: the model load (detector, classifier, warm-up) each worker paid once, on its first file.

Every figure is printed with the load average at that moment (``uptime``): on a shared machine they are
figures *under load*.

Usage: python benchmarks/bench_batch.py [--clips 6] [--frames 120] [--no-ray] [--set SECTION.KEY=VALUE ...]

``--set`` changes the config for every configuration (e.g. ``--set detector.precision=int8``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table

ROOT = Path(__file__).resolve().parent.parent


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run_config(clips: list[Path], config: dict, engine: str, workers: int, threads: int, work: Path) -> dict:
    from livemask.apps.compose import batch_model_factory
    from livemask.batch.runner import run_batch
    from livemask.batch.worker import FileOptions

    options = FileOptions()
    factory = batch_model_factory(config, 1, threads)  # as the command: 1 thread = stages in turn, 2+ = overlapped

    def make_executor(out_dir):
        if engine == "ray":
            from livemask.batch.ray_executor import RayExecutor

            return RayExecutor(factory, out_dir, options, workers, threads)
        from livemask.batch.local_executor import LocalExecutor

        return LocalExecutor(factory, out_dir, options, workers, threads)

    out = Path(tempfile.mkdtemp(dir=work))
    before = load_average()
    started = time.monotonic()
    report = run_batch([str(c) for c in clips], out, make_executor, progress=False)
    wall = time.monotonic() - started
    assert report.count("ok") == len(clips), [r.error for r in report.rows]
    frames = sum(r.frames for r in report.rows)
    loads = [r.model_load_s for r in report.rows if r.worker_file == 1]
    per_file = [r.processing_s for r in report.rows]
    busy: dict[str, list[float]] = {}  # worker -> [frames, seconds spent on files]
    for r in report.rows:
        w = busy.setdefault(r.worker, [0, 0.0])
        w[0] += r.frames
        w[1] += r.processing_s
    return {"engine": engine, "workers": workers, "threads": threads, "frames": frames, "wall": wall,
            "fps_wall": frames / wall, "fps_steady": sum(f / max(s, 1e-6) for f, s in busy.values()),
            "load": statistics.mean(loads), "file_s": statistics.mean(per_file),
            "load_avg": f"{before} -> {load_average()}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every configuration (repeatable)")
    args = parser.parse_args()

    from livemask.apps.compose import load_config
    from livemask.apps.demo import write_demo
    from livemask.config import apply_overrides, parse_set

    config = apply_overrides(load_config(), parse_set(args.set))
    config["classifier"]["model_path"] = str(ROOT / "models" / "mask_classifier.keras")
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        work = Path(tmp)
        clips = [write_demo(work / "clips" / f"clip{i}.mp4", args.frames) for i in range(args.clips)]
        configs = [("local", 1, 1), ("local", 2, 1), ("local", 1, 2)]
        have_ray = not args.no_ray
        if have_ray:
            try:
                import ray
            except ImportError:
                have_ray = False
        if have_ray:
            configs.append(("ray", 2, 1))
        results = []
        for engine, workers, threads in configs:
            r = run_config(clips, config, engine, workers, threads, work)
            print(f"# {engine} x{workers} ({threads} thread/worker): {r['fps_wall']:.1f} fps, load {r['load_avg']}",
                  file=sys.stderr)
            results.append(r)

    print(f"Machine: {machine()}. Batch of {args.clips} clips x {args.frames} frames (640x480, mp4v). "
          f"Load average (1/5/15 min) before -> after each run in the last column (2 cores: above ~2 the "
          f"machine is shared and the figures are under load). Config overrides: {', '.join(args.set) or 'none'}.\n")
    rows = [[r["engine"], r["workers"], r["threads"], r["frames"], f"{r['wall']:.1f}", f"{r['fps_wall']:.1f}",
             f"{r['fps_steady']:.1f}", f"{r['load']:.1f}", f"{r['file_s']:.2f}", r["load_avg"]] for r in results]
    print(table(["engine", "workers", "threads/worker", "frames", "wall s", "fps (wall)", "fps (processing)",
                 "model load s / worker", "mean s / file", "load average"], rows))
    one = next(r for r in results if r["engine"] == "local" and r["workers"] == 1 and r["threads"] == 1)
    two = next(r for r in results if r["engine"] == "local" and r["workers"] == 2)
    lines = [f"\n- 2 vs 1 local workers (1 thread each): {two['fps_wall'] / one['fps_wall']:.2f}x (wall), "
             f"{two['fps_steady'] / one['fps_steady']:.2f}x (processing); target >= 1.7x"]
    ray = next((r for r in results if r["engine"] == "ray"), None)
    if ray is not None:
        lines.append(f"- Ray vs local, 2 workers: {100 * (ray['wall'] / two['wall'] - 1):+.0f}% wall, "
                     f"{100 * (two['fps_steady'] / ray['fps_steady'] - 1):+.0f}% processing; target <= +15%")
    lines.append(f"- model load: {one['load']:.1f} s once per worker; over the {args.clips} files of one worker that "
                 f"is {one['load'] / args.clips:.2f} s per file next to {one['file_s']:.2f} s of work per file; "
                 "a worker's 2nd and later files pay none")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

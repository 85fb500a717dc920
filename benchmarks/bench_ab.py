"""Before / after: the same ``livemask run`` from two checkouts, interleaved, on one looped clip.

Each repeat runs the baseline checkout and then this one, one after the other, as separate
processes (``python -m livemask run --headless --output --events``, the default run settings,
the same model file for both), so that a change of machine load hits both sides alike. The
figure per run is the run's own ``fps`` from the summary line of its event log: frames
written over the engine's running time (model loading and start-up excluded).

Make the baseline with ``git worktree add /tmp/lm-before <commit>``; it must accept ``--set``
and write a summary line into ``--events`` (any commit since the first release does). The two
sides may also be this checkout with different settings (``--baseline .`` and ``--baseline-set`` /
``--set``, e.g. the detector's two runtimes).

Usage: python benchmarks/bench_ab.py --baseline /tmp/lm-before [--model PATH] [--loops 4] [--repeats 5]
       python benchmarks/bench_ab.py --baseline . --baseline-set detector.runtime=opencv \
           --set detector.runtime=onnxruntime
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import CLIP_SOURCE, build_clip
from common import machine, table

ROOT = Path(__file__).resolve().parent.parent


def looped(clip: Path, loops: int, out: Path) -> tuple[Path, int]:
    """``clip`` played ``loops`` times into one mp4v file (long enough that start-up effects vanish)."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return out, len(frames) * loops


def run_once(checkout: Path, clip: Path, model: str, out: Path, settings: list[str] = ()) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    events = out / "events.jsonl"
    cmd = [sys.executable, "-m", "livemask", "run", "--source", str(clip), "--headless",
           "--output", str(out / "out.mp4"), "--events", str(events), "--set", f"classifier.model_path={model}",
           *(arg for setting in settings for arg in ("--set", setting))]
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: livemask run failed ({proc.returncode}): {proc.stderr[-500:]}")
    summary = json.loads(events.read_text().splitlines()[-1])["summary"]
    return {"fps": float(summary["fps"]), "frames": int(summary["frames_written"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare against")
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for the baseline's runs (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for this checkout's runs (repeatable)")
    args = parser.parse_args()
    if not (args.baseline / "livemask" / "__main__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: not a livemask checkout")
    if not CLIP_SOURCE.is_file():
        print(f"skipped: the benchmark clip needs {CLIP_SOURCE} (../shared/data is not here)")
        return 0
    model = str(Path(args.model).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="bench_ab_"))
    clip, _ = build_clip(tmp / "clip640x480.mp4")
    clip, n = looped(clip, args.loops, tmp / "looped.mp4")
    sides = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    settings = {"baseline": args.baseline_set, "this checkout": args.set}
    load_before = os.getloadavg()
    fps: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.repeats):
        for name, checkout in sides.items():
            result = run_once(checkout, clip, model, tmp / f"{name.replace(' ', '_')}-{r}", settings[name])
            if result["frames"] != n:
                raise SystemExit(f"{name}: wrote {result['frames']} of {n} frames")
            fps[name].append(result["fps"])
            print(f"# repeat {r + 1}: {name} {result['fps']:.1f} fps", flush=True)
    load_after = os.getloadavg()
    base, this = statistics.median(fps["baseline"]), statistics.median(fps["this checkout"])
    print(f"\nMachine: {machine()}. Clip: {CLIP_SOURCE.name} letterboxed to 640x480, looped {args.loops}x = {n} "
          f"frames; default run settings, --headless --output --events; model {Path(model).name}.")
    print(f"Load average (1/5/15 min) {' / '.join(f'{x:.1f}' for x in load_before)} -> "
          f"{' / '.join(f'{x:.1f}' for x in load_after)}.\n")
    rows = [[name, str(checkout), " ".join(settings[name]) or "-", f"{statistics.median(v):.1f}",
             ", ".join(f"{x:.1f}" for x in v)] for (name, checkout), v in zip(sides.items(), fps.values(), strict=True)]
    print(table(["code", "checkout", "--set", "median fps", "runs (interleaved)"], rows))
    print(f"\nthis checkout / baseline: {this / base:.3f} ({(this / base - 1) * 100:+.1f}%)")
    # each repeat ran both sides back to back: the ratio within a repeat cancels slow drifts of machine load
    paired = [a / b for a, b in zip(fps["this checkout"], fps["baseline"], strict=True)]
    print(f"median of the per-repeat ratios: {statistics.median(paired):.3f} "
          f"({(statistics.median(paired) - 1) * 100:+.1f}%; per repeat {', '.join(f'{x:.3f}' for x in paired)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

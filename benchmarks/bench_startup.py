"""Process start to result, and peak memory, of ``livemask image`` and of ``livemask serve``'s first explanation.

* ``image``: ``livemask image photo.jpg`` (scikit-image's astronaut, 512x512) as a new process, from
  spawn to exit (the result written), and its peak RSS (GNU ``time``), for each configuration:

  - ``full, default``: this install (TensorFlow present), config.yaml as shipped (int8 detector from the
    shipped file, ``models/mask_classifier.onnx``);
  - ``full, int8 quantised at load``: the same network made in memory at every start (a ranges file that
    differs only in its bytes, so the shipped file is not used), the cost the shipped file avoids;
  - ``full, float32 + .keras``: the defaults before issue 24 (float32 detector, the Keras classifier);
  - ``lean, default``: the ``pip install -e '.[lite]'`` virtualenv given with ``--lean-bin`` (no TensorFlow).

  Runs alternate between the configurations (``--repeat`` rounds); the table gives medians.
* ``serve``: ``livemask serve --port 0`` from spawn to the first ``/healthz`` answer, its RSS then (idle,
  before any explanation), and from spawn to the answer of a first ``POST /v1/explain`` sent right after
  ``/healthz`` (``--explain-load first-request``, the default, and ``background``), with the RSS after it.

Usage: python benchmarks/bench_startup.py [--repeat 3] [--lean-bin /tmp/lean/bin] [--no-serve]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, process_rss_mb, table

ROOT = Path(__file__).resolve().parent.parent


def _env(extra_path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    if extra_path is None:
        env["PYTHONPATH"] = str(ROOT)
    else:  # a separate install: its own packages only
        env.pop("PYTHONPATH", None)
        env["PATH"] = f"{extra_path}:{env.get('PATH', '')}"
    return env


def timed_process(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds from spawn to exit, peak RSS in MB) of one process; it must succeed. The peak RSS is GNU
    time's (``/usr/bin/time``, a small process of its own: a child forked from this large one would count
    this one's pages until its exec)."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *args], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    kb = [int(line.split("=")[1]) for line in proc.stderr.splitlines() if line.startswith("maxrss_kb=")]
    return seconds, kb[-1] / 1024.0


def image_configs(tmp: Path, lean_bin: Path | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    ranges = tmp / "ranges.json"
    ranges.write_text(json.dumps(json.loads((ROOT / "face_detector" / "centerface_int8_ranges.json").read_text()),
                                 indent=1))
    quantise_at_load = tmp / "quantise_at_load.py"  # the same network, quantised in memory at every start
    quantise_at_load.write_text("import sys\nfrom pathlib import Path\nfrom face_detector import quantize\n"
                                f"quantize.RANGES = Path({str(ranges)!r})\n"
                                "from livemask.apps.cli import entry\nsys.argv[0] = 'livemask'\nentry()\n")
    photo, out = tmp / "astronaut.jpg", tmp / "out"
    common = ["image", str(photo), "--out", str(out)]
    py = sys.executable
    configs = {
        "full, default": ([py, "-m", "livemask", *common], _env()),
        "full, int8 quantised at load": ([py, str(quantise_at_load), *common], _env()),
        "full, float32 + .keras": ([py, "-m", "livemask", *common, "--set", "detector.precision=float32",
                                    "--set", "classifier.model_path=models/mask_classifier.keras"], _env()),
    }
    if lean_bin is not None:
        configs["lean, default"] = ([str(lean_bin / "livemask"), *common], _env(str(lean_bin)))
    return configs


def bench_image(repeat: int, lean_bin: Path | None) -> list[list[object]]:
    import skimage.data

    rows = []
    with tempfile.TemporaryDirectory(prefix="livemask-startup-") as name:
        tmp = Path(name)
        cv2.imwrite(str(tmp / "astronaut.jpg"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
        configs = image_configs(tmp, lean_bin)
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in configs}
        for _ in range(repeat):
            for key, (args, env) in configs.items():
                runs[key].append(timed_process(args, ROOT, env))
        for key, values in runs.items():
            secs = [s for s, _ in values]
            rss = [m for _, m in values]
            rows.append([f"image: {key}", f"{statistics.median(secs):.2f} s", f"{min(secs):.2f}-{max(secs):.2f} s",
                         f"{statistics.median(rss):.0f} MB", len(values)])
    return rows


def _post_photo(url: str, data: bytes, timeout: float = 300) -> tuple[int, dict]:
    boundary = "livemaskbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, dict(res.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def bench_serve_once(mode: str, photo: bytes) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", "--explain-load", mode],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().split("serving on ")[1].split()[0].rstrip("/")
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5):
                    break
            except OSError:
                time.sleep(0.01)
        healthz = time.perf_counter() - started
        idle = process_rss_mb(proc.pid)
        sent = time.perf_counter()
        while True:  # as the page does: 503 + Retry-After is tried again after that many seconds
            status, headers = _post_photo(url + "/v1/explain?method=all", photo)
            if status != 503:
                break
            time.sleep(float(headers.get("Retry-After", headers.get("retry-after", "1"))))
        if status != 200:
            raise RuntimeError(f"explain answered {status}")
        done = time.perf_counter()
        return {"healthz": healthz, "idle": idle, "explain_from_start": done - started,
                "explain_latency": done - sent, "after": process_rss_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_serve(repeat: int) -> list[list[object]]:
    import skimage.data

    _, buf = cv2.imencode(".jpg", cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    rows = []
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in ("first-request", "background")}
    for _ in range(repeat):
        for mode in runs:
            runs[mode].append(bench_serve_once(mode, buf.tobytes()))
    for mode, values in runs.items():
        med = {k: statistics.median(v[k] for v in values) for k in values[0]}
        rows.append([f"serve --explain-load {mode}", f"{med['healthz']:.2f} s to /healthz",
                     f"{med['idle']:.0f} MB idle",
                     f"first explain {med['explain_from_start']:.2f} s after spawn "
                     f"({med['explain_latency']:.2f} s request)", f"{med['after']:.0f} MB after", len(values)])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds over the configurations (medians)")
    parser.add_argument("--lean-bin", type=Path, help="bin folder of a lean virtualenv (pip install -e '.[lite]')")
    parser.add_argument("--no-serve", action="store_true", help="only the image rows")
    args = parser.parse_args()
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}")
    rows = bench_image(args.repeat, args.lean_bin)
    print(table(["configuration", "start to result (median)", "range", "peak RSS (median)", "runs"], rows))
    if not args.no_serve:
        print()
        print(table(["serve", "start-up", "idle RSS", "first explanation", "RSS after", "runs"],
                    bench_serve(args.repeat)))
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}; machine: {machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The container image (Containerfile, ``make image``): its size, the time from ``podman run`` to the first
``/healthz`` answer (beside the same server started on the host), and a rebuild after a code change.

* size: ``podman image inspect`` of ``livemask:lean`` (and ``livemask:full`` when it was built), uncompressed.
* start: ``podman run -d ... serve --host 127.0.0.1 --port N`` (host network, a token) until ``/healthz``
  answers 200, median and max of ``--starts`` starts, and the CPU seconds the server used until then (on a
  loaded machine the wall time is mostly waiting for a core); the same ``livemask serve`` on the host (the
  exported classifier, as in the image) for comparison, in the same run.
* rebuild: ``make image`` in a temporary copy of the build context with one line added to a source file,
  from the layer cache of the last ``make image`` (``--rebuild``; the copy and its image are removed).

Usage: python benchmarks/bench_container.py [--starts 3] [--rebuild]   (after ``make image``)
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table

ROOT = Path(__file__).resolve().parent.parent
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str, token: str) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(url: str, token: str, started: float, alive) -> float:
    while not healthy(url, token):
        if not alive() or time.monotonic() - started > 180:
            raise RuntimeError(f"no answer from {url}")
        time.sleep(0.05)
    return time.monotonic() - started


def cpu_s(stat: str) -> float:
    """User + system CPU seconds of a process from its ``/proc/PID/stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def container_start(image: str) -> tuple[float, float]:
    port, token, name = free_port(), secrets.token_hex(16), f"livemask-bench-{secrets.token_hex(4)}"
    started = time.monotonic()
    subprocess.run([*PODMAN, "run", "-d", "--name", name, "--network", "host", *LIMITS, "-e", f"LIVEMASK_TOKEN={token}",
                    image, "serve", "--host", "127.0.0.1", "--port", str(port)], check=True, capture_output=True)
    try:
        def alive() -> bool:
            out = subprocess.run([*PODMAN, "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True)
            return out.stdout.strip() == "true"

        seconds = wait_healthy(f"http://127.0.0.1:{port}/healthz", token, started, alive)
        stat = subprocess.run([*PODMAN, "exec", name, "cat", "/proc/1/stat"], capture_output=True, text=True)
        return seconds, cpu_s(stat.stdout)
    finally:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "5", name], capture_output=True)


def host_start() -> tuple[float, float]:
    port, token = free_port(), secrets.token_hex(16)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--set", f"classifier.model_path={ROOT / 'models' / 'mask_classifier.onnx'}"],
                            env={**os.environ, "LIVEMASK_TOKEN": token},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seconds = wait_healthy(f"http://127.0.0.1:{port}/healthz", token, started, lambda: proc.poll() is None)
        return seconds, cpu_s(Path(f"/proc/{proc.pid}/stat").read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def image_size_mb(image: str) -> float | None:
    out = subprocess.run([*PODMAN, "image", "inspect", "-f", "{{.Size}}", image], capture_output=True, text=True)
    return int(out.stdout.strip()) / 1e6 if out.returncode == 0 else None


def rebuild_s() -> float:
    """``make image`` after a one-line change of a source file, in a copy of the build context."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory(prefix="livemask-rebuild-") as tmp:
        copy = Path(tmp)
        for name in [*files.stdout.splitlines(), "models/mask_classifier.onnx"]:
            if (ROOT / name).is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, copy / name)
        make = ["make", "-C", str(copy), "--no-print-directory", "image", "IMAGE=livemask-bench-rebuild",
                f"BIN={Path(sys.executable).parent}"]
        subprocess.run(make, check=True, capture_output=True)  # the copy as it is: all from the cache
        with open(copy / "livemask" / "apps" / "cli.py", "a") as fh:
            fh.write("# a code change\n")
        started = time.monotonic()
        subprocess.run(make, check=True, capture_output=True)
        seconds = time.monotonic() - started
    subprocess.run([*PODMAN, "rmi", "livemask-bench-rebuild:lean"], capture_output=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="livemask:lean")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="also time a rebuild after a code change")
    args = parser.parse_args()
    load = open("/proc/loadavg").read().split()[0]
    rows = []
    for image in (args.image, args.image.replace(":lean", ":full")):
        size = image_size_mb(image)
        rows.append([f"size of {image}", "-" if size is None else f"{size:.0f} MB"])
    inside = [container_start(args.image) for _ in range(args.starts)]
    host = [host_start() for _ in range(args.starts)]
    for where, runs in (("container", inside), ("host process", host)):
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        rows.append([f"start to /healthz, {where}: wall median / max; server CPU median",
                     f"{statistics.median(wall):.1f} / {max(wall):.1f} s; {statistics.median(cpu):.1f} s"])
    if args.rebuild:
        rows.append(["make image after a code change", f"{rebuild_s():.0f} s"])
    print(table(["measure", "value"], rows))
    print(f"load average at the start: {load}; after: {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()

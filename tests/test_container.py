"""The lean container image (Containerfile, ``make image``) run by Podman: the same faces as on the host,
``serve`` with a token and a health check, a headless run writing to a mounted ``/out``.

Skipped when Podman is not installed (``make container-deps``). The image is built by ``make image``
once per session (from the layer cache when nothing changed). Containers use the host's network and
listen on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import pytest
from livehelpers import astronaut_bgr, read_events, read_video, write_clip

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("LIVEMASK_IMAGE", "livemask:lean")
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
ONNX = ROOT / "models" / "mask_classifier.onnx"

pytestmark = [pytest.mark.slow, pytest.mark.container,
              pytest.mark.skipif(shutil.which("podman") is None,
                                 reason="podman is not installed (make container-deps)")]


@pytest.fixture(scope="module")
def image() -> str:
    """The lean image, built (or taken from the layer cache) by ``make image`` with this Python's tools."""
    if "LIVEMASK_IMAGE" not in os.environ:
        proc = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "image",
                               f"BIN={Path(sys.executable).parent}"], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return IMAGE


def podman_run(image: str, *args: str, options=(), timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN, "run", "--rm", "--network", "host", *LIMITS, *options, image, *args],
                          capture_output=True, text=True, timeout=timeout)


def readable_dir(path: Path) -> Path:
    """``path`` readable by the image's non-root user (pytest's temporary folders are 0700)."""
    path.chmod(0o755)
    for child in path.iterdir():
        child.chmod(0o644)
    return path


def host_records(folder: Path, out: Path, *sets: str) -> dict[str, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "livemask", "image", str(folder), "--json", "--out", str(out),
                           "--set", f"classifier.model_path={ONNX}", *[f"--set={s}" for s in sets]],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {Path(r["path"]).name: r["faces"] for r in map(json.loads, proc.stdout.splitlines())}


def photos(folder: Path, data: Path | None) -> Path:
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.png"), astronaut_bgr())
    if data is not None:  # real scenes with several small faces, when the data folder is there
        for path in sorted((data / "scenes" / "images").glob("*.jpg"))[:40:10]:
            shutil.copy(path, folder / path.name)
    return readable_dir(folder)


@pytest.fixture(scope="module")
def data_or_none():
    from conftest import DATA

    return DATA if (DATA / "scenes" / "images").is_dir() else None


def test_version_matches_the_host(image):
    host = subprocess.run([sys.executable, "-m", "livemask", "--version"], capture_output=True, text=True)
    inside = podman_run(image, "--version")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() == host.stdout.strip() != ""


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_image_prints_the_same_faces_as_the_host(image, tmp_path, data_or_none, precision):
    folder = photos(tmp_path / "in", data_or_none)
    host = host_records(folder, tmp_path / "out", f"detector.precision={precision}")
    proc = podman_run(image, "image", "/data", "--json", "--out", "/tmp/out",
                      "--set", f"detector.precision={precision}", options=["-v", f"{folder}:/data:ro"])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    inside = {Path(r["path"]).name: r["faces"] for r in map(json.loads, proc.stdout.splitlines())}
    assert sorted(inside) == sorted(host) == sorted(p.name for p in folder.iterdir())
    assert len(host["astronaut.png"]) == 1
    for name, faces in host.items():
        assert [f["label"] for f in inside[name]] == [f["label"] for f in faces], name
        for a, b in zip(inside[name], faces):
            assert max(abs(x - y) for x, y in zip(a["box"], b["box"])) <= 1.0, (name, a["box"], b["box"])


def test_batch_runs_without_tensorflow(image, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "clip.mp4", 20, fps=25.0)
    cv2.imwrite(str(folder / "astronaut.png"), astronaut_bgr())
    readable_dir(folder)
    out = tmp_path / "out"
    out.mkdir()
    proc = podman_run(image, "batch", "/data", "--out", "/out/batch", "--no-progress",
                      options=["--user", f"{os.getuid()}:{os.getgid()}",
                               "-v", f"{folder}:/data:ro", "-v", f"{out}:/out"])
    assert proc.returncode == 0, proc.stderr
    with open(out / "batch" / "summary.csv", newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    assert sorted(rows) == ["astronaut.png", "clip.mp4"]
    assert {r["status"] for r in rows.values()} == {"ok"}, rows
    assert int(rows["clip.mp4"]["frames"]) == 20 and rows["astronaut.png"]["people"] == "1", rows


def test_serve_without_a_token_refuses_to_start(image):
    # the image's own command (all interfaces) without LIVEMASK_TOKEN; no network, in case it ever did listen
    proc = subprocess.run([*PODMAN, "run", "--rm", "--network", "none", *LIMITS, image],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("livemask: error:")]
    assert len(errors) == 1 and "needs a token" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, token: str | None = None, data: bytes | None = None, headers=None):
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def multipart(name: str, data: bytes) -> tuple[bytes, dict]:
    boundary = secrets.token_hex(8)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_serve_answers_with_the_token_as_a_non_root_user_and_turns_healthy(image):
    port, token = free_port(), secrets.token_hex(16)
    name = f"livemask-test-{secrets.token_hex(4)}"
    url = f"http://127.0.0.1:{port}"
    subprocess.run([*PODMAN, "run", "-d", "--name", name, "--network", "host", *LIMITS,
                    "-e", f"LIVEMASK_TOKEN={token}", "-e", f"LIVEMASK_HEALTHZ={url}/healthz",
                    image, "serve", "--host", "127.0.0.1", "--port", str(port)],
                   check=True, capture_output=True, timeout=120)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = get(f"{url}/healthz", token)
                break
            except OSError:
                state = subprocess.run([*PODMAN, "inspect", "-f", "{{.State.Running}}", name],
                                       capture_output=True, text=True).stdout.strip()
                logs = subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True).stderr
                assert state == "true" and time.monotonic() < deadline, logs
                time.sleep(0.2)
        assert (status, body["status"]) == (200, "ok")
        assert get(f"{url}/healthz")[0] == 401
        assert get(f"{url}/healthz", "x" * 32)[0] == 401
        _, png = cv2.imencode(".png", astronaut_bgr())
        status, body = get(f"{url}/v1/image", token, *multipart("astronaut.png", png.tobytes()))
        assert status == 200, body
        assert len(body["faces"]) == 1 and body["faces"][0]["label"] in ("mask", "no_mask", "mask_incorrect")
        assert get(f"{url}/v1/image", None, *multipart("astronaut.png", png.tobytes()))[0] == 401
        # no TensorFlow in the lean image: explanations answer 503, the rest of the server works
        assert get(f"{url}/v1/explain", token, *multipart("astronaut.png", png.tobytes()))[0] == 503
        # the server is the container's process 1 (livemask is the entry point): the image's user, not root
        status = subprocess.run([*PODMAN, "exec", name, "cat", "/proc/1/status"], capture_output=True, text=True,
                                timeout=60)
        uids = next(line for line in status.stdout.splitlines() if line.startswith("Uid:"))
        assert set(uids.split()[1:]) == {"1000"}, uids
        cmdline = subprocess.run([*PODMAN, "exec", name, "cat", "/proc/1/cmdline"], capture_output=True, text=True)
        assert "serve" in cmdline.stdout.split("\0"), cmdline.stdout
        check = subprocess.run([*PODMAN, "healthcheck", "run", name], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        health = subprocess.run([*PODMAN, "inspect", "-f", "{{.State.Healthcheck.Status}}", name],
                                capture_output=True, text=True).stdout.strip()
        assert health == "healthy"
    finally:
        subprocess.run([*PODMAN, "rm", "-f", "-t", "5", name], capture_output=True, timeout=60)


@pytest.mark.parametrize("who", ["caller", "another uid"])
def test_headless_run_writes_events_and_video_owned_by_the_user_it_runs_as(image, tmp_path, who):
    """``--user "$(id -u):$(id -g)"``: the files in /out are the caller's. As root, also an arbitrary
    non-root uid (no home folder, no /etc/passwd entry in the image) owning the mounted folder."""
    uid, gid = os.getuid(), os.getgid()
    if who == "another uid":
        if uid != 0:
            pytest.skip("only root can give the output folder to another uid")
        uid = gid = 4321
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "clip.mp4", 30, fps=25.0)
    readable_dir(clips)
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, uid, gid)
    proc = podman_run(image, "run", "--source", "/data/clip.mp4", "--headless", "--output", "/out/run.mp4",
                      "--events", "/out/run.jsonl",
                      options=["--user", f"{uid}:{gid}", "-v", f"{clips}:/data:ro", "-v", f"{out}:/out"])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "W:onnxruntime" not in proc.stderr, proc.stderr  # its warning when it has no writable home
    lines, summary = read_events(out / "run.jsonl")
    assert len(lines) == 30 and summary is not None
    assert any(line["faces"] for line in lines)
    assert len(read_video(out / "run.mp4")) == 30
    if who == "another uid":  # `image` loads ONNX Runtime the way that warned without a writable home
        cv2.imwrite(str(clips / "astronaut.png"), astronaut_bgr())
        readable_dir(clips)
        proc = podman_run(image, "image", "/data/astronaut.png", "--out", "/out/images",
                          options=["--user", f"{uid}:{gid}", "-v", f"{clips}:/data:ro", "-v", f"{out}:/out"])
        assert proc.returncode == 0, proc.stderr
        assert "W:onnxruntime" not in proc.stderr, proc.stderr
        assert (out / "images" / "astronaut.png").is_file()
    # only what was asked for: no home folder's .cache (ONNX Runtime's) in /out, the working folder
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {"run.mp4", "run.jsonl"} | ({"images/astronaut.png"} if who == "another uid" else set())
    for path in out.rglob("*"):
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path

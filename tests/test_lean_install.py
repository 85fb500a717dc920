"""The lean install is one step: ``pip install -e '.[lite]'`` in a fresh virtualenv (pip's cache is fine).

It labels a photo (``livemask image``) and runs a short headless video (``livemask run``) with the
default config, without TensorFlow, which is not importable there; ``livemask explain`` is a
one-line error naming the extra to install (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> Path:
    """The ``bin`` folder of a new virtualenv with ``livemask[lite]`` installed from this clone."""
    where = tmp_path_factory.mktemp("lean") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    bin_dir = where / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                          "-e", f"{ROOT}[lite]"], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env)
    if out.returncode != 0 and "Could not find a version" in out.stderr + out.stdout:
        pytest.skip(f"the package index cannot be reached: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr[-2000:]
    return bin_dir


def _run(bin_dir: Path, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=dict(env, PATH=f"{bin_dir}:{env.get('PATH', '')}"))


def test_lean_install_has_no_tensorflow(lean, tmp_path):
    out = _run(lean, lean / "python", "-c", "import tensorflow", cwd=tmp_path)
    assert out.returncode != 0 and "No module named 'tensorflow'" in out.stderr
    out = _run(lean, lean / "python", "-c", "import livemask, cv2, onnxruntime, fastapi, uvicorn; "
               "print(livemask.__file__, cv2.__version__)", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(ROOT / "livemask"))  # the clone, editable
    major, minor = (int(v) for v in out.stdout.split()[1].split(".")[:2])
    assert (major, minor) == (5, 0)  # requirements.txt: opencv-python>=5.0,<5.1, as in the full install


def test_lean_install_labels_a_photo_and_runs_a_video(lean, tmp_path, astronaut_bgr):
    import cv2
    from clipmaker import write_frames

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    out = _run(lean, lean / "livemask", "image", photo, "--out", tmp_path / "out", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert '"no_mask"' in out.stdout
    assert "tensorflow" not in out.stderr.lower()

    clip = tmp_path / "clip.avi"
    write_frames(clip, [astronaut_bgr[:480, :480]] * 12, fps=10)
    events = tmp_path / "events.jsonl"
    out = _run(lean, lean / "livemask", "run", "--source", clip, "--headless", "--events", events, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = events.read_text().splitlines()
    assert sum('"no_mask"' in line for line in lines) >= 6


def test_lean_install_explain_is_a_one_line_error_naming_the_extra(lean, tmp_path, astronaut_bgr):
    import cv2

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    out = _run(lean, lean / "livemask", "explain", photo, "--out", tmp_path / "maps", cwd=tmp_path)
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'livemask[tf]'" in lines[0], out.stderr



def test_lean_install_serve_labels_and_explain_is_a_503_naming_the_extra(lean, tmp_path, astronaut_bgr):
    """The page's explain request gets a one-line 503 saying what to install; photos are still labelled."""
    from servehelpers import encode
    from test_serve_explain_load import _post

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen([str(lean / "livemask"), "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving on http://127.0.0.1:" in line, (line, proc.poll())
        url = line.split("serving on ")[1].split()[0].rstrip("/")
        status, _, labels = _post(url + "/v1/image", encode(astronaut_bgr))
        assert status == 200 and [f["label"] for f in labels["faces"]] == ["no_mask"]
        status, headers, body = _post(url + "/v1/explain", encode(astronaut_bgr))
        assert status == 503 and "retry-after" not in {k.lower() for k in headers}
        assert "\n" not in body["error"] and "pip install 'livemask[tf]'" in body["error"], body
    finally:
        proc.terminate()
        proc.wait(timeout=30)

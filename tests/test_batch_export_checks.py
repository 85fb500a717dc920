"""Issue 23: ``batch --address`` to an unreachable cluster fails at once, ``batch --out`` inside an input
folder does not re-read its outputs, ``export --output`` is checked before the export runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import cv2
import pytest
from livehelpers import ROOT, astronaut_bgr

from livemask.batch.inputs import expand_inputs


def livemask(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-m", "livemask", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_batch_ray_address_that_nobody_answers_is_one_line_exit_2_within_seconds(tmp_path):
    pytest.importorskip("ray")
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    port = closed_port()
    started = time.monotonic()
    proc = livemask("batch", "--engine", "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "out"),
                    str(photo), "--no-progress", timeout=170)
    elapsed = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"livemask: error: --address 127.0.0.1:{port}: cannot connect")
    assert elapsed < 60, elapsed
    proc = livemask("batch", "--engine", "ray", "--address", "ray://127.0.0.1:notaport", "--out",
                    str(tmp_path / "out"), str(photo))
    assert proc.returncode == 2 and "expected host:port" in proc.stderr


def test_an_output_folder_inside_an_input_folder_is_not_read_as_input(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png"):
        cv2.imwrite(str(photos / name), astronaut_bgr())
    out = photos / "out"
    # what an earlier batch left there: annotated photos and a video in per-input folders
    (out / "a-0123abcd").mkdir(parents=True)
    cv2.imwrite(str(out / "a-0123abcd" / "a.jpg"), astronaut_bgr())
    (out / "clip-89abcdef").mkdir()
    (out / "clip-89abcdef" / "annotated.mp4").write_bytes(b"\0" * 100)
    names = sorted(os.path.relpath(i.path, photos) for i in expand_inputs([str(photos)], exclude_under=out))
    assert names == ["a.jpg", os.path.join("sub", "b.png")]
    # the same through a symlink to the output folder and a relative path
    os.symlink(out, tmp_path / "link-out")
    assert len(expand_inputs([str(photos)], exclude_under=tmp_path / "link-out")) == 2
    # without the output folder (another batch's --out elsewhere) everything under photos is an input
    assert len(expand_inputs([str(photos)])) == 4


@pytest.mark.parametrize("make_output, fragment", [
    (lambda tmp: "/proc/livemask-export.onnx", "not a place for output files"),
    (lambda tmp: (tmp / "file").write_text("x") and str(tmp / "file" / "m.onnx"), "exists and is not a folder"),
    (lambda tmp: (tmp / "dir.onnx").mkdir() or str(tmp / "dir.onnx"), "is a folder"),
])
def test_export_output_is_checked_before_exporting(tmp_path, make_output, fragment):
    output = make_output(tmp_path)
    proc = livemask("export", "--format", "onnx", "--output", output, "--calibration", str(tmp_path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert lines[-1].startswith(f"livemask: error: --output {output}") and fragment in lines[-1], lines
    assert "wrote" not in proc.stdout

"""Issue 10 causes 1, 2, 11, 12 for ``image`` and ``explain``: outputs never replace inputs, never share a
name, unusable output folders fail before any work, and a failed write is one line naming the file."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from conftest import MODEL, ROOT

from livemask.core.errors import OutputError
from livemask.core.output_paths import OutputNames, check_output_file, prepare_out_dir, save_array, write_image

SET_MODEL = ["--set", f"classifier.model_path={MODEL}"]


def livemask(*args, cwd=None, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "livemask", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("livemask: error:")]


@pytest.fixture()
def photos(tmp_path, astronaut_bgr):
    """x.png in the working folder, and a.jpg/a.png in d1 and d2: four inputs, three with stem 'a'."""
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    cv2.imwrite(str(tmp_path / "x.png"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "d1" / "a.jpg"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "d2" / "a.jpg"), astronaut_bgr[:, ::-1])
    cv2.imwrite(str(tmp_path / "d2" / "a.png"), astronaut_bgr[::-1])
    return tmp_path


def test_image_out_dot_keeps_inputs_and_names_every_output(photos):
    before = {p: digest(p) for p in photos.rglob("*.*")}
    proc = livemask("image", "x.png", "d1", "d2", "--out", ".", "--json", *SET_MODEL, cwd=photos)
    assert proc.returncode == 0, proc.stderr
    assert {p: digest(p) for p in before} == before  # no input modified
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    outputs = [r["output"] for r in records]
    assert [r["path"] for r in records] == ["x.png", "d1/a.jpg", "d2/a.jpg", "d2/a.png"]
    assert outputs == ["x-2.png", "a.png", "a-2.png", "a-3.png"]  # x.png is the input: not replaced
    for record in records:
        assert cv2.imread(str(photos / record["output"])) is not None
        assert f"{record['path']}: 1 face(s) -> {record['output']}" in proc.stderr  # the log says where
    assert not list(photos.glob(".*partial*"))


def test_explain_out_dot_with_shared_stems(photos):
    before = {p: digest(p) for p in photos.rglob("*.*")}
    proc = livemask("explain", "x.png", "d1/a.jpg", "d2/a.jpg", "--out", ".", "--json", *SET_MODEL, cwd=photos)
    assert proc.returncode == 0, proc.stderr
    assert {p: digest(p) for p in before} == before
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["panel"] for r in records] == ["x_explain.png", "a_explain.png", "a-2_explain.png"]
    maps = [r["faces"][0]["explanations"][0]["map"] for r in records]
    assert maps == ["x_gradcam.npy", "a_gradcam.npy", "a-2_gradcam.npy"]
    assert all((photos / m).is_file() for m in maps)


def test_explain_never_overwrites_an_input_named_like_its_output(photos):
    (photos / "a_explain.png").write_bytes((photos / "x.png").read_bytes())  # an input with an output's name
    before = digest(photos / "a_explain.png")
    names = OutputNames(photos, [photos / "d1" / "a.jpg", photos / "a_explain.png"])
    panel, npy = names.claim("a", ["{}_explain.png", "{}_gradcam.npy"])
    assert (panel.name, npy.name) == ("a-2_explain.png", "a-2_gradcam.npy")
    assert digest(photos / "a_explain.png") == before


def test_output_names_follow_symlinks_and_hard_links(tmp_path):
    src = tmp_path / "in" / "x.png"
    src.parent.mkdir()
    src.write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.png").symlink_to(src)
    os.link(src, out / "x-2.png")
    names = OutputNames(out, [src])
    assert names.claim("x", ["{}.png"])[0].name == "x-3.png"


@pytest.mark.parametrize("where, expected", [
    ("file", "exists and is not a folder"),
    ("/proc/self/livemask-out", "not a place for output files"),
    ("/sys/livemask", "not a place for output files"),
    ("under_file", "cannot create folder (Not a directory)"),
])
def test_unusable_out_folders(tmp_path, where, expected):
    (tmp_path / "file").write_text("x")
    path = {"file": tmp_path / "file", "under_file": tmp_path / "file" / "sub"}.get(where, Path(where))
    with pytest.raises(OutputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        prepare_out_dir(path)


def test_output_file_checks(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"v")
    with pytest.raises(OutputError, match="is the input"):
        check_output_file(tmp_path / "." / "v.mp4", [video], "--output")
    with pytest.raises(OutputError, match="is also given as --output"):
        check_output_file(tmp_path / "o.mp4", [video], "--events", {"--output": tmp_path / "o.mp4"})
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, [video], "--events")
    assert check_output_file(tmp_path / "o.jsonl", [video], "--events") == tmp_path / "o.jsonl"


def test_cli_out_is_a_file_or_under_proc_fails_before_any_work(photos):
    before = digest(photos / "x.png")
    for out, expected in [(photos / "x.png", f"livemask: error: --out {photos / 'x.png'}: exists and is not a folder"),
                          ("/proc/livemask", "livemask: error: --out /proc/livemask: not a place for output files")]:
        proc = livemask("image", photos / "x.png", "--out", out, cwd=photos, timeout=120)
        found = errors(proc.stderr)
        assert proc.returncode == 2 and len(found) == 1 and found[0].startswith(expected), proc.stderr
        assert "face(s)" not in proc.stderr and "Traceback" not in proc.stderr
    assert digest(photos / "x.png") == before


def _small_file_limit():
    """In the child: files may not grow past 64 kB (EFBIG), like a full disk; SIGXFSZ ignored so the write fails."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("command", ["image", "explain"])
def test_a_failed_write_is_one_line_exit_2_and_never_reported(photos, command):
    out = photos / "o"
    proc = livemask(command, "x.png", "--out", out, "--json", *SET_MODEL, cwd=photos, preexec_fn=_small_file_limit)
    assert proc.returncode == 2, proc.stderr
    name = "x.png" if command == "image" else "x_explain.png"
    assert errors(proc.stderr) == [f"livemask: error: cannot write {out / name} (File too large)"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""  # nothing reported as written
    assert sorted(p.name for p in out.iterdir()) == []  # no partial file under any name


def test_write_helpers_report_the_file(tmp_path):
    import numpy as np

    with pytest.raises(OutputError, match=r"cannot write .*x\.nope \(cannot encode"):
        write_image(tmp_path / "x.nope", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(OutputError, match=r"cannot write .*missing/m\.npy"):
        save_array(tmp_path / "missing" / "m.npy", np.zeros(3))
    path = save_array(tmp_path / "m.npy", np.arange(3.0))
    assert np.load(path).tolist() == [0.0, 1.0, 2.0] and oct(path.stat().st_mode & 0o777) != "0o600"

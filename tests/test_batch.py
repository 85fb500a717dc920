"""``livemask batch`` end to end in subprocesses: real clips (made here from scikit-image photos, plus the
shared clips), a corrupt file and a photo folder, on the local process pool and on Ray in local mode;
events equal to ``livemask run``'s, resume after SIGINT and SIGKILL, a killed worker retried once then
reported failed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clipmaker import write_frames
from livehelpers import MODEL, astronaut_bgr, read_events, run_cli, write_clip

from livemask.batch.inputs import expand_inputs, output_name
from livemask.batch.out_folder import completed_summary

TIMEOUT = 400


def batch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "livemask", "batch", "--set", f"classifier.model_path={MODEL}", "--no-progress",
            *args]


def run_batch(*args: str, timeout: float = TIMEOUT, env: dict | None = None):
    return subprocess.run(batch_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env)


def rows_by_path(out: Path) -> dict[str, dict]:
    with (out / "summary.csv").open(newline="") as fh:
        return {r["path"]: r for r in csv.DictReader(fh)}


def no_timing(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in x.items() if k != "timestamp"} for x in lines]


def cat_clip(path: Path, frames: int = 20) -> Path:
    """A clip with no face in it: scikit-image's cat, slowly panning."""
    import skimage.data

    cat = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
    for i in range(frames):
        writer.write(np.ascontiguousarray(cat[20:260, i:i + 320]))
    writer.release()
    return path


def photo_folder(folder: Path, n: int) -> Path:
    """``n`` photos (the astronaut at several scales, one being the cat), half of them in a sub-folder."""
    import skimage.data

    astro = astronaut_bgr()
    for i in range(n):
        sub = folder / ("deeper" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i == 0:
            image = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
        else:
            side = 200 + 10 * i
            image = cv2.resize(astro, (side, side), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(sub / f"photo{i:02d}.jpg"), image)
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batch_inputs")
    (root / "x").mkdir()
    (root / "y").mkdir()
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return {
        "astro": write_clip(root / "astro.mp4", 40, fps=25.0),
        "same_x": write_clip(root / "x" / "clip.avi", 24, fps=25.0),
        "same_y": cat_clip(root / "y" / "clip.avi"),
        "corrupt": corrupt,
        "photos": photo_folder(root / "photos", 21),
        "root": root,
    }


def batch_args(inputs) -> list[str]:
    return [str(inputs[k]) for k in ("astro", "same_x", "same_y", "corrupt", "photos")]


@pytest.fixture(scope="module")
def local_batch(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local_out")
    proc = run_batch(*batch_args(inputs), "--out", str(out), "--workers", "2", "--write-video")
    return proc, out


def check_batch(proc, out: Path, inputs) -> dict[str, dict]:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # one input failed
    rows = rows_by_path(out)
    photos = sorted(p for p in rows if "/photos/" in p)
    assert len(rows) == 4 + 21 and len(photos) == 21  # the folder was walked recursively
    assert any("/deeper/" in p for p in photos)
    corrupt = rows[str(inputs["corrupt"])]
    assert corrupt["status"] == "failed" and str(inputs["corrupt"]) in corrupt["error"]
    assert not (out / output_name(str(inputs["corrupt"]))).exists()  # a failed input leaves no folder
    assert "livemask: failed:" in proc.stderr and str(inputs["corrupt"]) in proc.stderr
    for key in ("astro", "same_x", "same_y"):
        assert rows[str(inputs[key])]["status"] == "ok", rows[str(inputs[key])]
    # same stem, two folders
    names = {rows[str(inputs[k])]["name"] for k in ("same_x", "same_y")}
    assert len(names) == 2 and all(n.startswith("clip-") for n in names)
    astro = rows[str(inputs["astro"])]
    assert astro["frames"] == "40" and float(astro["duration_s"]) == pytest.approx(1.6)
    assert astro["people"] == "1" and astro["people_no_mask"] == "1" and astro["people_mask"] == "0"
    assert float(astro["share_masked"]) == 0.0 and astro["static_faces"] == "0"
    assert float(astro["first_no_mask_s"]) == 0.0 and float(astro["last_no_mask_s"]) == pytest.approx(1.56)
    cat = rows[str(inputs["same_y"])]
    assert cat["people"] == "0" and cat["share_masked"] == "" and cat["first_no_mask_s"] == ""
    assert float(astro["fps"]) > 0 and astro["worker"]
    for path, row in rows.items():
        if row["status"] != "ok":
            continue
        folder = out / row["name"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "ok" and summary["input"]["path"] == path
        assert summary["input"]["size"] == Path(path).stat().st_size
        lines, run_summary = read_events(folder / "events.jsonl")
        assert len(lines) == int(row["frames"]) and run_summary["frames_written"] == len(lines)
        if "/photos/" not in path:  # a video's people are the people stage's, as in its event log
            assert int(row["people"]) == run_summary["people"]["counted"] == (lines[-1]["people"]["counted"])
    assert not list(out.glob(".partial-*"))
    return rows


def test_local_batch_outputs_rows_and_exit_status(local_batch, inputs):
    proc, out = local_batch
    rows = check_batch(proc, out, inputs)
    # annotated outputs: a playable video per clip, an image per photo
    astro = out / rows[str(inputs["astro"])]["name"]
    cap = cv2.VideoCapture(str(astro / "annotated.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    cap.release()
    photo = next(r for p, r in rows.items() if p.endswith("photo05.jpg"))
    assert cv2.imread(str(out / photo["name"] / "annotated.jpg")) is not None
    assert photo["frames"] == "1" and photo["people"] == "1" and photo["duration_s"] == ""


def test_each_worker_loads_the_models_once(local_batch):
    _, out = local_batch
    rows = [r for r in rows_by_path(out).values() if r["worker"]]
    by_worker: dict[str, list[dict]] = {}
    for r in rows:
        by_worker.setdefault(r["worker"], []).append(r)
    assert len(by_worker) == 2
    for worker_rows in by_worker.values():
        loads = {int(r["worker_file"]): float(r["model_load_s"]) for r in worker_rows}
        assert sorted(loads) == list(range(1, len(loads) + 1))
        assert loads[1] > 0 and all(v == 0.0 for n, v in loads.items() if n > 1)
    assert any(int(r["worker_file"]) >= 10 for r in rows)  # a worker's 10th file paid no model load


def test_events_equal_livemask_run(local_batch, inputs, tmp_path):
    _, out = local_batch
    rows = rows_by_path(out)
    events = tmp_path / "run.jsonl"
    # the batch wrote annotated videos: so does the run (the video sink adds its own summary key)
    proc = run_cli("--source", str(inputs["astro"]), "--headless", "--events", str(events),
                   "--output", str(tmp_path / "run.mp4"))
    assert proc.returncode == 0, proc.stderr
    run_lines, run_summary = read_events(events)
    batch_lines, batch_summary = read_events(out / rows[str(inputs["astro"])]["name"] / "events.jsonl")
    assert no_timing(batch_lines) == no_timing(run_lines)
    assert set(batch_summary) == set(run_summary)
    for key in ("frames_read", "frames_written", "faces", "tracks", "dropped", "ended", "error"):
        assert batch_summary[key] == run_summary[key], key


@pytest.mark.ray
def test_same_batch_on_ray(local_batch, inputs, tmp_path):
    pytest.importorskip("ray")
    _, local_out = local_batch
    out = tmp_path / "ray_out"
    proc = run_batch(*batch_args(inputs), "--out", str(out), "--workers", "2", "--engine", "ray")
    rows = check_batch(proc, out, inputs)
    local_rows = rows_by_path(local_out)
    for path, row in rows.items():
        for key in ("status", "name", "frames", "people", "people_mask", "people_no_mask", "first_no_mask_s"):
            assert row[key] == local_rows[path][key], (path, key)
        if row["status"] == "ok":
            a, _ = read_events(out / row["name"] / "events.jsonl")
            b, _ = read_events(local_out / row["name"] / "events.jsonl")
            assert no_timing(a) == no_timing(b), path
    assert len({r["worker"] for r in rows.values() if r["worker"]}) == 2


def test_missing_ray_is_one_line_error(tmp_path, inputs):
    fake = tmp_path / "noray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")])))
    proc = run_batch(str(inputs["astro"]), "--out", str(tmp_path / "o"), "--engine", "ray", env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("livemask: error:")]
    assert errors == ["livemask: error: --engine ray needs Ray, which is not installed: pip install 'livemask[ray]'"]


def test_every_k_keeps_counts_and_true_positions(inputs, tmp_path):
    out = tmp_path / "o"
    proc = run_batch(str(inputs["astro"]), "--out", str(out), "--workers", "1", "--every", "3")
    assert proc.returncode == 0, proc.stderr
    row = rows_by_path(out)[str(inputs["astro"])]
    assert row["frames"] == "14" and row["people"] == "1" and row["people_no_mask"] == "1"
    lines, _ = read_events(out / row["name"] / "events.jsonl")
    assert [x["position_s"] for x in lines] == pytest.approx([i * 3 / 25.0 for i in range(14)])
    assert {f["track_id"] for x in lines for f in x["faces"]} == {1}


def test_a_still_photo_filmed_for_4_s_is_a_static_face_not_a_person(tmp_path):
    """A clip of a photo that never moves (a poster in view): its face is found, labelled and tracked in
    every frame, but the people stage marks it static, so summary.csv counts no person."""
    still = write_frames(tmp_path / "poster.avi", [np.ascontiguousarray(astronaut_bgr()[0:240, 100:420])] * 100, 25.0)
    out = tmp_path / "o"
    proc = run_batch(str(still), "--out", str(out), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    row = rows_by_path(out)[str(still)]
    lines, run_summary = read_events(out / row["name"] / "events.jsonl")
    assert all(len(x["faces"]) == 1 for x in lines)  # the face is there in every frame
    assert row["people"] == "0" and row["people_no_mask"] == "0" and row["share_masked"] == ""
    assert row["static_faces"] == "1" and run_summary["people"]["static_tracks"] == 1
    assert float(row["first_no_mask_s"]) == 0.0  # the face times still report what was seen


def test_shared_clips_from_a_list_file(data_dir, tmp_path):
    videos = sorted((data_dir / "videos").glob("*.mp4"))
    listing = tmp_path / "clips.txt"
    gone = tmp_path / "gone.mp4"
    listing.write_text("# the shared clips\n" + "\n".join(map(str, videos)) + f"\n\n{gone}\n")
    out = tmp_path / "o"
    proc = run_batch(str(listing), "--out", str(out), "--workers", "2", "--every", "2")
    assert proc.returncode == 1, proc.stderr  # gone.mp4
    rows = rows_by_path(out)
    assert rows[str(tmp_path / "gone.mp4")]["status"] == "failed"
    assert "no such video file" in rows[str(tmp_path / "gone.mp4")]["error"]
    masked = rows[str(data_dir / "videos" / "masked_woman_laptop.mp4")]
    assert masked["status"] == "ok" and int(masked["people_mask"]) >= 1 and masked["people_no_mask"] == "0"
    unmasked = rows[str(data_dir / "videos" / "unmasked_man_outdoors.mp4")]
    assert unmasked["status"] == "ok" and int(unmasked["people_no_mask"]) >= 1
    assert float(unmasked["first_no_mask_s"]) < 1.0


# -- interruption and resume ---------------------------------------------------------------------------
@pytest.fixture
def many_clips(tmp_path) -> list[Path]:
    folder = tmp_path / "clips"
    folder.mkdir()
    return [write_clip(folder / f"c{i:02d}.avi", 60, fps=25.0) for i in range(6)]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def done_folders(out: Path) -> dict[str, str]:
    """Complete output folders -> their summary.json text."""
    return {p.name: (p / "summary.json").read_text() for p in out.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "summary.json").is_file()}


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def check_resumed(out: Path, clips: list[Path], before: dict[str, str]):
    proc = run_batch(str(clips[0].parent), "--out", str(out), "--workers", "1", "--resume")
    assert proc.returncode == 0, proc.stderr
    rows = rows_by_path(out)
    after = done_folders(out)
    assert len(after) == len(clips) and not list(out.glob(".partial-*"))
    for clip in clips:
        row = rows[str(clip)]
        if row["name"] in before:  # done exactly once: untouched by the second run
            assert row["status"] == "skipped" and "earlier run" in row["note"]
            assert after[row["name"]] == before[row["name"]]
        else:
            assert row["status"] == "ok" and row["frames"] == "60", row
    return rows


def test_resume_after_sigint(many_clips, tmp_path):
    out = tmp_path / "o"
    driver = subprocess.Popen(batch_cmd(str(many_clips[0].parent), "--out", str(out), "--workers", "1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: done_folders(out) if out.is_dir() else None, 300, "a first finished file")
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr
    assert "Traceback" not in stderr
    rows = rows_by_path(out)
    before = done_folders(out)
    statuses = [rows[str(c)]["status"] for c in many_clips]
    assert statuses.count("ok") == len(before) >= 1 and "skipped" in statuses
    assert all(rows[str(c)]["error"] == "not started (batch interrupted)" for c in many_clips
               if rows[str(c)]["status"] == "skipped")
    assert not list(out.glob(".partial-*"))  # the running file was finished, not left half-written
    check_resumed(out, many_clips, before)


def test_resume_after_sigkill_takes_no_partial_file_as_done(many_clips, tmp_path):
    out = tmp_path / "o"
    driver = subprocess.Popen(batch_cmd(str(many_clips[0].parent), "--out", str(out), "--workers", "1"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: done_folders(out) if out.is_dir() else None, 300, "a first finished file")
        wait_for(lambda: list(out.glob(".partial-*")), 60, "the next file under way")
        workers = children(driver.pid)
        assert workers
        driver.kill()
        driver.wait(timeout=30)
        # the orphaned worker notices and leaves (abandoning its file) instead of running on
        wait_for(lambda: not any(alive(w) for w in workers), 60, "the orphaned workers to exit")
    finally:
        driver.kill()
    before = done_folders(out)
    assert 1 <= len(before) < len(many_clips)
    # a folder that looks like an output but has no summary.json (as if written without the rename) is not done
    fake = out / output_name(str(many_clips[-1]))
    if fake.name not in before:
        fake.mkdir()
        (fake / "events.jsonl").write_text('{"frame_id":0,"faces":[]}\n')
    check_resumed(out, many_clips, before)


# -- a worker that dies ---------------------------------------------------------------------------------
def kill_twice(out: Path, name: str, driver: subprocess.Popen) -> list[int]:
    """SIGKILL whichever worker process holds ``name``, twice (the first try and the retry)."""
    killed = []
    for _ in range(2):
        def holder():
            for p in out.glob(f".partial-{name}-*"):
                pid = int(p.name.rsplit("-", 1)[1])
                if pid not in killed and alive(pid):
                    return pid
            return None

        pid = wait_for(holder, 300, f"a worker on {name}")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    return killed


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_killed_worker_is_retried_once_then_failed(engine, tmp_path):
    if engine == "ray":
        pytest.importorskip("ray")
    long_clip = write_clip(tmp_path / "long.avi", 900, fps=25.0)
    short_clip = write_clip(tmp_path / "short.avi", 20, fps=25.0)
    out = tmp_path / "o"
    driver = subprocess.Popen(batch_cmd(str(long_clip), str(short_clip), "--out", str(out), "--workers", "2",
                                        "--engine", engine),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = kill_twice(out, output_name(str(long_clip)), driver)
        _, stderr = driver.communicate(timeout=180)  # never hangs
    finally:
        driver.kill()
    assert len(set(killed)) == 2
    assert driver.returncode == 1, stderr
    rows = rows_by_path(out)
    failed = rows[str(long_clip)]
    assert failed["status"] == "failed" and failed["attempts"] == "2"
    assert "died" in failed["error"] and "tried 2 times" in failed["error"]
    assert rows[str(short_clip)]["status"] == "ok"
    assert not (out / output_name(str(long_clip))).exists()


# -- in-process checks of the input rules ---------------------------------------------------------------
def test_inputs_expand_folders_lists_and_names(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    for p in ("a/clip.mp4", "a/deep/x.JPG", "a/notes.md", "b/clip.mp4"):
        (tmp_path / p).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nb/clip.mp4\n\nhttps://example.org/cam/1.mp4\na/clip.mp4\n")
    items = expand_inputs([str(tmp_path / "a"), str(listing), str(tmp_path / "missing.avi")])
    kinds = [(Path(i.path).name, i.kind) for i in items]
    assert kinds == [("clip.mp4", "video"), ("x.JPG", "image"), ("clip.mp4", "video"), ("1.mp4", "url"),
                     ("missing.avi", "video")]  # a/clip.mp4 only once, notes.md not taken
    names = [i.name for i in items]
    assert len(set(names)) == len(names) and names[0] != names[2]
    assert names == [i.name for i in expand_inputs([str(tmp_path / "a"), str(listing), str(tmp_path / "missing.avi")])]
    assert items[-1].size is None and items[0].size == 1


def test_resume_check_needs_same_size_and_mtime(tmp_path):
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"abc")
    (item,) = expand_inputs([str(clip)])
    folder = tmp_path / "out" / item.name
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text("{}\n")
    summary = {"status": "ok", "input": item.fingerprint, "outputs": ["events.jsonl"]}
    (folder / "summary.json").write_text(json.dumps(summary))
    assert completed_summary(tmp_path / "out", item) is not None
    clip.write_bytes(b"abcd")  # the file changed: do it again
    (changed,) = expand_inputs([str(clip)])
    assert completed_summary(tmp_path / "out", changed) is None
    (folder / "events.jsonl").unlink()  # an output listed but missing: not complete
    assert completed_summary(tmp_path / "out", item) is None

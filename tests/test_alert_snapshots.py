"""Alert snapshots (issue 23): the folder is checked at start-up, an alert names its crop only when the
file was written, and names are unique per run and never replace a file."""

from __future__ import annotations

import json

import cv2
import numpy as np
from livehelpers import astronaut_bgr, run_cli, write_clip

from livemask.core.records import alert_record
from livemask.core.types import Detections, Frame, FrameResult, Predictions
from livemask.engine.people import AlertRule, People, PeopleOptions
from livemask.sinks.alerts import AlertSnapshots

CLASSES = ("mask", "no_mask")
BOX = (150.0, 20.0, 260.0, 150.0)


def _unmasked_run(people: People, frames: int = 30) -> list:
    """A still-moving unmasked face for ``frames`` frames at 10 fps; the alerts fired."""
    base = np.ascontiguousarray(astronaut_bgr()[0:240, 100:420])
    alerts = []
    for i in range(frames):
        dx = 3 * (i % 20)
        image = np.roll(base, dx, axis=1)
        box = np.array([[BOX[0] + dx, BOX[1], BOX[2] + dx, BOX[3]]], np.float32)
        frame = Frame(i, 1000.0 + i / 10, image, "test", i * 100.0)
        result = FrameResult(frame, Detections(box, np.full((1,), 0.9, np.float32)),
                             Predictions(np.array([[0.1, 0.9]], np.float32), CLASSES), np.array([1], np.int64))
        alerts += people.update(result).analytics.alerts
    return alerts


def _people(snapshots) -> People:
    return People(PeopleOptions(min_track_s=0.2), AlertRule(("no_mask",), after_s=0.5, cooldown_s=1.0), snapshots)


def test_an_alert_names_its_snapshot_only_when_the_file_was_written(tmp_path):
    good = AlertSnapshots(tmp_path / "snaps")
    alerts = _unmasked_run(_people(good))
    assert len(alerts) >= 2
    for alert in alerts:
        assert alert.snapshot is not None
        crop = cv2.imread(alert.snapshot)
        assert crop is not None and min(crop.shape[:2]) >= 20
    assert good.written == len(alerts) and good.errors == 0
    # a folder that stopped being usable during the run (here: a file where the folder should be)
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    bad = AlertSnapshots(blocker / "alerts")
    alerts = _unmasked_run(_people(bad))
    assert alerts and all(a.snapshot is None for a in alerts)
    assert all(json.loads(json.dumps(alert_record(a)))["snapshot"] is None for a in alerts)
    assert bad.errors == len(alerts) and bad.written == 0


def test_two_runs_sharing_a_folder_never_overwrite_each_other(tmp_path):
    folder = tmp_path / "alerts"
    image = np.full((240, 320, 3), 100, np.uint8)
    first, second = AlertSnapshots(folder), AlertSnapshots(folder)
    # the same second, frame and track in two runs (two cameras): two files
    paths = [w.save(image, BOX, 7, 1, 1000.0) for w in (first, second)]
    # the same run asked twice for the same name, and a file already there under the next name
    again = first.save(image, BOX, 7, 1, 1000.0)
    paths.append(again)
    assert len(set(paths)) == 3 and all(p is not None for p in paths)
    assert again == paths[0][:-len(".png")] + "-2.png"
    taken = folder / (paths[0][len(str(folder)) + 1:-len(".png")] + "-3.png")
    taken.write_bytes(b"someone else's file")
    paths.append(first.save(image, BOX, 7, 1, 1000.0))
    assert paths[-1] == paths[0][:-len(".png")] + "-4.png"
    assert taken.read_bytes() == b"someone else's file"
    assert len(list(folder.iterdir())) == 5
    assert first.run_id != second.run_id


def test_an_unusable_snapshot_folder_is_refused_at_start_up(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", 10)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for folder, why in ((blocker / "snaps", "cannot create folder"), ("/proc/livemask-snaps", "kernel/device")):
        proc = run_cli("--source", str(clip), "--headless", "--set", f"run.snapshot_dir={folder}", timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("livemask: error: run.snapshot_dir ") and why in lines[0], lines
    # alerts off (or without snapshots): the folder is not needed, so not checked
    from livemask.apps import compose

    for key in ("alerts.enabled", "alerts.snapshots"):
        config = compose.apply_overrides(compose.load_config(), {"run.snapshot_dir": str(blocker / "snaps"),
                                                                 key: False})
        compose.check_snapshot_dir(config, compose.run_options(config))

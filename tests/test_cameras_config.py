"""Issue 26 (config): the ``cameras`` section, ``--camera NAME=SOURCE`` and their one-line errors (exit 2)."""

from __future__ import annotations

import pytest

from livemask.apps import cli, compose
from livemask.core.errors import ConfigError

SITE = """\
cameras:
  door:
    source: rtsp://127.0.0.1:8554/door
    detect_every: 3
    alert_after_s: 5
  yard-2:
    source: clips/yard.mp4
    realtime: true
    detector_long_side: 480
  spare:
    source: "0"
    enabled: false
"""


def _load(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return compose.load_config(path)


def _error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    return message.replace(str(tmp_path / "config.yaml"), "CFG")


def test_cameras_section_builds_enabled_cameras_in_order_with_their_own_keys(tmp_path):
    config = _load(tmp_path, SITE)
    cams = compose.cameras(config)
    assert list(cams) == ["door", "yard-2"]  # "spare" is disabled
    assert cams["door"].detect_every == 3 and cams["door"].detector_long_side is None
    door = compose.camera_config(config, cams["door"], compose.run_options(config))
    assert door["pipeline"]["detect_every"] == 3
    assert door["alerts"]["after_s"] == 5.0
    assert door["source"]["source"] == "rtsp://127.0.0.1:8554/door"
    assert "detector_long_side" not in door["pipeline"]  # not set for this camera: the section's (default)
    yard = compose.camera_config(config, cams["yard-2"], compose.run_options(config))
    assert yard["source"]["realtime"] is True and yard["pipeline"]["detector_long_side"] == 480
    assert yard["run"]["snapshot_dir"].endswith("yard-2")


@pytest.mark.parametrize("text, expected", [
    ("cameras:\n  Door:\n    source: x.mp4\n", "bad camera name 'Door'"),
    ("cameras:\n  " + "a" * 33 + ":\n    source: x.mp4\n", "bad camera name"),
    ("cameras:\n  a.b:\n    source: x.mp4\n", "bad camera name 'a.b'"),
    ("cameras:\n  door:\n    source: x.mp4\n    fps: 3\n", "unknown key 'cameras.door.fps' (allowed: alert_after_s"),
    ("cameras:\n  door:\n    detect_every: 2\n", "cameras.door.source: missing"),
    ("cameras:\n  door:\n    source: x.mp4\n    detect_every: 0\n",
     "cameras.door.detect_every: expected an integer in [1, 1000] or null, got 0"),
    ("cameras:\n  door:\n    source: x.mp4\n    detector_long_side: 100\n", "cameras.door.detector_long_side"),
    ("cameras:\n  off:\n    source: x.mp4\n", "the name False is read by YAML as a bool, not a name: quote it"),
    ("cameras:\n  door: x.mp4\n", "cameras.door must be a mapping of settings, got str"),
    ("cameras:\n  door:\n    source: a.mp4\n  door:\n    source: b.mp4\n", "duplicate key"),
])
def test_bad_cameras_section_is_one_line(tmp_path, text, expected):
    message = _error(tmp_path, text)
    assert message.startswith("CFG: ") and expected in message, message


def test_camera_arguments_add_to_the_section_and_replace_a_source(tmp_path):
    config = compose.with_cameras(_load(tmp_path, SITE), ["door=clips/door.mp4", "new_1=rtsp://h/x"])
    cams = compose.cameras(config)
    assert list(cams) == ["door", "yard-2", "new_1"]
    assert cams["door"].source == "clips/door.mp4" and cams["door"].detect_every == 3  # other keys kept
    config = compose.apply_overrides(config, {"cameras.door.detect_every": 5}, "--set")
    assert compose.cameras(config)["door"].detect_every == 5


@pytest.mark.parametrize("argv, expected", [
    (["--camera", "A=x.mp4"], "--camera: bad camera name 'A'"),
    (["--camera", "a=x.mp4", "--camera", "a=y.mp4"], "--camera: camera 'a' given twice"),
    (["--camera", "a"], "--camera 'a': expected NAME=SOURCE"),
    (["--camera", "a="], "expected NAME=SOURCE"),
    (["--camera", "a=x.mp4", "--source", "y.mp4"], "give either --source (one source) or --camera"),
    (["--camera", "a=x.mp4", "--camera", "b=y.mp4", "--kiosk"], "kiosk mode shows one camera; 2 cameras"),
    (["--camera", "a=x.mp4", "--events", "e.jsonl"], "with cameras the outputs go to --output-dir"),
    (["--camera", "a=x.mp4", "--record"], "--record needs --output-dir"),
    (["--source", "x.mp4", "--output-dir", "out"], "--output-dir and --record are for runs with cameras"),
    (["--set", "cameras.a.fps=3", "--camera", "a=x.mp4"], "unknown key 'cameras.a.fps'"),
])
def test_bad_camera_command_line_is_one_line_exit_2(capsys, argv, expected):
    assert cli.main(["run", "--headless", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("livemask: error: ") and expected in err[-1], err


def test_output_dir_that_is_a_file_is_exit_2_before_the_models_load(tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    assert cli.main(["run", "--headless", "--camera", "a=x.mp4", "--output-dir", str(a_file)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_an_output_that_is_a_cameras_own_file_is_refused_and_the_file_kept(tmp_path, capsys):
    clip = tmp_path / "front.mp4"
    clip.write_bytes(b"not overwritten")
    assert cli.main(["run", "--headless", "--camera", f"front={clip}", "--output-dir", str(tmp_path), "--record"]) == 2
    err = capsys.readouterr().err
    assert f"is the input {clip}; refusing to overwrite it" in err
    assert clip.read_bytes() == b"not overwritten" and not (tmp_path / "site.jsonl").exists()


def test_several_cameras_share_out_the_cores_among_their_models_threads(tmp_path):
    """With several cameras each detector runs in its camera's own thread: one call split over more threads only
    adds work, so each model's runtime gets the cores shared out (at least one); one camera keeps the runtime's
    own choice, and a ``threads`` key set in the config wins."""
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    model = root / "models" / "mask_classifier.onnx"
    base = f"classifier:\n  model_path: {model}\n  explain_model: null\n"
    config = _load(tmp_path, base)
    shared = max(1, (os.cpu_count() or 1) // 10)
    assert compose.model_threads(config, "detector", 1) == 0
    assert compose.model_threads(config, "detector", 10) == shared
    det = compose.detector(config, 320, cameras=10)
    assert det.net.session.get_session_options().intra_op_num_threads == shared
    clf = compose.classifier(config, cameras=10)
    assert clf.threads == shared
    assert clf.session.get_session_options().intra_op_num_threads == shared
    assert compose.classifier(config).threads == (os.cpu_count() or 1)

    config = _load(tmp_path, base + "detector:\n  threads: 3\n")
    assert compose.model_threads(config, "detector", 10) == 3
    assert compose.detector(config, 320, cameras=10).net.session.get_session_options().intra_op_num_threads == 3
    assert compose.model_threads(config, "classifier", 10) == shared

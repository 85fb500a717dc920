"""config.yaml: sections map to constructor arguments; bad keys and values are named."""

from __future__ import annotations

import pytest

from livemask.apps.compose import apply_overrides, build, load_config
from livemask.config import DEFAULT_CONFIG, parse_set
from livemask.core.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads_and_builds_the_detector():
    config = load_config(DEFAULT_CONFIG)
    assert config["detector"]["name"] == "centerface"
    detector = build(config, "detector")
    assert type(detector).__name__ == "CenterFaceDetector"
    assert detector.score_threshold == config["detector"]["score_threshold"]


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "detector:\n  name: centerface\n  score_treshold: 0.3\n")
    expected = rf"{path}: unknown key 'detector.score_treshold' \(allowed: .*score_threshold"
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_unknown_section_and_detector_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown section 'detektor'"):
        load_config(write(tmp_path, "detektor: {}\n"))
    expected = r"detector.name: unknown value 'haar' \(choose from centerface, res10, yunet\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, "detector:\n  name: haar\n"))


def test_wrong_types_are_named(tmp_path):
    expected = r"detector.input_long_side: expected an integer in \[32, 4096\], got str 'big'"
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, "detector:\n  input_long_side: big\n"))
    with pytest.raises(ConfigError, match="detector.upscale: expected bool, got int 1"):
        load_config(write(tmp_path, "detector:\n  upscale: 1\n"))


def test_keys_are_checked_against_the_chosen_detector(tmp_path):
    ok = load_config(write(tmp_path, "detector:\n  name: yunet\n  upscale: 2.0\n"))
    assert ok["detector"]["upscale"] == 2.0
    with pytest.raises(ConfigError, match="unknown key 'detector.input_long_side'"):
        load_config(write(tmp_path, "detector:\n  name: yunet\n  input_long_side: 640\n"))


def test_not_yaml_or_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+\)"):
        load_config(write(tmp_path, "detector:\n  name: [centerface\n"))
    with pytest.raises(ConfigError, match="expected a mapping of sections, got list"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_win_and_are_validated():
    config = load_config()
    out = apply_overrides(config, parse_set(["detector.score_threshold=0.7"]))
    assert out["detector"]["score_threshold"] == 0.7
    assert config["detector"]["score_threshold"] != 0.7  # the original is not changed
    with pytest.raises(ConfigError, match="unknown key 'detector.bogus'"):
        apply_overrides(config, {"detector.bogus": 1})
    with pytest.raises(ConfigError, match="unknown setting 'nosection.key'"):
        apply_overrides(config, {"nosection.key": 1})
    switched = apply_overrides(config, {"detector.name": "yunet", "detector.upscale": 2.0})
    assert switched["detector"] == {"name": "yunet", "upscale": 2.0}
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_set(["detector.score_threshold"])


@pytest.mark.parametrize(("text", "message"), [
    # detector: ranges declared on the detector classes
    ("detector:\n  score_threshold: 5\n", r"detector.score_threshold: expected a number in \[0, 1\], got 5$"),
    ("detector:\n  score_threshold: .nan\n", r"detector.score_threshold: expected a number in \[0, 1\], got nan"),
    ("detector:\n  nms_iou: 0\n", r"detector.nms_iou: expected a number in \(0, 1\], got 0"),
    ("detector:\n  input_long_side: 8\n", r"detector.input_long_side: expected an integer in \[32, 4096\], got 8"),
    ("detector:\n  input_long_side: 100000\n", r"detector.input_long_side: .*got 100000"),
    ("detector:\n  coarse_long_side: 16\n", r"detector.coarse_long_side: .*\(or 0 = off\), got 16"),
    ("detector:\n  min_face: -1\n", r"detector.min_face: expected an integer in \[0, 4096\], got -1"),
    ("detector:\n  name: yunet\n  upscale: .inf\n", r"detector.upscale: expected a number in \(0, 8\], got inf"),
    ("detector:\n  name: res10\n  input_size: 0\n", r"detector.input_size: expected an integer in \[32, 4096\]"),
    # choices, checked when the file is read (not when the detector is built)
    ("detector:\n  runtime: trt\n", r"detector.runtime: expected one of auto, onnxruntime, opencv, got 'trt'$"),
    ("detector:\n  precision: int4\n", r"detector.precision: expected one of float32, int8, got 'int4'$"),
    ("detector:\n  precision: 8\n", r"detector.precision: expected one of float32, int8, got int 8$"),
    ("explain:\n  fill: white\n", r"explain.fill: expected one of grey, blur, skin, got 'white'$"),
    # values whose default is None are type-checked too
    ("detector:\n  model_path: 3\n", r"detector.model_path: expected str or null, got int 3"),
    ("explain:\n  layer: [a]\n", r"explain.layer: expected str or null, got list"),
    ("run:\n  output: 1.5\n", r"run.output: expected str or null, got float 1.5"),
    # every other section
    ("classifier:\n  batch_sizes: [1, 0]\n", r"classifier.batch_sizes\[1\]: expected an integer in \[1, 4096\], got 0"),
    ("classifier:\n  batch_sizes: 8\n", r"classifier.batch_sizes: expected a list of integers"),
    ("source:\n  queue_size: 0\n", r"source.queue_size: expected an integer in \[1, 1000\], got 0"),
    ("source:\n  timeout_s: 0\n", r"source.timeout_s: expected a number in \(0, 3600\], got 0"),
    ("source:\n  reconnect_delay_s: -1\n", r"source.reconnect_delay_s: .*got -1"),
    ("pipeline:\n  detector_long_side: 300\n",
     r"pipeline.detector_long_side: .*a multiple of 32 \(or 0 = off\), got 300"),
    ("pipeline:\n  detect_every: 0\n", r"pipeline.detect_every: expected an integer in \[1, 1000\], got 0"),
    ("pipeline:\n  max_display_age_ms: .inf\n", r"pipeline.max_display_age_ms: .*got inf"),
    ("tracker:\n  iou_threshold: 0\n", r"tracker.iou_threshold: expected a number in \(0, 1\], got 0"),
    ("tracker:\n  vote_frames: 0\n", r"tracker.vote_frames: .*got 0"),
    ("run:\n  progress: 2\n", r"run.progress: expected bool, got int 2"),
    ("explain:\n  patch_fraction: 1.5\n", r"explain.patch_fraction: expected a number in \(0, 1\], got 1.5"),
    ("explain:\n  tile: 10\n", r"explain.tile: expected an integer in \[48, 4096\], got 10"),
    ("explain:\n  alpha: -0.1\n", r"explain.alpha: expected a number in \[0, 1\], got -0.1"),
])
def test_bad_values_name_section_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
        load_config(path)


def test_bad_values_exit_2_with_one_line(tmp_path):
    from livemask.apps.cli import main

    path = write(tmp_path, "detector:\n  score_threshold: 5\n")
    assert main(["image", "--config", str(path), str(tmp_path)]) == 2
    assert main(["image", "--set", "tracker.max_age=-3", str(tmp_path)]) == 2


def test_overrides_and_build_arguments_are_range_checked():
    config = load_config()
    with pytest.raises(ConfigError, match=r"^--set: detector.nms_iou: expected a number in \(0, 1\], got 2"):
        apply_overrides(config, {"detector.nms_iou": 2}, "--set")
    with pytest.raises(ConfigError, match=r"^detector.input_long_side: expected an integer in \[32, 4096\], got 1"):
        build(config, "detector", input_long_side=1)


def test_integers_are_accepted_as_numbers_and_converted():
    config = apply_overrides(load_config(), {"detector.score_threshold": 1, "source.timeout_s": 3})
    assert config["detector"]["score_threshold"] == 1.0 and isinstance(config["detector"]["score_threshold"], float)
    assert config["source"]["timeout_s"] == 3.0

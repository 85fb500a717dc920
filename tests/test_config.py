"""config.yaml: sections map to constructor arguments; bad keys and values are named."""

from __future__ import annotations

import pytest

from livemask.config import DEFAULT_CONFIG, apply_overrides, build, load_config, parse_set
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
    with pytest.raises(ConfigError, match="detector.input_long_side: expected int, got str 'big'"):
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

"""Issue 10 cause 6 (and 13's config items): hostile config files and --set values end in one short line."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from conftest import ROOT

from livemask.apps.compose import load_config
from livemask.config import parse_set
from livemask.core import safeyaml
from livemask.core.errors import ConfigError

ALIAS_BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
              + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
                        for i in range(8)))


def _load(tmp_path, text: str | bytes):
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path, load_config(path)


def _error(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and len(message.replace(str(tmp_path), "")) <= 160, message
    return message


def test_alias_bomb_is_refused_while_composing(tmp_path):
    assert len(ALIAS_BOMB) < 500
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = _error(tmp_path, ALIAS_BOMB)
    assert message.endswith("expands to more than 100000 values (too many aliases) (line 6)")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # the bomb (10**9 strings, gigabytes) is never built


def test_a_few_aliases_are_fine(tmp_path):
    _path, config = _load(tmp_path, "explain: &e\n  tile: 120\ntracker:\n  vote_frames: 5\n")
    assert config["explain"]["tile"] == 120


def test_nesting_50k_deep_is_refused_without_recursion_error(tmp_path):
    message = _error(tmp_path, "detector: " + "[" * 50000 + "]" * 50000)
    assert message.endswith("nested more than 32 levels deep (line 1)")
    deep_map = "".join("  " * i + f"k{i}:\n" for i in range(200))
    assert "nested more than 32 levels deep" in _error(tmp_path, deep_map)


def test_duplicate_keys_are_an_error_naming_key_and_lines(tmp_path):
    message = _error(tmp_path, "detector:\n  score_threshold: 0.3\n  nms_iou: 0.3\n  score_threshold: 0.9\n")
    assert message.endswith("duplicate key 'score_threshold' (first at line 2) (line 4)")
    assert "duplicate key 'run'" in _error(tmp_path, "run:\n  headless: true\nrun:\n  headless: false\n")


def test_long_values_are_not_quoted_in_full(tmp_path):
    huge_key = "k" * 100000
    message = _error(tmp_path, f'detector:\n  ? "{huge_key}"\n  : 1\n  ? "{huge_key}"\n  : 2\n')
    assert "duplicate key 'kkkk" in message and "..." in message
    message = _error(tmp_path, "a: " + "9" * 100000)  # more digits than Python converts
    assert "value cannot be read" in message


@pytest.mark.parametrize("data, expected", [
    (b"detector:\n  name: \xff\xfe\n", "not UTF-8 text (byte 18, line 2)"),
    (b"detector: {}\x00\n", "not a text file (holds NUL bytes)"),
    (b"a: [1, 2\nb: 3", "not valid YAML (line 2): expected ',' or ']', but got ':' at column 2"),
    (b"a: !!python/object/apply:os.system ['true']", "could not determine a constructor"),
    (b"a: &x [*x]\n", "alias *x refers to itself (line 1)"),
    (b"# " + b"x" * (2 << 20), "config file larger than 1024 KiB"),
])
def test_bad_files(tmp_path, data, expected):
    assert expected in _error(tmp_path, data)


def test_set_values():
    assert parse_set(["detector.score_threshold=0.6"]) == {"detector.score_threshold": 0.6}
    for item, expected in [("classifier.model_path=", "empty value"), ("classifier.model_path=  ", "empty value"),
                           ("detector.nms_iou", "expected section.key=value"),
                           ("a.b=[1, 2", "not valid YAML"), ("a.b={x: 1, x: 2}", "duplicate key 'x'"),
                           ("a.b=" + "[" * 5000 + "]" * 5000, "nested more than 32")]:
        with pytest.raises(ConfigError, match=expected) as info:
            parse_set([item])
        assert len(str(info.value)) < 200


def test_quote_is_bounded():
    assert len(safeyaml.quote("x" * 10**6)) <= 60
    assert safeyaml.quote({"a": [1] * 10**6}) == "<dict of 1>"


def test_cli_bomb_config_is_one_line_exit_2_and_small(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    wrapper = ("import resource, subprocess, sys\n"
               "p = subprocess.run([sys.executable, '-m', 'livemask', *sys.argv[1:]], stdin=subprocess.DEVNULL)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
               "sys.exit(p.returncode)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, "image", str(tmp_path), "--config", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"livemask: error: {path}: expands to more than 100000 values (too many aliases) (line 6)\n"
    assert int(proc.stdout.split()[-1]) < 1536
    proc = subprocess.run([sys.executable, "-m", "livemask", "image", str(tmp_path), "--set",
                           "classifier.model_path="], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("livemask: error: --set 'classifier.model_path=': empty")

"""Control characters and non-finite numbers in any setting (issue 23): config file, ``--set``, environment
and flags are one line, exit 2, naming the key; never "internal error". Also ``serve --token-file``'s form."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from livehelpers import ROOT


def livemask(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command in a subprocess."""
    full = {k: v for k, v in os.environ.items() if k not in ("LIVEMASK_TOKEN", "LIVEMASK_SOURCE")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "livemask", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=full)


@pytest.fixture
def in_process(monkeypatch, capsys):
    """``livemask.apps.cli.main`` in this process (the same code as the command, without a Python start-up
    per case), with its SIGINT handler put back afterwards."""
    from livemask.apps import cli

    handler = signal.getsignal(signal.SIGINT)

    def call(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        for name in ("LIVEMASK_TOKEN", "LIVEMASK_SOURCE", "LIVEMASK_MAX_PIXELS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            status = cli.main(list(args))
        finally:
            signal.signal(signal.SIGINT, handler)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out.out, out.err)

    return call


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("livemask: error: "), lines
    assert "internal error" not in lines[0] and "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("args, env, named", [
    (["--set", "detector.name=cen\x01terface"], {}, "detector.name"),
    (["--set", "run.window_name=a\x7fb"], {}, "run.window_name"),
    (["--set", 'run.window_name="a\\x1b[31mred"'], {}, "run.window_name"),  # YAML escape -> ESC
    (["--set", 'alerts.command="notify\\nrm -rf x"'], {}, "alerts.command"),
    (["--set", "alerts.classes=[no_mask, .nan]"], {}, "alerts.classes[1]"),
    (["--set", "detector.score_threshold=.inf"], {}, "detector.score_threshold"),
    ([], {"LIVEMASK_MAX_PIXELS": "100\x01"}, "LIVEMASK_MAX_PIXELS"),
    ([], {"LIVEMASK_MAX_PIXELS": ".nan"}, "images.max_pixels"),
    ([], {"LIVEMASK_SOURCE": "cam\x1b[2J"}, "source.source"),
])
def test_control_characters_and_non_finite_numbers_are_exit_2_naming_the_key(in_process, tmp_path, args, env, named):
    line = one_error_line(in_process("image", str(tmp_path / "none.png"), *args, env=env))
    assert named in line, line
    assert "\x1b" not in line and "\x01" not in line and "\x7f" not in line


def test_a_control_character_in_the_config_file_names_file_and_key(in_process, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('run:\n  window_name: "x\\x07y"\n')
    line = one_error_line(in_process("image", str(tmp_path / "none.png"), "--config", str(config)))
    assert f"{config}: run.window_name: control character U+0007" in line, line


def test_the_real_command_in_a_subprocess(tmp_path):
    """Three of the cases above through ``python -m livemask``: exit status and stderr as a user sees them."""
    line = one_error_line(livemask("image", str(tmp_path / "none.png"), "--set", "detector.name=cen\x01terface"))
    assert "detector.name" in line
    line = one_error_line(livemask("image", str(tmp_path / "none.png"), env={"LIVEMASK_MAX_PIXELS": "1\x01"}))
    assert "LIVEMASK_MAX_PIXELS" in line
    line = one_error_line(livemask("serve", "--port", "0", "--max-upload-mb", "nan"))
    assert "--max-upload-mb" in line


@pytest.mark.parametrize("flag, value", [("--max-upload-mb", "nan"), ("--max-upload-mb", "inf"),
                                         ("--decode-budget-mb", "-1"), ("--ws-max-rate", "nan"),
                                         ("--header-timeout", "inf"), ("--allowed-host", "evil.example:80"),
                                         ("--allowed-origin", "evil.example"), ("--worker-nice", "20"),
                                         ("--worker-nice", "-1")])
def test_serve_number_and_name_flags_are_checked_before_the_models_load(in_process, flag, value):
    line = one_error_line(in_process("serve", "--port", "0", flag, value))
    assert flag in line, line


@pytest.mark.parametrize("content, fragment", [
    ("first-line-token-0123456789\nsecond-line-0123456789\n", "one line"),
    ("short\n", "at least 16 characters"),
    ("token with spaces 0123456789\n", "without spaces"),
    ("x" * 5000, "over 4096 bytes"),
])
def test_token_file_must_be_one_line_of_at_least_16_characters(in_process, tmp_path, content, fragment):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    line = one_error_line(in_process("serve", "--port", "0", "--token-file", str(token_file)))
    assert fragment in line, line
    assert "0123456789" not in line  # the token is never printed

"""The limits rule at the command line (issue 9 item 5): a safety key set looser than its default is named
at pre-flight (also when `--yes` skips the questions) and in the summary; a value beyond its ceiling, from
the file or the environment, is one line and exit 2 before anything moves."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Final

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from retro_ftms.edge.cli import app
from retro_ftms.edge.preflight import LOOSENED_INTRO, QUESTIONS, ask_preflight
from retro_ftms.safety.limits import SafetyConfig
from tests.cli.test_run import SHORT_PROGRAM, read_events, run_short
from tests.harness import clean_config_env

EXIT_COMPLETED: Final = 0
EXIT_USAGE: Final = 2
LOOSENED_SPEED: Final = f"{LOOSENED_INTRO}: max speed 5.5 km/h (default 4 km/h)"
# Rich may wrap a long line in the summary's table: compare text with the whitespace squeezed.
_SPACE: Final = re.compile(r"[\s│|]+")


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_config_env(monkeypatch)


def squeezed(text: str) -> str:
    return _SPACE.sub(" ", text)


def run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    return run_short(tmp_path / "events.jsonl", *extra, env=env)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "retro-ftms.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_loosened_key_is_named_at_preflight_and_in_the_summary(tmp_path: Path) -> None:
    result = run(tmp_path, "--config", write_config(tmp_path, "[safety]\nmax_speed_kmh = 5.5\n"))
    assert result.exit_code == EXIT_COMPLETED, result.output
    out = squeezed(result.stdout)
    assert out.count(LOOSENED_SPEED) == 2, result.stdout  # at pre-flight and in the summary
    # At pre-flight: before the questions were skipped, before the first step; in the summary: after it.
    assert out.index(LOOSENED_SPEED) < out.index("Pre-flight questions skipped") < out.index("step 1/2")
    assert out.rindex(LOOSENED_SPEED) > out.index("Session summary")
    (limits,) = [e for e in read_events(tmp_path / "events.jsonl") if e["type"] == "limits"]
    assert limits["loosened"] == ["max_speed_kmh"]


def test_a_key_loosened_from_the_environment_is_named_too(tmp_path: Path) -> None:
    result = run(tmp_path, env={"RETRO_FTMS_SAFETY__MAX_SPEED_KMH": "5.5"})
    assert result.exit_code == EXIT_COMPLETED, result.output
    assert squeezed(result.stdout).count(LOOSENED_SPEED) == 2, result.stdout


def test_nothing_loosened_says_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "--config", write_config(tmp_path, "[safety]\nmax_speed_kmh = 3.0\n"))
    assert result.exit_code == EXIT_COMPLETED, result.output
    assert LOOSENED_INTRO not in result.stdout


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("data_timeout_s", "8", "must be at most 5.0 (the data-timeout ceiling)"),
        ("stop_confirm_timeout_s", "30", "must be at most 20.0 (the stop-confirmation ceiling)"),
        ("max_pause_s", "3600", "must be at most 1800.0 (the pause ceiling)"),
        ("min_incline_pct", "-5", "must be at least -3.0 (the decline floor)"),
        ("max_speed_kmh", "6.5", "must be at most 5.9 (the backward-walking ceiling)"),
    ],
)
def test_beyond_a_ceiling_in_the_file_is_one_line_and_exit_2(
    tmp_path: Path, key: str, value: str, rule: str
) -> None:
    config = write_config(tmp_path, f"[safety]\n{key} = {value}\n")
    result = run(tmp_path, "--config", config)
    assert result.exit_code == EXIT_USAGE
    assert one_error_line(result) == f"retro-ftms: {config}: safety.{key}: {value}: {rule}"
    assert not (tmp_path / "events.jsonl").exists()  # refused before the session began: nothing moved


def test_beyond_a_ceiling_in_the_environment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(tmp_path, env={"RETRO_FTMS_SAFETY__DATA_TIMEOUT_S": "8"})
    assert result.exit_code == EXIT_USAGE
    rule = "must be at most 5.0 (the data-timeout ceiling)"
    assert one_error_line(result) == f"retro-ftms: environment: safety.data_timeout_s: '8': {rule}"
    assert not (tmp_path / "events.jsonl").exists()


def test_the_questions_come_after_the_loosened_keys() -> None:
    out = io.StringIO()
    term = Console(file=out, width=200, color_system=None)
    answers = io.StringIO("y\n" * len(QUESTIONS))
    loosened = SafetyConfig(max_speed_kmh=5.5, data_timeout_s=5.0).loosened()
    assert ask_preflight(term, "First steps", "", assume_yes=False, stream=answers, loosened=loosened)
    text = out.getvalue()
    warning = f"{LOOSENED_INTRO}: max speed 5.5 km/h (default 4 km/h); data timeout 5 s (default 3 s)"
    assert text.index(warning) < text.index(QUESTIONS[0])


def test_programs_check_names_a_loosened_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[safety]\nmax_speed_kmh = 5.5\n")
    result = CliRunner().invoke(app, ["programs", "check", SHORT_PROGRAM, "--config", config])
    assert result.exit_code == EXIT_COMPLETED, result.output
    assert result.stdout.splitlines()[0] == LOOSENED_SPEED
    assert result.stdout.splitlines()[1].startswith("OK ")

"""`retro-ftms course list|show|check` through typer's CliRunner, like `programs`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from retro_ftms.edge.cli import app

KNEE = Path(__file__).parents[2] / "retro_ftms/course/builtin/knee-six-weeks.toml"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms")


def test_course_list_names_both_builtins() -> None:
    result = invoke("course", "list")
    assert result.exit_code == 0, result.output
    assert "knee-six-weeks" in result.stdout
    assert "gentle-start" in result.stdout


def test_course_show_lists_levels_and_sources() -> None:
    result = invoke("course", "show", "knee-six-weeks", "--units", "kmh")
    assert result.exit_code == 0, result.output
    assert "23 levels" in result.stdout
    assert "Alghadir" in result.stdout
    assert "Thomeé" in result.stdout
    assert "km/h" in result.stdout


def test_course_check_builtin_file_is_ok() -> None:
    result = invoke("course", "check", str(KNEE))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK {KNEE}: Knee, six weeks, 23 levels")


def test_course_check_names_every_problem(tmp_path: Path) -> None:
    text = (
        KNEE.read_text(encoding="utf-8")
        .replace("step = 0.2", "step = 0.5")
        .replace("step_pct = 1", "step_pct = 3")
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    result = invoke("course", "check", str(bad))
    assert result.exit_code == 2
    assert f"{bad}: key 'incline.step_pct': 3: must be at most 1.0" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("this course would not run")


def test_course_check_against_a_stricter_config_names_the_level(tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text("[safety]\nmax_speed_kmh = 3.0\n", encoding="utf-8")
    result = invoke("course", "check", str(KNEE), "--config", str(config))
    assert result.exit_code == 2
    assert f"{KNEE}: level 21 (30 min, 2 mph, incline 0 %) step 2" in result.stdout
    assert "above the speed cap 3.0 km/h (safety.max_speed_kmh)" in result.stdout


def test_course_show_unknown_is_one_line_exit_2() -> None:
    result = invoke("course", "show", "no-such")
    assert result.exit_code == 2
    assert "no built-in course of that name" in result.stderr

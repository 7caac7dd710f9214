"""The command line: help, programs, usage errors and exit codes (design.md), through typer's CliRunner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import pytest
from typer.testing import CliRunner, Result

from retro_ftms.edge.cli import app

DATA: Final = Path(__file__).parent / "data"
PROGRAM_DATA: Final = Path(__file__).parent.parent / "program" / "data"
SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
SUBPROCESS_TIMEOUT_S: Final = 30.0
HELP_START_BUDGET_S: Final = 2.0  # generous for a loaded 2-core CI box; the target is < 0.5 s on a quiet one


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms")


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --- help --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["scan"],
        ["simulate"],
        ["programs"],
        ["programs", "list"],
        ["programs", "show"],
        ["programs", "check"],
    ],
)
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: retro-ftms" in result.stdout


def test_root_help_lists_commands_and_exit_codes() -> None:
    result = invoke("--help")
    for word in ("run", "scan", "simulate", "programs", "Exit codes", "130"):
        assert word in result.stdout


def test_run_help_names_every_option() -> None:
    result = invoke("run", "--help")
    for option in (
        "--simulator",
        "--device",
        "--program",
        "--time-scale",
        "--fault",
        "--quirk",
        "--transport",
        "--config",
        "--mqtt",
        "--events",
        "--yes",
        "--units",
        "--verbose",
    ):
        assert option in result.stdout, option


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage: retro-ftms" in result.output
    assert result.exit_code in {0, 2}  # click's no_args_is_help: help text, then exit 2 (bad usage)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("retro-ftms ")


def test_help_starts_fast_and_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from retro_ftms.edge import cli; "
        "heavy = [m for m in ('asyncio', 'bleak', 'bumble', 'aiomqtt', 'pydantic', 'rich.live') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert imported.stdout.strip() == ""
    start = time.perf_counter()
    result = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, check=False, timeout=SUBPROCESS_TIMEOUT_S
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0
    assert elapsed < HELP_START_BUDGET_S


def test_time_scale_limit_is_the_clocks() -> None:
    from retro_ftms import clock
    from retro_ftms.edge import cli

    assert cli.MAX_TIME_SCALE == clock.MAX_TIME_SCALE


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "retro_ftms", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("retro-ftms ")


# --- programs ----------------------------------------------------------------------------------------------


def test_programs_list() -> None:
    result = invoke("programs", "list")
    assert result.exit_code == 0, result.output
    for word in ("first-steps", "First steps", "5:00", "0.5-1.0 mph"):
        assert word in result.stdout


def test_programs_list_in_kmh() -> None:
    result = invoke("programs", "list", "--units", "kmh")
    assert result.exit_code == 0
    assert "km/h" in result.stdout
    assert "mph" not in result.stdout


def test_programs_show_builtin() -> None:
    result = invoke("programs", "show", "first-steps")
    assert result.exit_code == 0, result.output
    for word in ("First steps", "Find your footing", "0.5 mph", "Sources", "seeds/"):
        assert word in result.stdout


def test_programs_show_converts_units() -> None:
    result = invoke("programs", "show", "first-steps", "--units", "kmh")
    assert result.exit_code == 0
    assert "0.8 km/h" in result.stdout  # 0.5 mph
    assert "1.61 km/h" in result.stdout  # 1.0 mph


def test_programs_show_file() -> None:
    result = invoke("programs", "show", str(DATA / "good.toml"), "--units", "mph")
    assert result.exit_code == 0, result.output
    assert "Hands on the rails." in result.stdout
    assert "0.9 mph" in result.stdout  # 1.5 km/h


def test_programs_show_unknown_name_is_exit_2() -> None:
    result = invoke("programs", "show", "no-such-program")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "no-such-program" in line
    assert "first-steps" in line  # lists what exists


def test_programs_check_good_file() -> None:
    result = invoke("programs", "check", str(DATA / "good.toml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK ")
    assert "good.toml" in result.stdout


def test_programs_check_reports_every_rule_violation() -> None:
    path = str(DATA / "bad_rules.toml")
    result = invoke("programs", "check", path)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert any(
        path in line and 'step 1 "Too quick a start"' in line and "first speed" in line for line in lines
    )
    assert any(path in line and 'step 2 "Over the cap"' in line and "speed cap" in line for line in lines)
    assert "2 problems" in lines[-1]


def test_programs_check_reports_every_format_error() -> None:
    path = str(DATA / "bad_format.toml")
    result = invoke("programs", "check", path)
    assert result.exit_code == 2
    assert f"{path}: step 1 \"Start\" key 'colour'" in result.stdout
    assert "unknown key" in result.stdout
    assert f"{path}: step 2 \"Brisk\" key 'speed': 'fast': must be a number" in result.stdout


def test_programs_check_missing_file() -> None:
    result = invoke("programs", "check", str(DATA / "missing.toml"))
    assert result.exit_code == 2
    assert "missing.toml" in result.stdout
    assert "no such file" in result.stdout


def test_programs_check_with_stricter_config(tmp_path: Path) -> None:
    config = tmp_path / "strict.toml"
    config.write_text("[safety]\nmax_speed_kmh = 1.4\nfirst_speed_max_kmh = 1.2\n", encoding="utf-8")
    result = invoke("programs", "check", str(DATA / "good.toml"), "--config", str(config))
    assert result.exit_code == 2
    assert 'step 2 "Steady"' in result.stdout
    assert "1.4 km/h" in result.stdout
    assert invoke("programs", "check", str(DATA / "good.toml")).exit_code == 0


def test_programs_check_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "loose.toml"
    config.write_text("[safety]\nmax_speed_kmh = 9.0\n", encoding="utf-8")
    result = invoke("programs", "check", str(DATA / "good.toml"), "--config", str(config))
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(config) in line
    assert "safety.max_speed_kmh" in line


@pytest.mark.parametrize(
    "path",
    sorted(PROGRAM_DATA.glob("*.toml")) if PROGRAM_DATA.is_dir() else [],
    ids=lambda path: path.name,
)
def test_programs_check_rejects_the_program_helpers_bad_examples(path: Path) -> None:
    result = invoke("programs", "check", str(path))
    assert result.exit_code == 2
    assert all(line.startswith(str(path)) for line in result.stdout.splitlines())


# --- usage errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--simulator", "--device", "AA:BB:CC:DD:EE:FF"], ["--simulator", "--device"]),
        ([], ["--simulator", "--device"]),
        (["--device", "Treadmill", "--fault", "safety-key@3"], ["--fault", "--simulator"]),
        (["--device", "Treadmill", "--time-scale", "10"], ["--time-scale", "--simulator"]),
        (["--device", "Treadmill", "--quirk", "x"], ["--quirk", "--simulator"]),
        (["--simulator", "--transport", "tcp-client:127.0.0.1:1"], ["--transport", "--device"]),
        (["--simulator", "--time-scale", "0"], ["--time-scale", "2000"]),
        (["--simulator", "--time-scale", "2001"], ["--time-scale", "2000"]),
        (["--simulator", "--time-scale", "-1"], ["--time-scale"]),
        (["--simulator", "--time-scale", "nan"], ["--time-scale"]),
        (["--simulator", "--fault", "safety-key"], ["--fault", "safety-key"]),
        (["--simulator", "--fault", "warp@3"], ["--fault", "warp"]),
        (["--simulator", "--events", "/no/such/folder/events.jsonl"], ["--events", "/no/such/folder"]),
        (["--simulator", "--events", "/"], ["--events"]),
    ],
)
def test_run_usage_errors_exit_2_with_one_line(args: list[str], words: list[str]) -> None:
    result = invoke("run", "--program", "first-steps", "--yes", *args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    for word in words:
        assert word in line


def test_run_without_a_terminal_needs_yes() -> None:
    result = invoke("run", "--simulator", "--program", "first-steps")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--yes" in line
    assert "terminal" in line


def test_run_needs_a_program() -> None:
    result = invoke("run", "--simulator", "--yes")
    assert result.exit_code == 2
    assert "--program" in result.output


def test_typer_usage_errors_exit_2() -> None:
    assert invoke("run", "--no-such-option").exit_code == 2
    assert invoke("no-such-command").exit_code == 2
    assert invoke("run", "--units", "furlongs", "--simulator", "--program", "x").exit_code == 2


def test_simulate_usage_errors() -> None:
    assert invoke("simulate").exit_code == 2  # --transport is required
    result = invoke("simulate", "--transport", "tcp-server:127.0.0.1:0", "--time-scale", "0")
    assert result.exit_code == 2
    assert "--time-scale" in one_error_line(result)
    result = invoke("simulate", "--transport", "tcp-server:127.0.0.1:0", "--fault", "nope@1")
    assert result.exit_code == 2
    assert "nope" in one_error_line(result)


def test_scan_timeout_must_be_positive() -> None:
    result = invoke("scan", "--timeout", "0")
    assert result.exit_code == 2
    assert "--timeout" in one_error_line(result)


# --- exit codes of the session's errors ---------------------------------------------------------------------


def test_unknown_program_is_exit_2_before_anything_moves(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = invoke("run", "--simulator", "--yes", "--program", "no-such-program", "--events", str(events))
    assert result.exit_code == 2
    assert "no-such-program" in one_error_line(result)
    assert not events.exists()


def test_bad_program_file_is_exit_2_naming_file_step_and_rule() -> None:
    path = str(DATA / "bad_rules.toml")
    result = invoke("run", "--simulator", "--yes", "--program", path)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert path in line
    assert 'step 1 "Too quick a start"' in line
    assert "first speed" in line


def test_bad_mqtt_url_is_exit_2() -> None:
    result = invoke("run", "--simulator", "--yes", "--program", "first-steps", "--mqtt", "http://broker")
    assert result.exit_code == 2
    assert "--mqtt" in one_error_line(result)


def test_bad_mqtt_password_file_is_exit_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("hunter2\n", encoding="utf-8")
    secret.chmod(0o644)  # any local user could read it
    config = tmp_path / "retro-ftms.toml"
    config.write_text(f"[mqtt]\npassword_file = '{secret}'\n", encoding="utf-8")
    run = ("run", "--simulator", "--yes", "--program", "first-steps", "--mqtt", "mqtt://walker@127.0.0.1:1")
    result = invoke(*run, "--config", str(config))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "mqtt.password_file" in line
    assert str(secret) in line
    assert "chmod 600" in line
    assert "hunter2" not in result.output
    monkeypatch.setenv("RETRO_FTMS_MQTT__PASSWORD_FILE", str(tmp_path / "missing"))
    result = invoke(*run)
    assert result.exit_code == 2, result.output
    assert "mqtt.password_file" in one_error_line(result)


@pytest.mark.skipif(
    os.path.exists("/run/dbus/system_bus_socket") or os.path.exists("/var/run/dbus/system_bus_socket"),
    reason="this machine has a D-Bus system bus (maybe Bluetooth)",
)
def test_scan_without_bluetooth_is_exit_4_one_line() -> None:
    result = subprocess.run(
        [str(SCRIPT), "scan", "--timeout", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.returncode == 4
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Bluetooth" in lines[0]
    assert "Traceback" not in result.stderr


def test_scan_on_a_dead_transport_is_one_line() -> None:
    result = invoke("scan", "--transport", "tcp-client:127.0.0.1:9", "--timeout", "1")
    assert result.exit_code == 4
    assert "tcp-client:127.0.0.1:9" in one_error_line(result)


def test_programs_show_of_a_program_that_breaks_the_rules_is_exit_2() -> None:
    """Shown (a person may want to read it), then every broken rule named, and exit 2: it would not run."""
    path = str(DATA / "bad_rules.toml")
    result = invoke("programs", "show", path)
    assert result.exit_code == 2, result.output
    assert "Too quick a start" in result.stdout  # the steps are still shown
    lines = result.stdout.splitlines()
    assert any('step 1 "Too quick a start"' in line and "first speed" in line for line in lines)
    assert any('step 2 "Over the cap"' in line and "speed cap" in line for line in lines)
    assert "2 problems; this program would not run" in lines[-1]

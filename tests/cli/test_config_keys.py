"""Every `[session]`, `[ble]` and `[log]` key that the CLI reads, and the options that beat them.

No Bluetooth: finding the treadmill and scanning are replaced by fakes that record what reached them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from retro_ftms.ble import connect
from retro_ftms.ble.connect import FoundTreadmill
from retro_ftms.edge import app as edge_app
from retro_ftms.edge.cli import _treadmill, app
from retro_ftms.edge.config import BleConfig
from retro_ftms.errors import ConnectError

DEAD_TRANSPORT = "tcp-client:127.0.0.1:9"  # the discard port: nothing listens, the connect is refused


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms", env=env)


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "retro-ftms.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def finds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Looking for a treadmill finds none; each look is recorded as (target, timeout_s)."""
    looked: list[tuple[str, float]] = []

    async def find_none(target: str, *, central: object = None, timeout_s: float) -> FoundTreadmill:
        looked.append((target, timeout_s))
        raise ConnectError(f"no FTMS treadmill {target!r} found (fake)")

    monkeypatch.setattr(connect, "find_treadmill", find_none)
    return looked


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, float]]:
    """`scan` finds nothing; each scan is recorded as (transport, timeout_s), and logs at each level."""
    scanned: list[tuple[str | None, float]] = []

    async def scan_none(transport: str | None, timeout_s: float) -> list[FoundTreadmill]:
        scanned.append((transport, timeout_s))
        log = logging.getLogger("retro_ftms.test")
        log.debug("debug marker")
        log.info("info marker")
        log.warning("warning marker")
        return []

    monkeypatch.setattr(edge_app, "scan", scan_none)
    return scanned


# --- [session] program --------------------------------------------------------------------------------------


def test_run_takes_the_program_from_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[session]\nprogram = 'no-such-program'\n")
    result = invoke("run", "--simulator", "--yes", "--config", config)
    assert result.exit_code == 2
    assert "no-such-program" in one_error_line(result)


def test_run_takes_the_program_from_the_environment() -> None:
    result = invoke("run", "--simulator", "--yes", env={"RETRO_FTMS_SESSION__PROGRAM": "from-env"})
    assert result.exit_code == 2
    assert "from-env" in one_error_line(result)


def test_program_option_beats_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[session]\nprogram = 'first-steps'\n")
    result = invoke("run", "--simulator", "--yes", "--config", config, "--program", "no-such-program")
    assert result.exit_code == 2
    assert "no-such-program" in one_error_line(result)


def test_run_without_any_program_names_both_ways() -> None:
    result = invoke("run", "--simulator", "--yes")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--program" in line
    assert "[session] program" in line


# --- [ble] device, transport, scan_timeout_s ----------------------------------------------------------------


def test_run_drives_the_files_device_and_looks_for_scan_timeout_s(
    tmp_path: Path, finds: list[tuple[str, float]]
) -> None:
    config = write_config(tmp_path, "[ble]\ndevice = 'Walker-7'\nscan_timeout_s = 3.5\n")
    result = invoke("run", "--program", "first-steps", "--yes", "--config", config)
    assert result.exit_code == 4, result.output
    assert "'Walker-7'" in one_error_line(result)
    assert finds == [("Walker-7", 3.5)]


def test_device_option_beats_the_file(tmp_path: Path, finds: list[tuple[str, float]]) -> None:
    config = write_config(tmp_path, "[ble]\ndevice = 'Walker-7'\n")
    result = invoke("run", "--program", "first-steps", "--yes", "--config", config, "--device", "Other")
    assert result.exit_code == 4, result.output
    assert [target for target, _ in finds] == ["Other"]


def test_run_uses_the_files_transport(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"[ble]\ndevice = 'AA:BB:CC:DD:EE:FF'\ntransport = '{DEAD_TRANSPORT}'\n")
    result = invoke("run", "--program", "first-steps", "--yes", "--config", config)
    assert result.exit_code == 4, result.output
    assert DEAD_TRANSPORT in one_error_line(result)


def test_transport_option_beats_the_environment() -> None:
    env = {"RETRO_FTMS_BLE__DEVICE": "AA:BB:CC:DD:EE:FF", "RETRO_FTMS_BLE__TRANSPORT": "usb:99"}
    result = invoke("run", "--program", "first-steps", "--yes", "--transport", DEAD_TRANSPORT, env=env)
    assert result.exit_code == 4, result.output
    line = one_error_line(result)
    assert DEAD_TRANSPORT in line
    assert "usb:99" not in line


def test_run_without_a_treadmill_names_every_way() -> None:
    result = invoke("run", "--program", "first-steps", "--yes")
    assert result.exit_code == 2
    line = one_error_line(result)
    for words in ("--simulator", "--device", "[ble] device"):
        assert words in line


def test_treadmill_resolution() -> None:
    ble = BleConfig(device="Walker-7", transport="usb:0")
    assert _treadmill(False, None, None, ble) == ("Walker-7", "usb:0")
    assert _treadmill(False, "Other", None, ble) == ("Other", "usb:0")
    assert _treadmill(False, None, "usb:1", ble) == ("Walker-7", "usb:1")
    assert _treadmill(True, None, None, ble) == (None, None)  # --simulator beats [ble] device
    assert _treadmill(False, "Other", None, BleConfig()) == ("Other", None)
    with pytest.raises(typer.Exit):
        _treadmill(False, None, None, BleConfig())


def test_scan_listens_for_scan_timeout_s_on_the_files_transport(
    tmp_path: Path, scans: list[tuple[str | None, float]]
) -> None:
    config = write_config(tmp_path, "[ble]\nscan_timeout_s = 7.0\ntransport = 'usb:0'\n")
    result = invoke("scan", "--config", config)
    assert result.exit_code == 0, result.output
    assert "in 7 s" in result.stdout
    assert scans == [("usb:0", 7.0)]


def test_scan_options_beat_the_file(tmp_path: Path, scans: list[tuple[str | None, float]]) -> None:
    config = write_config(tmp_path, "[ble]\nscan_timeout_s = 7.0\ntransport = 'usb:0'\n")
    result = invoke("scan", "--config", config, "--timeout", "2", "--transport", "usb:1")
    assert result.exit_code == 0, result.output
    assert scans == [("usb:1", 2.0)]


def test_scan_default_timeout_is_the_configs(scans: list[tuple[str | None, float]]) -> None:
    assert invoke("scan").exit_code == 0
    assert scans == [(None, BleConfig().scan_timeout_s)]


# --- [log] level and file ----------------------------------------------------------------------------------


def test_log_file_gets_records_from_the_files_level(
    tmp_path: Path, scans: list[tuple[str | None, float]]
) -> None:
    log_file = tmp_path / "retro.log"
    config = write_config(tmp_path, f"[log]\nlevel = 'INFO'\nfile = '{log_file}'\n")
    assert invoke("scan", "--config", config).exit_code == 0
    text = log_file.read_text(encoding="utf-8")
    assert "info marker" in text
    assert "warning marker" in text
    assert "debug marker" not in text


def test_verbose_beats_the_files_level(tmp_path: Path, scans: list[tuple[str | None, float]]) -> None:
    log_file = tmp_path / "retro.log"
    config = write_config(tmp_path, f"[log]\nlevel = 'ERROR'\nfile = '{log_file}'\n")
    assert invoke("scan", "--config", config).exit_code == 0
    assert log_file.read_text(encoding="utf-8") == ""
    assert invoke("scan", "--config", config, "-vv").exit_code == 0
    assert "debug marker" in log_file.read_text(encoding="utf-8")  # appended


def test_log_level_from_the_environment_reaches_stderr(scans: list[tuple[str | None, float]]) -> None:
    result = invoke("scan", env={"RETRO_FTMS_LOG__LEVEL": "ERROR"})
    assert result.exit_code == 0
    assert "warning marker" not in result.stderr
    assert "warning marker" in invoke("scan").stderr  # the default level is WARNING


def test_log_file_that_cannot_be_opened_is_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[log]\nfile = '/no/such/folder/retro.log'\n")
    result = invoke("scan", "--config", config)
    assert result.exit_code == 2
    assert "[log] file" in one_error_line(result)


@pytest.mark.parametrize(
    "command",
    [
        ["scan"],
        ["simulate", "--transport", "tcp-server:127.0.0.1:0"],
        ["run", "--simulator", "--yes", "--program", "first-steps"],
    ],
)
def test_invalid_config_is_exit_2_for_every_command(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path, "[log]\nlevel = 'LOUD'\n")
    result = invoke(*command, "--config", config)
    assert result.exit_code == 2
    assert "log.level" in one_error_line(result)

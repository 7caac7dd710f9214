"""The `--events FILE` file itself: appended not overwritten, 0600, only regular files, failures survived."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Final

import pytest
from typer.testing import CliRunner

from retro_ftms.clock import Clock
from retro_ftms.edge.cli import app
from retro_ftms.edge.event_log import EventLog
from retro_ftms.errors import ConfigError
from retro_ftms.events import DataEvent, EndEvent, EventBus, RefusedEvent, StateEvent, StatusEvent

SHORT_PROGRAM: Final = str(Path(__file__).parent / "data" / "short.toml")


def run_with_events(events: str) -> tuple[int, str]:
    args = ["run", "--simulator", "--program", SHORT_PROGRAM, "--yes", "--time-scale", "20"]
    result = CliRunner().invoke(app, [*args, "--events", events])
    return result.exit_code, result.output


def test_log_is_appended_and_private(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"t":0,"type":"state","state":"connecting"}\n', encoding="utf-8")
    path.chmod(0o600)
    bus = EventBus(Clock())
    with EventLog(path, bus):
        bus.publish(StateEvent("connecting"))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["state"] for line in lines] == ["connecting", "connecting"]
    fresh = tmp_path / "new.jsonl"
    with EventLog(fresh, bus):
        pass
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_nothing_from_the_treadmill_after_the_end(tmp_path: Path) -> None:
    """Records while the link closes are no part of the session (issue 16); a late refusal count is."""
    path = tmp_path / "events.jsonl"
    bus = EventBus(Clock())
    late = RefusedEvent("mqtt_command", 7, "7 more refused MQTT commands")
    with EventLog(path, bus):
        bus.publish(DataEvent(0.0, 0.0, 10, 20, None))
        bus.publish(EndEvent("completed", None, "zero_records"))
        bus.publish(DataEvent(1.1, 0.0, 11, 21, None))
        bus.publish(StatusEvent("reset"))
        bus.publish(late)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == ["data", "end", "refused"]


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"), EventLog(fifo, EventBus(Clock())):
        pass


def test_device_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="regular file"), EventLog(Path("/dev/null"), EventBus(Clock())):
        pass


def test_unwritable_events_is_exit_2_and_one_line() -> None:
    code, output = run_with_events("/proc/version")
    assert code == 2, output
    assert "--events" in output
    assert "internal error" not in output
    assert "step 1/2" not in output  # nothing moved


class _FullDisk:
    """A file whose every write fails as on a full disk."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        raise OSError(28, "No space left on device")


def test_failing_log_is_reported_once_and_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus(Clock())
    with EventLog(tmp_path / "events.jsonl", bus) as log:
        real, log._file = log._file, _FullDisk()  # type: ignore[assignment]
        assert real is not None
        real.close()
        for _ in range(50):
            bus.publish(StateEvent("running"))
    assert log.failure is not None
    assert sum("event log" in record.getMessage() for record in caplog.records) == 1


def test_dev_full_is_refused_before_anything_moves() -> None:
    code, output = run_with_events("/dev/full")
    assert code == 2, output
    assert "regular file" in output


@pytest.mark.parametrize("option", ["--program", "--config"])
def test_events_on_an_input_of_the_session_is_refused(tmp_path: Path, option: str) -> None:
    """`--events mine.toml --program mine.toml` appended the event log to the program (same for
    `--config`): refused, one line naming both, and the file is left alone."""
    mine = tmp_path / "mine.toml"
    if option == "--program":
        mine.write_text(Path(SHORT_PROGRAM).read_text(encoding="utf-8"), encoding="utf-8")
        args = ["--program", str(mine)]
    else:
        mine.write_text("[session]\nunits = 'kmh'\n", encoding="utf-8")
        args = ["--program", SHORT_PROGRAM, "--config", str(mine)]
    before = mine.read_bytes()
    # The same file by another name: a relative path through a symbolic link.
    link = tmp_path / "link.toml"
    link.symlink_to(mine)
    for events in (str(mine), str(link)):
        result = CliRunner().invoke(app, ["run", "--simulator", "--yes", *args, "--events", events])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert f"--events {events}" in lines[0]
        assert f"{option} {mine}" in lines[0]
    assert mine.read_bytes() == before


def test_events_on_the_password_file_log_file_or_config_program_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("hunter2\n", encoding="utf-8")
    secret.chmod(0o600)
    log = tmp_path / "retro-ftms.log"
    (tmp_path / "sub").mkdir()
    config = tmp_path / "retro-ftms.toml"
    program = tmp_path / "walk.toml"
    program.write_text(Path(SHORT_PROGRAM).read_text(encoding="utf-8"), encoding="utf-8")
    config.write_text(
        f"[session]\nprogram = '{program}'\n[mqtt]\npassword_file = '{secret}'\n[log]\nfile = '{log}'\n",
        encoding="utf-8",
    )
    base = ["run", "--simulator", "--yes", "--config", str(config)]
    other_name = tmp_path / "sub" / ".." / "retro-ftms.log"
    named = ((secret, "[mqtt] password_file"), (other_name, "[log] file"), (program, "[session] program"))
    for events, name in named:
        result = CliRunner().invoke(app, [*base, "--events", str(events)])
        assert result.exit_code == 2, result.output
        assert name in result.stderr
    assert secret.read_text(encoding="utf-8") == "hunter2\n"

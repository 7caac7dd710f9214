"""`retro-ftms serve` without a broker: what it refuses (one line, exit 2, before anything starts), the
last result's words, and a stop handed to a session that is being set up."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from retro_ftms.clock import Clock
from retro_ftms.edge.cli import app
from retro_ftms.edge.service import TreadmillState, result_summary
from retro_ftms.events import EventBus, Outcome
from retro_ftms.session.snapshot import SnapshotTracker
from retro_ftms.session.timeline import SessionResult

EXIT_USAGE = 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[service]\narm_timeout_s = 60\n", "names no treadmill"),
        ('[[treadmills]]\nname = "Hall"\n', "give either device"),
        ('[[treadmills]]\nname = "Hall"\nsimulator = true\ndevice = "X"\n', "give either device"),
        ('[[treadmills]]\nname = "Hall"\ndevice = "X"\nfaults = ["safety-key@3"]\n', "go with simulator"),
        ('[[treadmills]]\nname = "Hall"\nsimulator = true\nfaults = ["nope@3"]\n', "unknown fault kind"),
        (
            '[[treadmills]]\nname = "A"\nsimulator = true\n[[treadmills]]\nname = "A"\nsimulator = true\n',
            "own name",
        ),
        ('[[treadmills]]\nname = "Hall"\nsimulator = true\ndevice_id = "a b"\n', "Home Assistant ids"),
        ("treadmills = 3\n", "must be tables"),
    ],
)
def test_bad_configuration_is_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text(toml, encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)], prog_name="retro-ftms")
    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.output


def test_time_scale_needs_simulated_treadmills(tmp_path: Path) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text('[[treadmills]]\nname = "Hall"\ndevice = "FTMS-1"\n', encoding="utf-8")
    args = ["serve", "--config", str(config), "--time-scale", "10"]
    result = CliRunner().invoke(app, args, prog_name="retro-ftms")
    assert result.exit_code == EXIT_USAGE
    assert "--time-scale needs every treadmill simulated" in result.output


@pytest.mark.parametrize(
    ("outcome", "reason", "code", "summary"),
    [
        ("completed", None, 0, "completed"),
        ("stopped", "mqtt_stop", 130, "stopped by you"),
        ("stopped", "pain", 130, "stopped by you"),
        ("stopped", "safety_key", 3, "stopped by a safety trigger"),
        ("error", "error", 1, "internal error"),
    ],
)
def test_last_result_summary_follows_the_exit_code_rule(
    outcome: Outcome, reason: str | None, code: int, summary: str
) -> None:
    assert result_summary(SessionResult(outcome, reason, code, 10.0)) == summary


class FakeControl:
    def __init__(self) -> None:
        self.stops: list[str] = []

    def request_stop(self, reason: str) -> None:
        self.stops.append(reason)

    def request_pause(self, source: str) -> None:
        del source

    def request_resume(self, source: str) -> str | None:
        del source
        return None


async def test_a_stop_while_a_confirmed_session_is_set_up_reaches_it() -> None:
    """The console's Start was seen, the session is being built (no runner yet) when a STOP comes."""
    state = TreadmillState("Hall", EventBus(Clock()), {"gentle": "gentle"}, "gentle", lambda _: None)
    assert state.arm(None) is None
    state.request_stop("signal")
    assert state.armed is None
    control = FakeControl()
    state.session_started(SnapshotTracker("gentle", 1, 60.0), control)  # type: ignore[arg-type]
    assert control.stops == ["signal"]

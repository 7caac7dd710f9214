"""What happens before and at a Start (issue 16, violations 4, 5, 6), through bleak over Bumble: a machine
that takes no speed target and a belt already running are refused before anything is written (exit 2); a
safety key pulled during the first Request Control ends as `safety_key` (exit 3); a resume right after a
pause writes Start only after a record newer than the pause shows the belt at rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from retro_ftms.edge.app import NO_SPEED_RULE
from retro_ftms.edge.cli import app as cli_app
from retro_ftms.errors import BeltMovingError
from retro_ftms.events import BELT_MOVING_REASON
from retro_ftms.safety import Rule
from tests.harness import read_events, starts_while_moving
from tests.quirks.conftest import PersonUI
from tests.session.conftest import RunSession

EXIT_USAGE = 2
EXIT_SAFETY = 3


def run_cli(tmp_path: Path, *extra: str) -> tuple[int, str, list[dict[str, Any]]]:
    """`retro-ftms run --simulator` in-process: exit code, output and event log."""
    events = tmp_path / "events.jsonl"
    args = ["run", "--simulator", "--program", "first-steps", "--yes", "--time-scale", "50"]
    args += [*extra, "--events", str(events)]
    result = CliRunner().invoke(cli_app, args, prog_name="retro-ftms")
    return result.exit_code, result.output, read_events(events)


def test_a_machine_without_speed_targets_exits_2_before_anything_moves(tmp_path: Path) -> None:
    code, output, events = run_cli(tmp_path, "--quirk", "no-speed-target")
    assert code == EXIT_USAGE, output
    assert NO_SPEED_RULE in output
    assert [e for e in events if e["type"] == "command"] == []


def test_run_help_lists_the_no_speed_target_quirk() -> None:
    result = CliRunner().invoke(cli_app, ["run", "--help"], prog_name="retro-ftms", terminal_width=400)
    assert "no-speed-target" in result.output


# -- v5: a trigger during the first Request Control ------------------------------------------------------


async def test_a_safety_key_during_the_first_request_control_ends_as_safety_key(run: RunSession) -> None:
    session = await run("first-steps", "safety-key@request-control")
    log = session.describe()
    assert session.exit_code == EXIT_SAFETY, log
    assert session.latch_reason == "safety_key", log
    assert (session.end["outcome"], session.end["reason"]) == ("stopped", "safety_key"), log
    asked = session.index(lambda e: e["type"] == "command" and e["op"] == "request_control")
    key = session.index(lambda e: e["type"] == "status" and e["code"] == "stopped_by_safety_key")
    answered = session.index(lambda e: e["type"] == "response" and e["op"] == "request_control")
    assert asked < key < answered, log  # the key came while control was being requested
    assert "start" not in [e["op"] for e in session.commands], log
    assert session.of_type("refused") == [], log


# -- v4: a belt already running when the session connects -----------------------------------------------


def test_a_belt_already_running_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    code, output, events = run_cli(tmp_path, "--fault", "preroll@2.0")
    assert code == EXIT_USAGE, output
    assert f"retro-ftms: {BeltMovingError.RULE}" in output.splitlines()
    assert [e for e in events if e["type"] == "command"] == []  # not even Request Control
    assert [e for e in events if e["type"] == "sim" and e["event"] == "cp_received"] == []
    assert [e["speed_kmh"] for e in events if e["type"] == "data"][:1] == [2.0]
    refused = [(e["op"], e["rule"]) for e in events if e["type"] == "refused"]
    assert refused == [("start", Rule.BELT_MOVING.value)]
    ends = [(e["outcome"], e["reason"]) for e in events if e["type"] == "end"]
    assert ends == [("stopped", BELT_MOVING_REASON)]


# -- v4: a resume right after a pause --------------------------------------------------------------------


async def test_a_resume_right_after_a_pause_starts_only_a_belt_at_rest(run: RunSession) -> None:
    ui = PersonUI(pause_at_s=0.0)  # pauses the moment the belt runs, and asks to resume at once
    session = await run("first-steps", ui=ui)
    log = session.describe(60)
    assert session.exit_code == 0, log
    assert ui.pauses == 1, log  # the machine's echoes of our Start and Pause are ours
    assert ui.refusals[0] is None, log  # accepted: the Start waits for the belt to rest
    paused = session.index(lambda e: e["type"] == "response" and e["op"] == "pause")
    resumed = session.index(lambda e: e["type"] == "command" and e["op"] == "start", paused)
    records = [e["speed_kmh"] for e in session.events[paused:resumed] if e["type"] == "data"]
    assert records, log
    assert records[-1] == 0.0, log  # the last record before the Start, newer than the Pause: at rest
    sim_starts = [
        i
        for i, e in enumerate(session.events)
        if e["type"] == "sim" and e["event"] == "cp_received" and e["op"] == "start_or_resume"
    ]
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    belt_stopped = session.index(lambda e: e["type"] == "sim" and e["event"] == "belt_stopped", pause)
    assert len(sim_starts) == 2, log
    assert belt_stopped < sim_starts[1], log
    assert starts_while_moving(session) == [], log
    assert session.of_type("refused") == [], log

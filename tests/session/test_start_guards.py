"""What happens before and at a Start (issue 16, violations 4, 5, 6), through bleak over Bumble: a machine
that takes no speed target and a belt already running are refused before anything is written (exit 2); a
safety key pulled during the first Request Control ends as `safety_key` (exit 3); a resume right after a
pause writes Start only after a record newer than the pause shows the belt at rest."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from retro_ftms.edge.app import NO_SPEED_RULE, Units
from retro_ftms.edge.cli import app as cli_app
from retro_ftms.errors import BeltMovingError
from retro_ftms.events import Event, EventBus, StateEvent
from retro_ftms.safety import Rule
from retro_ftms.safety.guard import STILL_BELOW_KMH
from retro_ftms.session.control import SessionControl
from retro_ftms.session.runner import BELT_MOVING_REASON
from retro_ftms.session.snapshot import SnapshotTracker
from tests.harness import read_events
from tests.session.conftest import QuietUI, RunSession, SessionRun

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


@dataclass(eq=False)
class PauseAtOnceUI(QuietUI):
    """The person pauses the moment the belt first runs and asks to resume the moment it is paused."""

    resume_answers: list[str | None] = field(default_factory=list)

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        return self._acting(bus, control)

    @contextlib.asynccontextmanager
    async def _acting(self, bus: EventBus, control: SessionControl) -> AsyncIterator[None]:
        states: list[str] = []

        def on_event(_t: float, event: Event) -> None:
            if not isinstance(event, StateEvent):
                return
            states.append(event.state)
            if event.state == "running" and states.count("running") == 1:
                control.request_pause("test")
            elif event.state == "paused" and not self.resume_answers:
                self.resume_answers.append(control.request_resume("test"))

        unsubscribe = bus.subscribe(on_event)
        try:
            yield
        finally:
            unsubscribe()


def starts_on_a_moving_belt(session: SessionRun) -> list[dict[str, Any]]:
    """Start commands written while the latest record said the belt moved."""
    moving = False
    found = []
    for event in session.events:
        if event["type"] == "data" and event["speed_kmh"] is not None:
            moving = event["speed_kmh"] >= STILL_BELOW_KMH
        elif event["type"] == "command" and event["op"] == "start" and moving:
            found.append(event)
    return found


async def test_a_resume_right_after_a_pause_starts_only_a_belt_at_rest(run: RunSession) -> None:
    ui = PauseAtOnceUI()
    session = await run("first-steps", ui=ui)
    log = session.describe(60)
    assert session.exit_code == 0, log
    assert ui.resume_answers == [None], log  # accepted: the session waits for the belt
    paused = session.index(lambda e: e["type"] == "response" and e["op"] == "pause")
    resumed = session.index(lambda e: e["type"] == "command" and e["op"] == "start", paused)
    rest = [e for e in session.events[paused:resumed] if e["type"] == "data" and e["speed_kmh"] == 0.0]
    assert rest, log  # a record newer than the Pause showed the belt at rest before the Start
    sim_starts = [
        i
        for i, e in enumerate(session.events)
        if e["type"] == "sim" and e["event"] == "cp_received" and e["op"] == "start_or_resume"
    ]
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    belt_stopped = session.index(lambda e: e["type"] == "sim" and e["event"] == "belt_stopped", pause)
    assert len(sim_starts) == 2, log
    assert belt_stopped < sim_starts[1], log
    assert starts_on_a_moving_belt(session) == [], log
    assert session.of_type("refused") == [], log
    assert [e["state"] for e in session.of_type("state")].count("paused") == 1, log  # echoes are ours

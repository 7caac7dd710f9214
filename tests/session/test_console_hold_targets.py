"""A console decrease (issue 9 item 8): the display and MQTT state show the target the session holds.

`--fault console-speed@20:0.5` on first-steps: the person lowers the belt to 0.5 km/h during step 1; the
guard holds there and makes no further rises, so step 2 (0.7 mph, 1.12 km/h in the program) runs at 0.5.
The shared `SnapshotTracker` (the live panel and `<base>/state` both draw it) must say 0.5, not 1.12.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from typer.testing import CliRunner

from retro_ftms.edge.cli import app
from retro_ftms.edge.display import render_status
from retro_ftms.events import Event, SafetyEvent, StepEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
from tests import harness
from tests.cli.test_display import snapshot, text_of
from tests.session.conftest import TIME_SCALE

FAULT: Final = "console-speed@20:0.5"
HELD_KMH: Final = 0.5


class _Watching(harness.ListeningUI):
    """Keeps the tracker's snapshot after each step and after the hold (the tracker listens first)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_hold: list[SessionSnapshot] = []
        self.at_steps: list[tuple[int, SessionSnapshot]] = []

    def on_session_event(self, event: Event, tracker: SnapshotTracker, control: SessionControl) -> None:
        if isinstance(event, SafetyEvent) and event.action == "hold":
            self.after_hold.append(tracker.snapshot)
        elif isinstance(event, StepEvent):
            self.at_steps.append((event.index, tracker.snapshot))


async def test_the_snapshot_shows_the_held_target_not_the_programs(tmp_path: Path) -> None:
    ui = _Watching()
    session = await harness.run_in(tmp_path, "first-steps", FAULT, ui=ui, time_scale=TIME_SCALE)

    log = session.describe()
    assert session.exit_code == 0, log
    (hold,) = [e for e in session.safety if e["action"] == "hold"]
    assert hold["target_speed_kmh"] == HELD_KMH, log
    assert [s.target_speed_kmh for s in ui.after_hold] == [HELD_KMH], log
    later = [(index, s.target_speed_kmh) for index, s in ui.at_steps if index >= 1]
    assert later, log
    assert all(target == HELD_KMH for _, target in later), later  # the program says 1.12, 1.45, 1.61
    assert session.snapshot.target_speed_kmh == HELD_KMH


def test_the_terminal_says_lowered_and_the_held_speed(tmp_path: Path) -> None:
    """The hold line says lowered (not raised); the step lines after it name the speed the belt holds at."""
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--simulator",
            "--program",
            "first-steps",
            "--yes",
            "--time-scale",
            "100",
            "--fault",
            FAULT,
            "--config",
            str(harness.prepare(tmp_path, harness.merged(None))[1]),
        ],
    )
    assert result.exit_code == 0, result.output
    step_two = next(line for line in result.stdout.splitlines() if "step 2/5" in line)
    assert "held at 0.5 km/h" in step_two, step_two
    hold = next(line for line in result.stdout.splitlines() if "-> hold" in line)
    assert "lowered at the console: holding at 0.5 km/h" in hold, hold
    assert "raised" not in hold, hold


def test_the_panel_says_lowered_not_raised() -> None:
    held = snapshot(speed_kmh=HELD_KMH, target_speed_kmh=HELD_KMH, safety_reason="console_override")
    screen = text_of(render_status(held, "kmh"))
    assert "lowered at the console" in screen
    assert "raised" not in screen
    assert "target 0.5 km/h" in screen

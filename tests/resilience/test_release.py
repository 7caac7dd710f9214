"""Control is released (Reset) at the end of every session, however it ends, so the console works again
(ftms.md §9: a client that stays in control can lock the console's own buttons)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.app import Units, run_session
from retro_ftms.events import DataEvent, Event, EventBus, StateEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.resilience.conftest import RecordingUI, RunResilient, read_events

SHORT_PROGRAM: Final = str(Path(__file__).parents[1] / "cli" / "data" / "short.toml")


@pytest.mark.parametrize(
    ("program", "faults", "exit_code", "reset_result"),
    [
        (SHORT_PROGRAM, (), 0, "success"),  # completed
        ("first-steps", ("safety-key@40",), 3, "success"),  # after a latch
        ("first-steps", ("cp-error@40:0x04",), 3, "success"),  # after a failed command
        ("first-steps", ("control-lost@40",), 3, "control_not_permitted"),  # tried even without control
    ],
    ids=["completed", "latched", "command-failed", "control-lost"],
)
async def test_every_session_ends_with_reset(
    run: RunResilient, program: str, faults: tuple[str, ...], exit_code: int, reset_result: str
) -> None:
    session = await run(program, *faults)
    log = session.describe()

    assert session.exit_code == exit_code, log
    assert session.commands[-1]["op"] == "reset", log
    assert session.received[-1]["op"] == "reset", log
    responses = [e["result"] for e in session.of_type("response") if e["op"] == "reset"]
    assert responses == [reset_result], log


class StopsWhenRunning(harness.ListeningUI):
    """The person presses the stop key once the belt runs."""

    def on_session_event(self, event: Event, tracker: SnapshotTracker, control: SessionControl) -> None:
        if isinstance(event, StateEvent) and event.state == "running":
            control.request_stop("user")


async def _run_with(tmp_path: Path, ui: RecordingUI) -> list[dict[str, object]]:
    session = await harness.run_in(tmp_path, "first-steps", ui=ui)
    assert session.exit_code == 130
    return session.events


async def test_the_persons_stop_ends_with_reset(tmp_path: Path) -> None:
    events = await _run_with(tmp_path, StopsWhenRunning())
    commands = [e["op"] for e in events if e["type"] == "command"]
    assert commands[-2:] == ["stop", "reset"], commands


async def test_a_cancelled_session_stops_then_releases(tmp_path: Path) -> None:
    """Cancelled while the belt runs (as when the process is torn down): Stop first, then Reset."""
    options = harness.session_options(tmp_path, "first-steps")
    assert options.events_path is not None
    events_path = options.events_path
    moving = asyncio.Event()

    def on_event(_t: float, event: Event) -> None:
        if isinstance(event, DataEvent) and (event.speed_kmh or 0.0) >= 1.0:
            moving.set()

    class WatchesTheBelt(RecordingUI):
        def session_started(
            self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
        ) -> contextlib.AbstractAsyncContextManager[None]:
            bus.subscribe(on_event)
            return super().session_started(tracker, bus, control, units)

    task = asyncio.create_task(run_session(options, WatchesTheBelt()))
    async with asyncio.timeout(15.0):
        await moving.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    events = read_events(events_path)
    commands = [e["op"] for e in events if e["type"] == "command"]
    assert commands[-2:] == ["stop", "reset"], commands
    assert [e["reason"] for e in events if e["type"] == "safety"] == ["signal"], events

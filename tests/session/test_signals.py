"""SIGTERM and Ctrl-C (SIGINT) while the belt moves: the process stops the belt first, then exits 130.

The real console script runs in a subprocess (signals go to a whole process); the test waits for the
belt to move by watching the event log it writes, then signals it.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.app import Units
from retro_ftms.events import DataEvent, Event, EventBus, SafetyReason
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.harness import QuietUI, read_complete, signal_script, told_to_move, wait_for_log

# Slow enough that the first step (60 s) is still running when the signal arrives, fast enough to stop
# the belt within a fraction of a wall second.
TIME_SCALE: Final = "20"
EXIT_TIMEOUT_S: Final = 15.0
EXIT_INTERRUPTED: Final = 130


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"],
)
async def test_signal_stops_the_belt_then_exits_130(tmp_path: Path, signum: signal.Signals) -> None:
    events_path = tmp_path / "events.jsonl"
    args = ["run", "--simulator", "--program", "foundation", "--yes", "--time-scale", TIME_SCALE]
    code, stderr = await signal_script(
        [*args, "--events", str(events_path)],
        signum,
        after=lambda process: wait_for_log(events_path, process, told_to_move),
        exit_timeout_s=EXIT_TIMEOUT_S,
    )

    assert code == EXIT_INTERRUPTED, stderr
    events = read_complete(events_path)
    tail = "\n".join(str(e) for e in events if e["type"] != "data")
    signal_at = next(i for i, e in enumerate(events) if e["type"] == "safety")
    assert events[signal_at]["reason"] == "signal", tail
    later = events[signal_at - 1 :]  # the Stop write may be logged just before the safety event
    stop_at = next(i for i, e in enumerate(later) if e["type"] == "command" and e["op"] == "stop")
    end_at = next(i for i, e in enumerate(later) if e["type"] == "end")
    assert later[end_at]["reason"] == "signal", tail
    # The belt came to rest before the session ended, and nothing moved it after the Stop.
    assert any(e["type"] == "sim" and e["event"] == "belt_stopped" for e in later[stop_at:end_at]), tail
    motion = [e for e in later[stop_at:] if e["type"] == "command" and e["op"] not in ("stop", "reset")]
    assert motion == [], tail


@dataclass(eq=False)
class PersonUI(QuietUI):
    """The harness's UI for a person who answers the questions with `answer` and then, once the belt
    moves, asks for a stop with `reason` (a key, an MQTT STOP, the panel's pain button)."""

    reason: SafetyReason | None = None

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        reason = self.reason

        def on_event(_t: float, event: Event) -> None:
            if reason is not None and isinstance(event, DataEvent) and event.speed_kmh:  # the belt moves
                control.request_stop(reason)

        return harness.acting(bus, on_event)


async def run_person(tmp_path: Path, ui: PersonUI) -> harness.SessionRun[PersonUI]:
    """One in-process session on the simulator (bleak over Bumble), with the event log read back."""
    return await harness.run_in(
        tmp_path, "first-steps", ui=ui, time_scale=50.0, timing=False, timeout_s=EXIT_TIMEOUT_S
    )


@pytest.mark.parametrize("reason", ["user", "signal", "mqtt_stop", "pain"])
async def test_a_persons_stop_exits_130(tmp_path: Path, reason: SafetyReason) -> None:
    """Every deliberate stop by a person is 130 ("stopped by you"), never 3 (a safety trigger)."""
    ui = PersonUI(reason=reason)
    code, events = await run_person(tmp_path, ui)
    assert code == EXIT_INTERRUPTED, [e for e in events if e["type"] != "data"][-10:]
    assert [(e["outcome"], e["reason"]) for e in events if e["type"] == "end"] == [("stopped", reason)]
    assert ui.results[0].exit_code == EXIT_INTERRUPTED


async def test_declining_the_questions_is_exit_2_after_connecting(tmp_path: Path) -> None:
    code, events = await run_person(tmp_path, PersonUI(answer=False))
    assert code == 2
    assert events[0]["type"] == "state"
    assert events[0]["state"] == "connecting"
    assert [e for e in events if e["type"] == "command" and e["op"] in ("start", "set_speed")] == []
    assert [(e["outcome"], e["reason"]) for e in events if e["type"] == "end"] == [("stopped", "user")]

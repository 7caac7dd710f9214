"""SIGTERM and Ctrl-C (SIGINT) while the belt moves: the process stops the belt first, then exits 130.

The real console script runs in a subprocess (signals go to a whole process); the test waits for the
belt to move by watching the event log it writes, then signals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.events import CheckinEvent, DataEvent, Event, EventBus, SafetyReason
from retro_ftms.session.control import SessionControl
from retro_ftms.session.runner import SessionResult
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker

SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
# Slow enough that the first step (60 s) is still running when the signal arrives, fast enough to stop
# the belt within a fraction of a wall second.
TIME_SCALE: Final = "20"
START_TIMEOUT_S: Final = 30.0  # wall seconds: a fresh interpreter importing bumble on a loaded machine
EXIT_TIMEOUT_S: Final = 15.0
POLL_INTERVAL_S: Final = 0.05  # the other process writes the log; nothing here can wake on it sooner
EXIT_INTERRUPTED: Final = 130


async def first_set_speed(path: Path, process: asyncio.subprocess.Process) -> None:
    """Return once the event log shows a set_speed command (the belt has been told to move)."""
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            assert process.returncode is None, "the session ended before the belt moved"
            if any(e["type"] == "command" and e["op"] == "set_speed" for e in read_complete(path)):
                return
            await asyncio.sleep(POLL_INTERVAL_S)


def read_complete(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log that another process is writing (the last one may be half-written)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line]


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"],
)
async def test_signal_stops_the_belt_then_exits_130(tmp_path: Path, signum: signal.Signals) -> None:
    events_path = tmp_path / "events.jsonl"
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "run",
        "--simulator",
        "--program",
        "foundation",
        "--yes",
        "--time-scale",
        TIME_SCALE,
        "--events",
        str(events_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await first_set_speed(events_path, process)
        process.send_signal(signum)
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == EXIT_INTERRUPTED, stderr.decode()
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


@dataclass
class PersonUI:
    """A `SessionUI` for a person who answers the questions with `answer` and then, once the belt moves,
    asks for a stop with `reason` (a key, an MQTT STOP, the panel's pain button)."""

    reason: SafetyReason | None = None
    answer: bool = True
    results: list[SessionResult] = field(default_factory=list)

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        return self.answer

    def cancel_preflight(self) -> None:
        """Nothing to cancel: `preflight` answers at once."""

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        del ask_morning
        return (CheckinEvent("before"),)

    def checkin_after(self) -> CheckinEvent:
        return CheckinEvent("after")

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        reason = self.reason

        def on_event(_t: float, event: Event) -> None:
            if reason is not None and isinstance(event, DataEvent) and event.speed_kmh:  # the belt moves
                control.request_stop(reason)

        @contextlib.asynccontextmanager
        async def stopping() -> AsyncIterator[None]:
            unsubscribe = bus.subscribe(on_event)
            try:
                yield
            finally:
                unsubscribe()

        return stopping()

    def alarm(self, message: str) -> None:
        del message

    def notice(self, message: str) -> None:
        del message

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        del snapshot
        self.results.append(result)


async def run_person(tmp_path: Path, ui: PersonUI) -> tuple[int, list[dict[str, Any]]]:
    """One in-process session on the simulator (bleak over Bumble), with the event log read back."""
    events_path = tmp_path / "events.jsonl"
    options = RunOptions(program="first-steps", simulator=True, events_path=events_path, time_scale=50.0)
    async with asyncio.timeout(EXIT_TIMEOUT_S):
        code = await run_session(options, ui)
    return code, read_complete(events_path)


@pytest.mark.parametrize("reason", ["user", "signal", "mqtt_stop", "pain"])
async def test_a_persons_stop_exits_130(tmp_path: Path, reason: SafetyReason) -> None:
    """Every deliberate stop by a person is 130 ("stopped by you"), never 3 (a safety trigger)."""
    ui = PersonUI(reason)
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

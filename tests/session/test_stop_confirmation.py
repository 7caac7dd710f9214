"""How a session knows the belt stopped, through the real stack (issue 16 violation 3, issue 10 item 3).

A stop is confirmed by zero-speed records in a row, or by the treadmill's status saying the belt stopped
together with a zero-speed record; one 0 km/h record alone (`zero-blip`) is no proof. The summary says
which confirmed it, the `end` line names it, and it is the last line of the event log.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Final

from rich.console import Console

from retro_ftms.codec import OpCode
from retro_ftms.edge.display import render_summary
from retro_ftms.events import EndEvent, Event, EventBus, SafetyEvent, StateEvent, StopConfirmation
from retro_ftms.program import Segment
from retro_ftms.safety import EffectiveLimits, SafetyConfig, SafetyGuard
from retro_ftms.safety.guard import STOP_CONFIRM_RECORDS
from retro_ftms.session.runner import SessionRunner
from tests.safety.fakes import FakeLink, ManualClock, settle
from tests.session.conftest import RunSession, SessionRun

EXIT_COMPLETED: Final = 0
EXIT_SAFETY: Final = 3
CONFIRMED: Final = "confirmed stopped"
TREADMILL_TYPES: Final = frozenset({"data", "status", "command", "response", "sim"})


def summary_text(session: SessionRun) -> str:
    """The summary the person reads at the end, as plain text."""
    term = Console(record=True, width=160, file=io.StringIO(), color_system=None)
    term.print(render_summary(session.result, session.snapshot, "kmh", None))
    return term.export_text()


def ends_the_log(session: SessionRun) -> None:
    """Nothing from the treadmill follows `end` (records while the link closes are no part of it)."""
    after = session.events[session.events.index(session.end) + 1 :]
    assert [e for e in after if e["type"] in TREADMILL_TYPES] == [], session.describe()


async def test_a_normal_end_is_confirmed_by_zero_records(run: RunSession) -> None:
    session = await run("first-steps")
    log = session.describe()

    assert session.exit_code == EXIT_COMPLETED, log
    assert session.result.stop_confirmed_by == StopConfirmation("zero_records", STOP_CONFIRM_RECORDS), log
    assert session.end["stop_confirmed_by"] == "zero_records", log
    assert f"{CONFIRMED}: {STOP_CONFIRM_RECORDS} zero-speed records" in summary_text(session)
    ends_the_log(session)


async def test_a_pulled_safety_key_is_confirmed_by_the_status_and_a_zero_record(run: RunSession) -> None:
    session = await run("first-steps", "safety-key@40")
    log = session.describe()

    assert session.exit_code == EXIT_SAFETY, log
    assert session.end["reason"] == "safety_key", log
    confirmation = session.result.stop_confirmed_by
    assert confirmation is not None, log
    assert (confirmation.by, confirmation.status) == ("status", "stopped_by_safety_key"), log
    assert session.end["stop_confirmed_by"] == "stopped_by_safety_key", log
    text = summary_text(session)
    assert f"{CONFIRMED} by the treadmill's status 'stopped by safety key' and a zero-speed record" in text, (
        text
    )
    ends_the_log(session)


async def test_a_single_zero_record_after_an_ignored_stop_is_no_confirmation(run: RunSession) -> None:
    """`zero-blip`: Stop answered Success, one 0 km/h record, the belt runs on: alarm, exit 3."""
    session = await run("first-steps", "zero-blip@40")
    log = session.describe()

    assert session.exit_code == EXIT_SAFETY, log
    assert session.end == {**session.end, "outcome": "stopped", "reason": "stop_unconfirmed"}, log
    assert session.end["stop_confirmed_by"] is None, log
    # The blip went through the real stack: the client logged it after the Stop, then motion again.
    stop_at = next(e["t"] for e in session.commands if e["op"] == "stop")
    speeds = [e["speed_kmh"] for e in session.of_type("data") if e["t"] > stop_at]
    assert 0.0 in speeds, log
    assert speeds[-1] > 0.0, log
    alarms = [e for e in session.safety if e["action"] == "alarm"]
    assert [a["reason"] for a in alarms] == ["stop_unconfirmed"], log
    assert session.result.belt_stopped is False
    assert session.result.stop_confirmed_by is None
    text = summary_text(session)
    assert re.search(rf"Belt +NOT {CONFIRMED}", text), text
    assert f"{CONFIRMED}:" not in text, text
    assert f"{CONFIRMED} by" not in text, text
    assert "THE BELT MAY STILL BE MOVING" in text, text
    ends_the_log(session)


async def test_a_record_after_the_confirmation_and_before_the_end_is_judged() -> None:
    """The program's end: Stop, the belt confirmed stopped by zero records; while the Reset is on its way
    the belt reports motion again. The runner's end waits for the release, so that record is judged: the
    end is `stop_unconfirmed`, exit 3, after the alarm, and names no confirmation."""
    clock = ManualClock()
    bus = EventBus(clock)
    link = FakeLink(clock)
    events: list[Event] = []
    bus.subscribe(lambda _t, event: events.append(event))
    config = SafetyConfig()
    limits = EffectiveLimits.from_config(config, speed_range_kmh=(0.5, 16.0))
    segments = [Segment(0.0, 10.0, 1.0, 0.0, 0, "walk", "walk")]
    link.answer(OpCode.RESET, "hang")
    async with SafetyGuard(link, limits, config, clock, bus) as guard, asyncio.TaskGroup() as group:
        runner = SessionRunner(segments=segments, guard=guard, limits=limits, clock=clock, bus=bus)
        session = group.create_task(runner.run())
        while "stop" not in link.names():
            await clock.advance(1.0)
            link.data(guard.target_speed_kmh)
        link.rest()
        await settle()
        assert guard.stop_confirmed_by == StopConfirmation("zero_records", STOP_CONFIRM_RECORDS)
        assert link.names()[-1] == "reset"  # confirmed: the release is under way
        assert not session.done()
        link.data(1.1)  # the belt runs again
        link.release_hang()
        result = await session

    assert (result.outcome, result.reason, result.exit_code) == ("stopped", "stop_unconfirmed", EXIT_SAFETY)
    assert result.belt_stopped is False
    assert result.stop_confirmed_by is None
    alarm = next(e for e in events if isinstance(e, SafetyEvent) and e.action == "alarm")
    assert events[-1] == EndEvent("stopped", "stop_unconfirmed", None)
    assert events.index(alarm) < len(events) - 1
    assert StateEvent("completed") not in events

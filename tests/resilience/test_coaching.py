"""Coaching on a treadmill without a Control Point: the person sets the console as told, retro-ftms watches.

The simulated treadmill here has no Control Point (the `no-control-point` quirk); a simulated person follows
the coach's instructions on its console, with a reaction time, and sometimes breaks a rule.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, ClassVar, Final

import pytest
from bumble.link import LocalLink

import simulator.gatt
from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.ble.reconnect import ReconnectingLink
from retro_ftms.clock import Clock
from retro_ftms.codec import MachineStatus, TreadmillData
from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.events import CoachEvent, Event, EventBus, SafetyEvent, StateEvent, StepEvent
from retro_ftms.program import expand, load_program
from retro_ftms.safety import SafetyConfig
from retro_ftms.safety.coaching import CANNOT_STOP, ConsoleWatch
from retro_ftms.safety.limits import EffectiveLimits
from retro_ftms.session.coaching import CoachingSession
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from retro_ftms.session.timeline import SessionResult
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings
from simulator.quirks import with_quirks
from tests import harness
from tests.resilience.conftest import TIME_SCALE, TIMING, RecordingUI, config_file, read_events

REACTION_S: Final = 2.0  # the person needs a moment to reach the buttons
CONFIG: Final = SafetyConfig.model_validate(dict(TIMING))
WALL_LIMIT_S: Final = 20.0


WATCH_ONLY: Final = with_quirks(SimulatorSettings(), ["no-control-point"])


class SeenTreadmill(SimulatedTreadmill):
    """The app's simulated treadmill, remembered so that the test's person can reach its console."""

    made: ClassVar[list[SeenTreadmill]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        SeenTreadmill.made.append(self)


class ConsolePerson:
    """Does on the simulator's console what the coach says, `REACTION_S` later; optionally, once the belt
    has run for `misbehave_after_s`, raises speed and incline together."""

    def __init__(
        self, sim: SimulatedTreadmill, bus: EventBus, *, misbehave_after_s: float | None = None
    ) -> None:
        self._sim = sim
        self._bus = bus
        self._clock = bus.clock
        self._misbehave_after_s = misbehave_after_s
        self._queue: asyncio.Queue[CoachEvent] = asyncio.Queue()
        self._running = asyncio.Event()
        self.misbehaved = False

    def _on_event(self, _t: float, event: Event) -> None:
        if isinstance(event, CoachEvent):
            self._queue.put_nowait(event)
        elif isinstance(event, StateEvent) and event.state == "running":
            self._running.set()

    async def _follow(self) -> None:
        while True:
            event = await self._queue.get()
            await self._clock.sleep(REACTION_S)
            if event.action == "start" and event.speed_kmh is not None:
                self._sim.console_set_speed(event.speed_kmh)
                self._sim.console_start()
            elif event.action == "set_speed" and event.speed_kmh is not None:
                self._sim.console_set_speed(event.speed_kmh)
            elif event.action == "set_incline" and event.incline_pct is not None:
                self._sim.console_set_incline(event.incline_pct)
            elif event.action == "stop":
                self._sim.console_stop()

    async def _misbehave(self, after_s: float) -> None:
        await self._running.wait()
        await self._clock.sleep(after_s)
        self.misbehaved = True
        self._sim.console_set_speed(self._sim.model.belt_goal_kmh() + 0.1)
        self._sim.console_set_incline(1.0)

    def at_the_console(self) -> contextlib.AbstractAsyncContextManager[None]:
        after_s = self._misbehave_after_s
        misbehaving = [] if after_s is None else [self._misbehave(after_s)]
        return harness.acting(self._bus, self._on_event, self._follow(), *misbehaving)


async def coach(
    program: str, *, misbehave_after_s: float | None = None
) -> tuple[SessionResult, list[Event], Any]:
    """A coached session on a watch-only treadmill, assembled as `run_session` does it."""
    clock = Clock(TIME_SCALE)
    bus = EventBus(clock)
    events: list[Event] = []
    bus.subscribe(lambda _t, event: events.append(event))
    link = LocalLink()  # type: ignore[no-untyped-call]
    async with SimulatedTreadmill(clock, WATCH_ONLY, bus=bus) as sim:
        await sim.serve_on_link(link)
        async with await BumbleCentral.on_link(link) as central:

            async def connect(timeout_s: float) -> FtmsClient:
                return await connect_ftms(
                    sim.address, central=central, bus=bus, timeout_s=timeout_s, clock=clock
                )

            async with ReconnectingLink(connect, window_s=5.0) as ftms:
                assert not ftms.has_control_point
                limits = EffectiveLimits.from_config(CONFIG)
                session = CoachingSession(
                    segments=expand(load_program(program), limits),
                    link=ftms,
                    limits=limits,
                    config=CONFIG,
                    clock=clock,
                    bus=bus,
                )
                person = ConsolePerson(sim, bus, misbehave_after_s=misbehave_after_s)
                async with person.at_the_console(), asyncio.timeout(WALL_LIMIT_S):
                    result = await session.run()
        assert sim.received == []  # nothing was (or could be) written
        assert sim.belt_stopped()
    return result, events, person


def rises(events: list[Event]) -> list[tuple[str, float]]:
    return [(e.action, e.speed_kmh or e.incline_pct or 0.0) for e in events if isinstance(e, CoachEvent)]


async def test_a_coached_session_completes_one_change_at_a_time() -> None:
    result, events, _ = await coach("incline-intro")

    assert (result.outcome, result.exit_code, result.belt_stopped) == ("completed", 0, True)
    assert [e for e in events if isinstance(e, SafetyEvent)] == []
    told = [e for e in events if isinstance(e, CoachEvent)]
    assert told[0].action == "info"
    assert "cannot stop the belt itself" in told[0].message
    assert told[1].action == "start"
    assert told[1].speed_kmh is not None
    assert told[1].speed_kmh <= 1.6
    assert told[-1].action == "stop"
    program = load_program("incline-intro")
    steps = [e.index for e in events if isinstance(e, StepEvent)]
    assert steps == list(range(len(program.steps)))
    inclines = [e.incline_pct for e in told if e.action == "set_incline" and e.incline_pct is not None]
    assert inclines, "incline-intro raises the incline"
    assert max(inclines) == max(step.incline for step in program.steps)


async def test_speed_and_incline_raised_together_sound_the_alarm() -> None:
    """The person raises speed and incline together on the console: a loud alarm that says retro-ftms
    cannot stop the belt; the coach asks for the stop, the person stops, exit 3."""
    result, events, person = await coach("first-steps", misbehave_after_s=40.0)

    assert person.misbehaved
    safety = [e for e in events if isinstance(e, SafetyEvent)]
    assert [(e.reason, e.action) for e in safety] == [("console_override", "alarm")]
    assert "never rise together" in safety[0].detail
    assert CANNOT_STOP in safety[0].detail
    after = events[events.index(safety[0]) :]
    assert [e.action for e in after if isinstance(e, CoachEvent)][:1] == ["stop"]
    assert (result.outcome, result.reason, result.exit_code, result.belt_stopped) == (
        "stopped",
        "console_override",
        3,
        True,
    )


def test_watch_sees_rises_from_records_and_statuses() -> None:
    limits = EffectiveLimits.from_config(CONFIG)
    watch = ConsoleWatch(limits, CONFIG)
    assert watch.on_record(TreadmillData(speed_kmh=0.0, incline_pct=0.0), 0.0) is None
    assert watch.on_record(TreadmillData(speed_kmh=1.0, incline_pct=0.0), 1.0) is None  # the start
    assert watch.on_record(TreadmillData(speed_kmh=1.6, incline_pct=0.0), 20.0) is None
    violation = watch.on_status(MachineStatus.target_incline_changed(1.0), 35.0)  # 15 s after a rise
    assert violation is not None
    assert violation.reason == "console_override"
    # Caps and too big a single rise are violations too.
    over = watch.on_record(TreadmillData(speed_kmh=4.5, incline_pct=0.0), 200.0)
    assert over is not None
    assert over.reason == "overspeed"
    big = ConsoleWatch(limits, CONFIG)
    big.on_record(TreadmillData(speed_kmh=1.6), 0.0)
    jump = big.on_status(MachineStatus.target_speed_changed(2.4), 60.0)
    assert jump is not None
    assert "one rise" in jump.detail


class _PersonAtTheConsole(RecordingUI):
    """The terminal of the app-level test: the person stands at the watch-only simulator's console."""

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, control, units
        return ConsolePerson(SeenTreadmill.made[-1], bus).at_the_console()


async def test_the_app_coaches_when_there_is_no_control_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --simulator` on a treadmill without a Control Point runs the coaching session."""
    monkeypatch.setattr(simulator.gatt, "SimulatedTreadmill", SeenTreadmill)
    events_path = tmp_path / "events.jsonl"
    options = RunOptions(
        program="first-steps",
        simulator=True,
        quirks=("no-control-point",),
        config_path=config_file(tmp_path, None),
        events_path=events_path,
        time_scale=TIME_SCALE,
    )
    async with asyncio.timeout(WALL_LIMIT_S):
        assert await run_session(options, _PersonAtTheConsole()) == 0
    events = read_events(events_path)
    kinds = {e["type"] for e in events}
    assert "coach" in kinds
    assert not [e for e in events if e["type"] == "command"]  # nothing is ever written
    assert [e["outcome"] for e in events if e["type"] == "end"] == ["completed"]

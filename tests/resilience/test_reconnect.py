"""Link loss mid-session: report at once, reconnect within the window, Stop first, never resume.

Through the whole stack (`run_session` with `--fault disconnect@T`: the simulator drops the link, keeps its
belt running and advertises again), and, for a treadmill that never comes back, a session assembled here
around a simulator that goes off the air.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any, Final

from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.ble.link import LinkEvent, LinkLost, LinkRestored, ReconnectFailed
from retro_ftms.ble.reconnect import ReconnectingLink
from retro_ftms.clock import Clock
from retro_ftms.codec import ControlPointRequest
from retro_ftms.errors import ConnectError
from retro_ftms.events import Event, EventBus, SafetyEvent, StateEvent
from retro_ftms.program import expand, load_program
from retro_ftms.safety import SafetyConfig, SafetyGuard
from retro_ftms.safety.limits import EffectiveLimits
from retro_ftms.session.runner import SessionRunner
from simulator.gatt import SimulatedTreadmill
from tests.resilience.conftest import (
    MOTION_OPS,
    SIM_MOTION_OPS,
    RunResilient,
    SessionRun,
    belt_stopped_after,
)

EXIT_SAFETY: Final = 3
TIME_SCALE: Final = 300.0
NO_RECONNECT: Final = {"ble": {"reconnect_window_s": 0.0}}
WALL_LIMIT_S: Final = 15.0  # a session that does not end by itself within this hangs


def fault_t(session: SessionRun) -> float:
    return float(next(e["t"] for e in session.sim if e["event"] == "fault"))


def after(session: SessionRun, t: float, kind: str) -> list[dict[str, Any]]:
    return [e for e in session.events if e["type"] == kind and e["t"] > t]


async def test_disconnect_reconnects_stops_first_and_never_resumes(run: RunResilient) -> None:
    session = await run("first-steps", "disconnect@40")
    log = session.describe(40)
    lost_at = fault_t(session)

    assert session.exit_code == EXIT_SAFETY, log
    assert session.end == {**session.end, "outcome": "stopped", "reason": "link_lost"}, log
    latch = session.safety[0]
    assert (latch["reason"], latch["action"]) == ("link_lost", "stop"), log
    assert "safety key" in latch["detail"], log  # the belt may still run: the person is told at once

    # The first command on the restored link is Stop, as written by the client and received by the machine.
    commands = after(session, lost_at, "command")
    assert commands, log
    assert commands[0]["op"] == "stop", log
    received = [e for e in session.received if e["t"] > lost_at]
    assert (received[0]["op"], received[0]["data"]) == ("stop_or_pause", "0801"), log
    # The machine forgot our control with the link: control is asked for only to write Stop again.
    assert [c["op"] for c in commands if c["op"] != "reset"] in (
        ["stop"],
        ["stop", "request_control", "stop"],
    )

    # Nothing moves the belt again, on either side.
    assert [c for c in commands if c["op"] in MOTION_OPS] == [], log
    assert [e for e in received if e["op"] in SIM_MOTION_OPS] == [], log
    assert belt_stopped_after(session, lost_at), log
    confirmed = [e for e in session.safety if e["action"] == "stop_confirmed"]
    assert [e["reason"] for e in confirmed] == ["link_lost"], log
    assert [e for e in session.safety if e["action"] == "alarm"] == [], log
    assert session.result.belt_stopped is True
    # Control is released at the very end so the console works again.
    assert commands[-1]["op"] == "reset", log
    assert received[-1]["op"] == "reset", log


async def test_no_reconnect_window_raises_the_alarm_and_ends(run: RunResilient) -> None:
    """`reconnect_window_s = 0`: the link stays down; the stop cannot be confirmed, the alarm sounds."""
    started = time.monotonic()
    session = await run("first-steps", "disconnect@40", config=NO_RECONNECT)
    log = session.describe()

    assert time.monotonic() - started < WALL_LIMIT_S, log
    assert session.exit_code == EXIT_SAFETY, log
    assert session.end["reason"] == "link_lost", log
    alarms = [e for e in session.safety if e["action"] == "alarm"]
    assert [a["reason"] for a in alarms] == ["stop_unconfirmed"], log
    assert "safety key" in alarms[0]["detail"], log
    assert after(session, fault_t(session), "command") == [], log  # nothing can be written
    assert session.result.belt_stopped is False


@contextlib.asynccontextmanager
async def _guarded_session(
    sim: SimulatedTreadmill, link: LocalLink, clock: Clock, bus: EventBus, window_s: float
) -> Any:
    """A guarded first-steps session on `sim` over a reconnecting link, as `run_session` wires it."""
    config = SafetyConfig(data_timeout_s=5.0, stop_confirm_timeout_s=15.0)
    async with await BumbleCentral.on_link(link) as central:

        async def connect(timeout_s: float) -> FtmsClient:
            return await connect_ftms(sim.address, central=central, bus=bus, timeout_s=timeout_s, clock=clock)

        async with ReconnectingLink(connect, window_s=window_s, attempt_timeout_s=0.2) as ftms:
            limits = EffectiveLimits.from_config(config)
            segments = expand(load_program("first-steps"), limits)
            async with SafetyGuard(ftms, limits, config, clock, bus) as guard:
                runner = SessionRunner(segments=segments, guard=guard, limits=limits, clock=clock, bus=bus)
                yield ftms, guard, runner


async def test_a_link_that_never_returns_raises_the_alarm_without_hanging() -> None:
    """The treadmill goes off the air (power cut) while the belt runs: `link_lost` at once, reconnect
    attempts for the window, then the alarm; the session ends with exit 3 and returns promptly."""
    clock = Clock(TIME_SCALE)
    bus = EventBus(clock)
    link = LocalLink()  # type: ignore[no-untyped-call]
    events: list[tuple[float, Event]] = []
    link_events: list[tuple[float, LinkEvent]] = []
    running = asyncio.Event()

    def on_event(t: float, event: Event) -> None:
        events.append((t, event))
        if isinstance(event, StateEvent) and event.state == "running":
            running.set()

    bus.subscribe(on_event)
    sim_stack = contextlib.AsyncExitStack()
    sim = await sim_stack.enter_async_context(SimulatedTreadmill(clock))
    await sim.serve_on_link(link)
    try:
        async with _guarded_session(sim, link, clock, bus, window_s=0.5) as (ftms, guard, runner):
            ftms.add_listener(lambda event: link_events.append((clock.now(), event)))
            async with asyncio.TaskGroup() as group, asyncio.timeout(WALL_LIMIT_S):
                session = group.create_task(runner.run())
                await running.wait()
                await clock.sleep(20.0)
                started = time.monotonic()
                await sim_stack.aclose()  # the treadmill loses power: gone from the air
                result = await session
            assert time.monotonic() - started < 0.5 + WALL_LIMIT_S / 3
    finally:
        await sim_stack.aclose()

    changes = [(t, e) for t, e in link_events if isinstance(e, LinkLost | LinkRestored | ReconnectFailed)]
    assert [type(e) for _, e in changes] == [LinkLost, ReconnectFailed]
    assert changes[0][1] == LinkLost("disconnected", reconnecting=True)
    safety = [(t, e) for t, e in events if isinstance(e, SafetyEvent)]
    assert [(e.reason, e.action) for _, e in safety] == [("link_lost", "stop"), ("stop_unconfirmed", "alarm")]
    # The alarm waited for the reconnect attempts (the window), then sounded.
    assert safety[1][0] >= changes[1][0]
    assert (result.exit_code, result.reason, result.belt_stopped) == (EXIT_SAFETY, "link_lost", False)
    assert guard.latched is not None


async def test_failed_attempts_back_off_until_the_link_returns(
    simulator: SimulatedTreadmill, central: BumbleCentral, fast_clock: Clock
) -> None:
    """Attempts that fail (a treadmill still rebooting) are retried with growing pauses within the window;
    the link that comes back is set up afresh before `LinkRestored`."""
    attempts: list[float] = []
    failures = 2

    async def connect(timeout_s: float) -> FtmsClient:
        attempts.append(time.monotonic())
        if len(attempts) > 1 and len(attempts) <= 1 + failures:
            raise ConnectError("not yet")
        return await connect_ftms(simulator.address, central=central, timeout_s=timeout_s, clock=fast_clock)

    changes: list[LinkEvent] = []
    restored = asyncio.Event()

    def on_event(event: LinkEvent) -> None:
        if isinstance(event, LinkLost | LinkRestored | ReconnectFailed):
            changes.append(event)
        if isinstance(event, LinkRestored):
            restored.set()

    async with ReconnectingLink(connect, window_s=10.0, first_backoff_s=0.05) as ftms:
        ftms.add_listener(on_event)
        await simulator.disconnect_all()
        async with asyncio.timeout(WALL_LIMIT_S):
            await restored.wait()
        assert ftms.is_connected
        assert ftms.has_control_point
        assert ftms.reconnects == 1
        response = await ftms.request(ControlPointRequest.request_control())
        assert response.ok

    assert changes == [LinkLost("disconnected", reconnecting=True), LinkRestored()]
    assert len(attempts) == 2 + failures
    pauses = [b - a for a, b in itertools.pairwise(attempts[1:])]
    assert pauses[0] >= 0.05
    assert pauses[1] >= 0.1

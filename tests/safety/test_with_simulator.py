"""The guard on a real `FtmsClient` against the bundled simulator (in-process Bumble link).

Each fault of design.md's table that the guard alone decides, injected at once into a running session.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Final

import pytest
from bumble import att, gatt_client

from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.clock import Clock
from retro_ftms.codec import ControlPointRequest, OpCode
from retro_ftms.errors import ControlPointError
from retro_ftms.events import Event, EventBus, SafetyEvent
from retro_ftms.safety import EffectiveLimits, SafetyConfig, SafetyGuard
from simulator.faults import FaultSpec
from simulator.gatt import SimulatedTreadmill

FIRST_SPEED_KMH: Final = 1.6
# The loosest timeouts the configuration allows: on a real clock a busy test machine must not look like
# a silent treadmill.
CONFIG: Final = SafetyConfig(data_timeout_s=5.0, stop_confirm_timeout_s=20.0)  # the ceilings


def limits_for(client: FtmsClient, config: SafetyConfig) -> EffectiveLimits:
    speed, incline = client.speed_range, client.incline_range
    return EffectiveLimits.from_config(
        config,
        speed_range_kmh=(speed.minimum_kmh, speed.maximum_kmh) if speed else None,
        incline_range_pct=(incline.minimum_pct, incline.maximum_pct) if incline else None,
    )


@contextlib.asynccontextmanager
async def running(client: FtmsClient, clock: Clock, bus: EventBus) -> AsyncIterator[SafetyGuard]:
    """A guard in control of a belt running at the first speed (entered and left in the test's task)."""
    config = CONFIG
    async with SafetyGuard(client, limits_for(client, config), config, clock, bus) as guard:
        await guard.take_control()
        await guard.start()
        await guard.set_speed(FIRST_SPEED_KMH)
        await clock.sleep(5.0)
        assert guard.reported_speed_kmh == FIRST_SPEED_KMH
        yield guard


@pytest.fixture
def session(
    ftms_client: FtmsClient, fast_clock: Clock, event_bus: EventBus
) -> AbstractAsyncContextManager[SafetyGuard]:
    return running(ftms_client, fast_clock, event_bus)


Session = AbstractAsyncContextManager[SafetyGuard]


# A whole session lives through many data timeouts: at this scale each is 0.5 s of wall time, twice the
# 250 ms floor (`Clock.watchdog_s`) it has at `SIMULATOR_TIME_SCALE`, which a loaded machine has outlasted.
WHOLE_SESSION_TIME_SCALE: Final = 10.0


@pytest.mark.parametrize("fast_clock", [WHOLE_SESSION_TIME_SCALE], indirect=True)
async def test_a_whole_short_session(
    session: Session, simulator: SimulatedTreadmill, fast_clock: Clock
) -> None:
    async with session as guard:
        step = guard.speed_step(2.0)
        assert await guard.sleep(step.not_before_s - fast_clock.now())
        await guard.set_speed(step.value)
        assert await guard.sleep(10.0)
        assert await guard.finish()
        await guard.release()
        assert guard.latched is None
    assert simulator.belt_stopped()
    ops = [request.op for request in simulator.received]
    assert ops[-2:] == [OpCode.STOP_OR_PAUSE, OpCode.RESET]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("safety-key@0", "safety_key"),
        ("user-stop@0", "user_stop"),
        ("reset@0", "machine_reset"),
        ("control-lost@0", "control_lost"),
        ("console-speed@0:3", "console_override"),
        ("console-incline@0:2", "console_override"),
        # A belt running away at 0.5 km/h/s stops two records after it leaves the band, before the cap
        # (issue 9 item 4); a belt past the cap: tests/session/test_faults.py.
        ("overspeed@0:6", "speed_mismatch"),
        ("overspeed@0:2.5", "speed_mismatch"),
        ("silence@0:15", "stale_data"),
        ("garbage@0", "bad_data"),
    ],
)
async def test_faults_latch_and_stop(
    session: Session, simulator: SimulatedTreadmill, fault: str, reason: str
) -> None:
    async with session as guard:
        written = len(simulator.received)
        simulator.apply_fault(FaultSpec.parse(fault))
        latched = await guard.wait_latched()
        assert latched.reason == reason
        confirmed = await guard.wait_stopped()
        stops = [r for r in simulator.received[written:] if r.op == OpCode.STOP_OR_PAUSE]
        assert stops, "Stop was attempted"
        if reason != "control_lost":  # the machine took control away: it answers Control Not Permitted
            assert confirmed
            assert simulator.belt_stopped()
            assert guard.reason == reason


async def test_console_decrease_holds_and_the_session_goes_on(
    session: Session, simulator: SimulatedTreadmill
) -> None:
    async with session as guard:
        simulator.apply_fault(FaultSpec.parse("console-speed@0:1.0"))
        assert not await guard.sleep(30.0)  # woken by the hold
        assert guard.holding
        assert guard.target_speed_kmh == 1.0
        assert await guard.sleep(15.0)
        assert guard.latched is None
        assert await guard.finish()


async def test_ignore_stop_is_unconfirmed(
    session: Session, simulator: SimulatedTreadmill, event_bus: EventBus
) -> None:
    events: list[Event] = []
    event_bus.subscribe(lambda _t, event: events.append(event))
    async with session as guard:
        simulator.apply_fault(FaultSpec.parse("ignore-stop@0"))
        assert not await guard.finish()
        assert guard.reason == "stop_unconfirmed"
    assert any(isinstance(e, SafetyEvent) and e.reason == "stop_unconfirmed" for e in events)


async def test_cp_error_on_a_motion_command(session: Session, simulator: SimulatedTreadmill) -> None:
    async with session as guard:
        simulator.apply_fault(FaultSpec.parse("cp-error@0:operation_failed"))
        with pytest.raises(ControlPointError, match="operation_failed"):
            await guard.set_speed(1.0)
        assert (await guard.wait_latched()).reason == "command_failed"
        assert await guard.wait_stopped()


async def test_user_pause_and_resume(
    session: Session, simulator: SimulatedTreadmill, fast_clock: Clock
) -> None:
    async with session as guard:
        simulator.apply_fault(FaultSpec.parse("user-pause@0"))
        assert not await guard.sleep(10.0)
        assert guard.paused
        assert not await guard.sleep(1.0)  # no sleeping through a pause
        await simulator.wait_belt_stopped()
        while guard.reported_speed_kmh != 0.0:  # the record at rest follows the belt stopping
            await fast_clock.sleep(0.5)
        await guard.resume("terminal")
        assert guard.running
        assert await guard.sleep(10.0)
        assert guard.reported_speed_kmh == FIRST_SPEED_KMH


async def test_the_stop_packet_leaves_before_anything_is_published_about_the_latch(
    session: Session, simulator: SimulatedTreadmill, event_bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: between the safety key's Status and the Stop write's packet no bus listener runs (event
    log, display, MQTT); the Stop's command event, then the latch, follow the packet in that order."""
    seen: list[str] = []
    event_bus.subscribe(lambda _t, event: seen.append(event.TYPE))
    send_pdu = gatt_client.Client.send_gatt_pdu
    stop_pdu = bytes([att.Opcode.ATT_WRITE_REQUEST])  # then the handle, then the Stop's bytes

    def recording(client: gatt_client.Client, pdu: bytes) -> None:
        if pdu[:1] == stop_pdu and pdu[3:] == bytes(ControlPointRequest.stop()):
            seen.append("stop packet")
        send_pdu(client, pdu)

    monkeypatch.setattr(gatt_client.Client, "send_gatt_pdu", recording)
    async with session as guard:
        del seen[:]
        simulator.pull_safety_key()
        assert (await guard.wait_latched()).reason == "safety_key"
        await guard.wait_stopped()
    after_status = seen[seen.index("status") + 1 :]
    assert after_status[0] == "stop packet", seen
    assert after_status.index("command") < after_status.index("safety"), seen

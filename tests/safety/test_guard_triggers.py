"""Every trigger: the right reason, Stop written first and at once, and the latch holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from retro_ftms.codec import MachineStatus, OpCode, ResultCode
from retro_ftms.errors import ControlPointError
from retro_ftms.events import HoldEvent, SafetyEvent, StateEvent
from retro_ftms.safety import LINK_LOST_DETAIL, CommandRefused, Rule, SafetyConfig, SafetyGuard
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import settle


async def assert_latched(rig: Rig, guard: SafetyGuard, reason: str, *, tripped_at: int) -> None:
    """Latched for `reason`: Stop was the first write after the trigger (writes[tripped_at:]), written
    at the trigger's clock time and before the safety event was announced; later motion is refused."""
    await settle()
    assert guard.latched is not None
    assert guard.latched.reason == reason
    after = rig.link.writes[tripped_at:]
    assert after
    assert after[0].name == "stop"
    assert after[0].preempting
    assert after[0].t == rig.clock.now()
    log = rig.link.log
    assert log.index("write stop") < log.index("event safety")
    assert rig.safety()[0] == guard.latched
    assert StateEvent("stopped") in rig.events
    written = len(rig.link.writes)
    calls: list[Callable[[], Awaitable[None]]] = [
        lambda: guard.set_speed(1.0),
        lambda: guard.set_incline(0.0),
        guard.start,
    ]
    for call in calls:
        with pytest.raises(CommandRefused) as caught:
            await call()
        assert caught.value.rule is Rule.LATCHED
    with pytest.raises(CommandRefused):
        await guard.resume("terminal")
    await rig.clock.advance(60.0)
    assert {w.name for w in rig.link.writes[written:]} <= {"stop"}


STATUS_TRIGGERS = [
    (MachineStatus.stopped_by_safety_key(), "safety_key"),
    (MachineStatus.stopped_by_user(), "user_stop"),
    (MachineStatus.control_permission_lost(), "control_lost"),
    (MachineStatus.reset(), "machine_reset"),
    (MachineStatus.target_speed_changed(2.5), "console_override"),
    (MachineStatus.target_incline_changed(1.0), "console_override"),
]


@pytest.mark.parametrize(("status", "reason"), STATUS_TRIGGERS, ids=[r for _, r in STATUS_TRIGGERS])
async def test_machine_status_triggers(rig: Rig, status: MachineStatus, reason: str) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        tripped_at = len(rig.link.writes)
        rig.link.status(status)
        await assert_latched(rig, guard, reason, tripped_at=tripped_at)


async def test_control_lost_stop_is_attempted_without_asking_control_again(rig: Rig) -> None:
    rig.link.answer(OpCode.STOP_OR_PAUSE, ResultCode.CONTROL_NOT_PERMITTED)
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(MachineStatus.control_permission_lost())
        await rig.tick(20, 1.6)  # the belt runs on: the console has it now
        assert rig.link.names()[-1] == "stop"
        assert rig.link.names().count("request_control") == 1
        assert guard.alarm is not None  # loud all the same
        assert guard.reason == "control_lost"


async def test_echoes_of_our_own_commands_are_not_triggers(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.start()
        rig.link.status(MachineStatus.started_by_user())
        await guard.set_speed(1.6)
        rig.link.status(MachineStatus.target_speed_changed(1.6))
        await rig.until(30, 1.6)
        await guard.set_incline(0.5)
        rig.link.status(MachineStatus.target_incline_changed(0.5))
        rig.link.data(1.6, 0.5)
        await settle()
        assert guard.latched is None
        assert not guard.holding
        assert not guard.paused
        await guard.pause("terminal")
        rig.link.status(MachineStatus.paused_by_user())
        rig.link.status(MachineStatus.target_speed_changed(0.0))
        assert guard.latched is None
        assert not guard.holding
        rig.link.data(0.0)
        await guard.resume("terminal")
        rig.link.status(MachineStatus.started_by_user())
        assert await rig.stopped(guard.finish())
        rig.link.status(MachineStatus.stopped_by_user())
        rig.link.status(MachineStatus.reset())
        await settle()
        assert guard.latched is None
        assert rig.safety() == []


@pytest.mark.parametrize(
    ("status", "held"),
    [
        (MachineStatus.target_speed_changed(1.0), "speed"),
        (MachineStatus.target_incline_changed(0.5), "incline"),
    ],
)
async def test_a_console_decrease_holds(rig: Rig, status: MachineStatus, held: str) -> None:
    async with rig.guard() as guard:
        await rig.console_decrease(guard, status)
        assert guard.latched is None
        assert guard.holding
        detail = rig.safety()[0].detail
        targets = (guard.target_speed_kmh, guard.target_incline_pct)  # the hold says what it holds at
        assert rig.safety() == [HoldEvent("console_override", "hold", detail, *targets)]
        if held == "speed":
            assert guard.target_speed_kmh == 1.0
        else:
            assert guard.target_incline_pct == 0.5
        await rig.until(200, guard.target_speed_kmh, guard.target_incline_pct)
        speed, incline = guard.target_speed_kmh, guard.target_incline_pct or 0.0
        rises: list[Callable[[], Awaitable[None]]] = [
            lambda: guard.set_speed(speed + 0.3),
            lambda: guard.set_incline(incline + 0.5),
        ]
        for call in rises:
            with pytest.raises(CommandRefused) as caught:
                await call()
            assert caught.value.rule is Rule.HOLDING
        await guard.set_speed(0.8)  # decreases still go out
        await guard.set_incline(0.0)
        assert guard.latched is None
        assert guard.speed_step(3.0).not_before_s == float("inf")


async def test_overspeed_on_one_record(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(3, 1.6)
        tripped_at = len(rig.link.writes)
        rig.link.data(4.21)  # cap 4.0 + tolerance 0.2
        await assert_latched(rig, guard, "overspeed", tripped_at=tripped_at)


async def test_overspeed_before_the_start(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        rig.link.data(6.0)
        await settle()
        assert reason_of(guard) == "overspeed"
        assert rig.link.names() == ["request_control", "stop"]


@pytest.mark.parametrize("incline", [5.6, -0.6])
async def test_overincline(rig: Rig, incline: float) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        tripped_at = len(rig.link.writes)
        rig.link.data(1.6, incline)
        await assert_latched(rig, guard, "overincline", tripped_at=tripped_at)


async def test_heart_rate(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(SafetyConfig(max_heart_rate_bpm=140))
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.data(1.6, hr=140)
        await settle()
        assert guard.latched is None
        assert guard.hr_bpm == 140
        tripped_at = len(rig.link.writes)
        rig.link.data(1.6, hr=141)
        await assert_latched(rig, guard, "heart_rate", tripped_at=tripped_at)


async def test_a_belt_faster_than_the_target_stops_on_the_second_record(rig: Rig) -> None:
    """Issue 9 item 4: a belt forced to 2.5 km/h (below the cap) while the target is 1.6 stops on its
    second fast record as `speed_mismatch`, not after the settling time."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        rig.link.data(2.5)  # first record above the band: may be ripple
        await settle()
        assert guard.latched is None
        tripped_at = len(rig.link.writes)
        await rig.tick(1, 2.5)
        await assert_latched(rig, guard, "speed_mismatch", tripped_at=tripped_at)


async def test_a_belt_running_away_stops_before_the_cap(rig: Rig) -> None:
    """The forced belt accelerates (0.5 km/h/s): it stops as `speed_mismatch` two records after it left
    the band, long before it reaches the cap."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        for speed in (2.1, 2.6):
            await rig.tick(1, speed)
        assert reason_of(guard) == "speed_mismatch"


async def test_a_belt_jumping_past_the_cap_is_overspeed(rig: Rig) -> None:
    """Past the cap within two records: `overspeed`, on the record above the cap."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await rig.tick(1, 3.0)
        assert guard.latched is None
        await rig.tick(1, 4.5)
        assert reason_of(guard) == "overspeed"


async def test_speed_that_never_arrives_is_a_mismatch(rig: Rig) -> None:
    """Wrong units: a target of 1.6 runs at 1.6 "mph" (2.57 km/h): stopped on the second such record."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(1, 2.57)
        assert guard.latched is None
        await rig.tick(1, 2.57)
        assert reason_of(guard) == "speed_mismatch"


async def test_a_slow_belt_keeps_the_settling_time(rig: Rig) -> None:
    """Below the target the belt may take the settling time (10 s) to catch up."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(9, 1.0)
        assert guard.latched is None
        await rig.tick(2, 1.0)
        assert reason_of(guard) == "speed_mismatch"


async def test_one_odd_record_is_no_mismatch(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        for _ in range(5):
            await rig.tick(8, 1.6)
            rig.link.data(0.0)  # a dozing machine's all-zero record
        await rig.tick(2, 1.6)
        assert guard.latched is None


async def test_slowing_down_after_a_decrease_is_no_mismatch(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await guard.set_speed(0.6)
        for speed in (1.5, 1.2, 0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6):
            await rig.tick(1, speed)
        assert guard.latched is None


async def test_incline_rising_without_a_command(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.until(31, 1.6, 0.0)
        await guard.set_incline(1.0)
        await rig.tick(5, 1.6, 1.0)
        await rig.tick(1, 1.6, 2.0)
        assert guard.latched is None
        await rig.tick(1, 1.6, 2.5)
        assert reason_of(guard) == "console_override"


async def test_stale_data(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        tripped_at = len(rig.link.writes)
        await rig.clock.advance(2.9)
        assert guard.latched is None
        await rig.clock.advance(0.1)
        await assert_latched(rig, guard, "stale_data", tripped_at=tripped_at)


async def test_no_data_is_fine_while_not_running(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        await rig.clock.advance(30.0)
        await guard.start()
        rig.link.data(0.5)
        await rig.tick(5, 0.5)
        await guard.pause("terminal")
        rig.link.data(0.0)
        await rig.clock.advance(100.0)
        assert guard.latched is None


@pytest.mark.parametrize(("count", "latched"), [(2, False), (3, True)])
async def test_bad_data(rig: Rig, count: int, latched: bool) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        for _ in range(count):
            rig.link.malformed()
            await rig.tick(1, 1.6)
        assert (reason_of(guard) == "bad_data") is latched


async def test_bad_data_spread_out_is_tolerated(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        for _ in range(6):
            rig.link.malformed()
            await rig.tick(6, 1.6)
        assert guard.latched is None


async def test_console_pause_and_console_resume(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await guard.set_speed(1.9)
        await rig.tick(5, 1.9)
        rig.link.status(MachineStatus.paused_by_user())
        await settle()
        assert guard.paused
        assert guard.pause_source == "console"
        assert guard.latched is None
        assert rig.link.names()[-1] == "set_target_speed"  # no Pause of ours: the machine paused
        with pytest.raises(CommandRefused) as caught:
            await guard.set_speed(1.0)
        assert caught.value.rule is Rule.PAUSED
        rig.link.data(0.0)
        await rig.clock.advance(60.0)
        rig.link.status(MachineStatus.started_by_user())  # the person presses Start on the console
        await settle()
        assert guard.running
        assert rig.link.writes[-1].name == "set_target_speed"
        assert rig.link.writes[-1].value == 1.6


async def test_pause_timeout(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        await guard.pause("terminal")
        rig.link.rest()
        await rig.clock.advance(599.0)
        assert guard.latched is None
        await rig.clock.advance(1.0)
        assert reason_of(guard) == "pause_timeout"
        assert not await guard.wait_resumed()
        assert await guard.wait_stopped()  # the belt stood already


async def test_a_pause_that_does_not_stop_the_belt(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        await guard.pause("mqtt")
        await rig.tick(15, 1.6)
        assert reason_of(guard) == "stop_unconfirmed"
        assert rig.link.names()[-2:] == ["pause", "stop"]


async def test_link_lost_and_restored(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        written = len(rig.link.writes)
        rig.link.lose()
        await settle()
        assert guard.latched == SafetyEvent("link_lost", "stop", LINK_LOST_DETAIL)
        assert len(rig.link.writes) == written  # nothing can go out
        await rig.clock.advance(5.0)
        rig.link.restore()
        await settle()
        assert [w.name for w in rig.link.writes[written:]] == ["stop"]
        rig.link.rest()
        assert await guard.wait_stopped()
        assert guard.reason == "link_lost"


async def test_after_a_reconnect_the_first_command_is_stop_then_control_only_to_stop(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.lose()
        await settle()
        written = len(rig.link.writes)
        rig.link.answer(OpCode.STOP_OR_PAUSE, ResultCode.CONTROL_NOT_PERMITTED)  # the machine forgot us
        rig.link.restore()
        await guard.release()  # the runner ends the session right away: Stop still goes first
        rig.link.data(0.0)
        await settle()
        names = [w.name for w in rig.link.writes[written:]]
        assert names == ["stop", "request_control", "stop", "reset"]


async def test_link_lost_after_the_latch_is_loud(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(MachineStatus.stopped_by_user())
        await settle()
        rig.link.lose()
        await settle()
        assert reason_of(guard) == "user_stop"
        assert SafetyEvent("link_lost", "alarm", LINK_LOST_DETAIL) in rig.events


async def test_stop_preempts_a_procedure_in_flight(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        rig.link.answer(OpCode.SET_TARGET_SPEED, "hang")
        async with asyncio.TaskGroup() as group:
            pending = group.create_task(guard.set_speed(1.9))
            await settle()
            rig.link.status(MachineStatus.stopped_by_safety_key())
            await settle()
            assert rig.link.names()[-2:] == ["set_target_speed", "stop"]
            assert rig.link.writes[-1].preempting
            assert not pending.done()
            rig.link.release_hang()
        assert reason_of(guard) == "safety_key"


async def test_command_failure_after_the_latch_keeps_the_first_reason(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        rig.link.answer(OpCode.SET_TARGET_SPEED, "hang")
        async with asyncio.TaskGroup() as group:
            pending = group.create_task(guard.set_speed(1.9))
            await settle()
            rig.link.status(MachineStatus.stopped_by_safety_key())
            rig.link.release_hang()
        assert pending.exception() is None
        assert reason_of(guard) == "safety_key"
        rig.link.answer(OpCode.SET_TARGET_SPEED, ResultCode.OPERATION_FAILED)
        with pytest.raises(CommandRefused):
            await guard.set_speed(1.0)
        assert not isinstance(pending.exception(), ControlPointError)

"""Commands through the guard: every rule refuses with its name and writes nothing; failures latch."""

from __future__ import annotations

import asyncio
import math

import pytest

from retro_ftms.codec import FitnessMachineFeature, MachineFeature, OpCode, ResultCode, TargetSettingFeature
from retro_ftms.errors import BeltMovingError, ControlPointError, LinkLostError
from retro_ftms.events import RefusedEvent
from retro_ftms.safety import CommandRefused, Rule, SafetyConfig, SafetyGuard
from retro_ftms.safety.guard import FIRST_RECORD_WAIT_S, RESUME_REST_WAIT_S
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import FakeLink, ManualClock, settle


async def refused(rig: Rig, rule: Rule, call: object) -> CommandRefused:
    """Await a guard call that must be refused by `rule` without writing anything."""
    before = len(rig.link.writes)
    with pytest.raises(CommandRefused) as caught:
        await call  # type: ignore[misc]
    assert caught.value.rule is rule
    assert rig.refused()[-1] == RefusedEvent(caught.value.op, caught.value.value, rule.value)
    assert len(rig.link.writes) == before
    return caught.value


async def test_take_control_and_start(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.start()
        assert rig.link.names() == ["request_control", "start_or_resume"]
        assert guard.running
        assert rig.states() == ["running"]


async def test_take_control_refused_raises(rig: Rig) -> None:
    rig.link.answer(OpCode.REQUEST_CONTROL, ResultCode.CONTROL_NOT_PERMITTED)
    async with rig.guard() as guard:
        with pytest.raises(ControlPointError) as caught:
            await guard.take_control()
        assert caught.value.result == "control_not_permitted"
        assert guard.latched is None
        await refused(rig, Rule.NO_CONTROL, guard.start())


async def test_no_motion_before_control(rig: Rig) -> None:
    async with rig.guard() as guard:
        await refused(rig, Rule.NO_CONTROL, guard.set_speed(1.0))
        await refused(rig, Rule.NO_CONTROL, guard.set_incline(1.0))
        assert rig.link.writes == []


async def test_never_start_while_the_belt_moves(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        rig.link.data(0.8)  # started by hand before the session
        with pytest.raises(BeltMovingError) as caught:
            await guard.start()
        assert (caught.value.where, caught.value.value) == ("start", 0.8)
        assert rig.refused()[-1] == RefusedEvent("start", None, Rule.BELT_MOVING.value)
        rig.link.data(0.0)
        await guard.start()
        await refused(rig, Rule.BELT_MOVING, guard.start())  # a second Start would toggle on some machines
        assert rig.link.names() == ["request_control", "start_or_resume"]


async def test_a_belt_moving_before_the_session_is_refused_before_anything_is_written(rig: Rig) -> None:
    """Issue 16 v4: the record that shows the belt running may come a moment after the connection."""
    async with rig.guard() as guard:
        check = asyncio.ensure_future(guard.check_belt_at_rest())
        await rig.clock.advance(0.9)
        assert not check.done()  # waiting for a first record
        rig.link.data(2.0)
        with pytest.raises(BeltMovingError):
            await check
        assert rig.link.writes == []
        assert rig.refused() == [RefusedEvent("start", None, Rule.BELT_MOVING.value)]
        assert guard.latched is None


async def test_a_belt_at_rest_or_silent_passes_the_check_before_the_start(rig: Rig) -> None:
    async with rig.guard() as guard:
        async with asyncio.TaskGroup() as group:
            check = group.create_task(guard.check_belt_at_rest())
            await rig.clock.advance(FIRST_RECORD_WAIT_S - 0.1)
            assert not check.done()
            await rig.clock.advance(0.2)  # a machine silent at rest: the wait is bounded
        rig.link.data(0.0)
        await guard.check_belt_at_rest()
        await guard.take_control()
        await guard.start()
        assert rig.link.names() == ["request_control", "start_or_resume"]


async def test_first_speed_then_ramp(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard)
        await refused(rig, Rule.FIRST_SPEED, guard.set_speed(1.61))
        await guard.set_speed(1.6)
        await rig.tick(14, 1.6)
        await refused(rig, Rule.SPEED_RISE, guard.set_speed(1.93))
        await refused(rig, Rule.RISE_INTERVAL, guard.set_speed(1.92))
        await rig.tick(1, 1.6)
        await guard.set_speed(1.92)
        await guard.set_speed(1.5)  # a decrease goes out at once
        assert [w.value for w in rig.link.writes if w.op == OpCode.SET_TARGET_SPEED] == [1.6, 1.92, 1.5]
        assert guard.target_speed_kmh == 1.5


async def test_speed_and_incline_never_rise_together(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(29, 1.6)
        await refused(rig, Rule.RISE_SEPARATION, guard.set_incline(1.0))  # the start and the first speed
        await rig.tick(1, 1.6)
        await guard.set_incline(1.0)
        await rig.tick(29, 1.6, 1.0)
        await refused(rig, Rule.RISE_SEPARATION, guard.set_speed(1.9))
        await guard.set_incline(0.5)  # a decrease of the other quantity is always fine
        await rig.tick(1, 1.6, 0.5)
        await guard.set_speed(1.9)
        await refused(rig, Rule.RISE_SEPARATION, guard.set_incline(1.0))
        await rig.tick(30, 1.9, 0.5)
        await guard.set_incline(1.0)
        await refused(rig, Rule.RISE_INTERVAL, guard.set_incline(1.5))


async def test_caps_and_bad_values(make_rig: object) -> None:
    rig = make_rig(SafetyConfig(max_speed_kmh=3.0, max_incline_pct=2.0))  # type: ignore[operator]
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await refused(rig, Rule.MAX_SPEED, guard.set_speed(3.01))
        await refused(rig, Rule.MIN_SPEED, guard.set_speed(0.4))  # the treadmill's range starts at 0.5
        await refused(rig, Rule.MIN_SPEED, guard.set_speed(-1.0))
        await refused(rig, Rule.MAX_SPEED, guard.set_speed(1e9))
        await refused(rig, Rule.MAX_INCLINE, guard.set_incline(2.1))
        await refused(rig, Rule.MIN_INCLINE, guard.set_incline(-0.1))
        error = await refused(rig, Rule.NOT_A_NUMBER, guard.set_speed(math.nan))
        assert error.value == "nan"
        await refused(rig, Rule.NOT_A_NUMBER, guard.set_incline(math.inf))
        assert guard.latched is None  # a refusal is not a trigger


async def test_values_are_checked_as_quantized(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard)
        await refused(rig, Rule.FIRST_SPEED, guard.set_speed(1.6051))  # goes out as 1.61
        await guard.set_speed(1.6049)  # goes out as 1.60
        assert rig.link.writes[-1].value == 1.6


async def test_target_not_supported(make_rig: object) -> None:
    features = FitnessMachineFeature(MachineFeature(0), TargetSettingFeature.SPEED_TARGET)
    rig = make_rig(link=lambda clock: FakeLink(clock, features=features))  # type: ignore[operator]
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await refused(rig, Rule.NOT_SUPPORTED, guard.set_incline(0.5))


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (ResultCode.INVALID_PARAMETER, ControlPointError),
        (ResultCode.OPERATION_FAILED, ControlPointError),
        ("timeout", ControlPointError),
        ("att_busy", ControlPointError),
    ],
)
async def test_a_failed_motion_command_latches_command_failed(
    rig: Rig, answer: ResultCode | str, error: type[Exception]
) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.answer(OpCode.SET_TARGET_SPEED, answer)  # type: ignore[arg-type]
        await rig.tick(15, 1.6)
        t = rig.clock.now()
        with pytest.raises(error):
            await guard.set_speed(1.9)
        await settle()
        assert reason_of(guard) == "command_failed"
        assert [w.name for w in rig.link.writes_after(t)] == ["set_target_speed", "stop"]
        assert rig.link.writes[-1].preempting
        await refused(rig, Rule.LATCHED, guard.set_speed(1.0))


async def test_a_failed_start_latches(rig: Rig) -> None:
    rig.link.answer(OpCode.START_OR_RESUME, ResultCode.OPERATION_FAILED)
    async with rig.guard() as guard:
        await guard.take_control()
        with pytest.raises(ControlPointError):
            await guard.start()
        await settle()
        assert reason_of(guard) == "command_failed"
        assert rig.link.names()[-1] == "stop"


async def test_link_lost_during_a_command(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.answer(OpCode.SET_TARGET_SPEED, "lost")
        with pytest.raises(LinkLostError):
            await guard.set_speed(1.5)
        assert reason_of(guard) == "link_lost"


async def test_the_plan_is_never_refused(rig: Rig) -> None:
    """A runner that follows `speed_step`/`incline_step` reaches its goals without a refusal."""
    async with rig.guard() as guard:
        await rig.running(guard)
        speed_goal, incline_goal = 3.0, 2.0
        while guard.target_speed_kmh < speed_goal or (guard.target_incline_pct or 0.0) < incline_goal:
            speed, incline = guard.speed_step(speed_goal), guard.incline_step(incline_goal)
            now = guard.target_speed_kmh, guard.target_incline_pct
            if speed.value > guard.target_speed_kmh and speed.not_before_s <= incline.not_before_s:
                await rig.until(speed.not_before_s, *now)
                await guard.set_speed(speed.value)
            else:
                await rig.until(incline.not_before_s, *now)
                await guard.set_incline(incline.value)
        assert rig.refused() == []
        assert guard.latched is None
        assert guard.target_speed_kmh == speed_goal


async def test_pause_and_resume(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await guard.set_speed(1.9)
        await rig.tick(20, 1.9)
        await guard.pause("terminal")
        assert rig.link.writes[-1].name == "pause"
        assert rig.link.writes[-1].preempting
        assert (guard.paused, guard.pause_source) == (True, "terminal")
        await refused(rig, Rule.PAUSED, guard.set_speed(1.0))
        await refused(rig, Rule.START_AFTER_PAUSE, guard.start())
        rig.link.data(0.0)  # the belt stands: the resume starts it at once
        await guard.resume("terminal")
        # Resumed, then brought down to the first speed (the machine resumes at its old target).
        assert rig.link.names()[-2:] == ["start_or_resume", "set_target_speed"]
        assert rig.link.writes[-1].value == 1.6
        assert (guard.paused, guard.running) == (False, True)
        assert rig.states() == ["running", "paused", "running"]
        await refused(rig, Rule.NOT_PAUSED, guard.resume("terminal"))
        await refused(rig, Rule.RISE_INTERVAL, guard.set_speed(1.9))  # the resume counts as a rise


async def test_a_resume_waits_for_a_record_newer_than_the_pause_at_rest(rig: Rig) -> None:
    """Issue 16 v4: paused right after the Start, the last record (0 km/h) predates the Start, and the
    belt still coasts: the resume waits, and Start goes out only after a zero record newer than the Pause."""
    async with rig.guard() as guard:
        await guard.take_control()
        rig.link.data(0.0)  # at rest before the Start
        await guard.start()
        await guard.pause("mqtt")
        await guard.resume("mqtt")
        await rig.clock.advance(1.0)
        rig.link.data(0.47)  # still coasting after the Pause
        await settle()
        assert rig.link.names() == ["request_control", "start_or_resume", "pause"]
        assert guard.paused
        rig.link.data(0.0)
        await settle()
        assert rig.link.names() == ["request_control", "start_or_resume", "pause", "start_or_resume"]
        assert (guard.paused, guard.running) == (False, True)
        assert rig.refused() == []


async def resume_while_coasting(rig: Rig, guard: SafetyGuard) -> None:
    """Running at 1.6 km/h, paused by the person, who asks to resume at once: the resume waits."""
    await rig.running(guard, 1.6)
    await rig.tick(5, 1.6)
    await guard.pause("terminal")
    await guard.resume("terminal")
    assert rig.link.names()[-1] == "pause"


async def test_a_resume_the_belt_does_not_rest_for_stays_paused_and_says_so(rig: Rig) -> None:
    async with rig.guard() as guard:
        await resume_while_coasting(rig, guard)
        await rig.tick(RESUME_REST_WAIT_S + 1, 0.3)  # a belt that does not come to rest
        assert rig.refused() == [RefusedEvent("resume", None, Rule.BELT_MOVING.value)]
        assert guard.paused
        assert guard.latched is None
        rig.link.data(0.0)  # at rest at last: that alone starts nothing
        await settle()
        assert "start_or_resume" not in rig.link.names()[2:]
        await guard.resume("terminal")  # the person asks again
        assert rig.link.names()[-2:] == ["pause", "start_or_resume"]


async def test_a_waiting_resume_is_dropped_by_a_stop(rig: Rig) -> None:
    async with rig.guard() as guard:
        await resume_while_coasting(rig, guard)
        async with asyncio.TaskGroup() as group:
            stop = group.create_task(guard.stop("user"))
            await settle()
            rig.link.rest()
        assert stop.result()
        await settle()
        assert rig.link.names()[-2:] == ["pause", "stop"]


async def test_pause_before_the_start(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.pause("mqtt")
        assert rig.link.names() == ["request_control"]  # nothing to pause
        await refused(rig, Rule.START_AFTER_PAUSE, guard.start())
        await guard.resume("mqtt")
        assert rig.link.names() == ["request_control"]
        await guard.start()


async def test_failed_pause_stops_the_belt(rig: Rig) -> None:
    rig.link.answer(OpCode.STOP_OR_PAUSE, "timeout")
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await guard.pause("terminal")
        await settle()
        assert reason_of(guard) == "command_failed"
        assert rig.link.names()[-1] == "stop"


async def test_no_resume_after_a_latch(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await guard.pause("terminal")
        rig.link.data(0.0)
        await rig.stopped(guard.stop("user"))
        await refused(rig, Rule.NO_RESUME, guard.resume("terminal"))
        await refused(rig, Rule.NO_CONTROL_AFTER_LATCH, guard.take_control())
        await guard.pause("terminal")  # nothing to do after a latch, and no error


async def test_finish_closes_motion(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        before = len(rig.link.writes)
        assert await rig.stopped(guard.finish())
        await refused(rig, Rule.FINISHED, guard.set_speed(0.8))
        assert rig.safety() == []
        assert [w.name for w in rig.link.writes[before:]] == ["stop"]


def test_manual_clock_is_a_clock() -> None:
    assert ManualClock().now() == 0.0

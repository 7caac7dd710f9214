"""Stopping: confirmation by reported speed, the unconfirmed alarm, retries, release and the way out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from retro_ftms.clock import Clock
from retro_ftms.codec import MachineStatus, OpCode, ResultCode
from retro_ftms.events import EventBus, SafetyEvent, StateEvent, StopConfirmation
from retro_ftms.safety import UNCONFIRMED_DETAIL, EffectiveLimits, SafetyConfig, SafetyGuard
from retro_ftms.safety.guard import REVOKED_DETAIL, STOP_CONFIRM_RECORDS
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import REST_RECORDS, FakeLink, settle


@pytest.mark.parametrize("reason", ["user", "signal", "mqtt_stop", "error"])
async def test_person_stop_is_confirmed_by_zero_speed(rig: Rig, reason: str) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        written = len(rig.link.writes)
        assert await rig.stopped(guard.stop(reason, "asked"))  # type: ignore[arg-type]
        assert guard.latched == SafetyEvent(reason, "stop", "asked")  # type: ignore[arg-type]
        assert [w.name for w in rig.link.writes[written:]] == ["stop"]
        assert guard.stop_confirmed
        assert guard.alarm is None
        assert guard.reason == reason


async def test_stop_waits_for_the_belt_to_slow_down(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            for speed in (1.2, 0.6):
                await rig.tick(1, speed)
                assert not stopping.done()
            await rig.tick(REST_RECORDS, 0.0)
        assert stopping.result() is True


async def test_unconfirmed_stop_raises_the_alarm(rig: Rig) -> None:
    """`ignore-stop`: Stop is answered Success but the belt keeps running."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await rig.tick(14, 1.6)
            assert not stopping.done()
            await rig.tick(1, 1.6)
        assert stopping.result() is False
        alarm = SafetyEvent("stop_unconfirmed", "alarm", UNCONFIRMED_DETAIL)
        assert guard.alarm == alarm
        assert alarm in rig.events
        assert StateEvent("faulted") in rig.events
        assert reason_of(guard) == "user"
        assert guard.reason == "stop_unconfirmed"


async def test_unconfirmed_finish(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            finishing = group.create_task(guard.finish())
            await rig.tick(15, 1.6)
        assert finishing.result() is False
        assert reason_of(guard) == "stop_unconfirmed"
        assert guard.reason == "stop_unconfirmed"


async def test_finish_is_quiet(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        assert await rig.stopped(guard.finish())
        rig.link.status(MachineStatus.stopped_by_user())  # the machine's echo of our Stop
        await rig.clock.advance(60.0)
        assert guard.latched is None
        assert guard.reason is None
        assert rig.safety() == []


async def test_a_stop_without_an_answer_is_written_again(rig: Rig) -> None:
    rig.link.answer(OpCode.STOP_OR_PAUSE, "timeout", "att_busy")
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        written = len(rig.link.writes)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await rig.tick(3, 1.6)
            rig.link.rest()
        assert stopping.result() is True
        stops = rig.link.writes[written:]
        assert [w.name for w in stops] == ["stop", "stop", "stop"]
        assert [w.t for w in stops] == [0.0, 1.0, 2.0]


async def test_stop_before_the_belt_moved_is_confirmed_at_once(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        assert await guard.stop("user")
        assert rig.link.names() == ["request_control", "stop"]


async def test_stop_without_control_writes_nothing(rig: Rig) -> None:
    async with rig.guard() as guard:
        assert await guard.stop("signal")
        assert rig.link.writes == []


async def test_a_second_stop_request_writes_stop_again(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(MachineStatus.stopped_by_safety_key())
        await settle()
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await settle()
            rig.link.data(0.0)
        assert stopping.result() is True
        assert rig.link.names().count("stop") == 2
        assert reason_of(guard) == "safety_key"


async def test_release_resets_last(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        assert await rig.stopped(guard.finish())
        await guard.release()
        assert rig.link.names()[-2:] == ["stop", "reset"]
        rig.link.status(MachineStatus.reset())  # the echo of our Reset
        rig.link.status(MachineStatus.control_permission_lost())
        await settle()
        assert guard.latched is None


async def test_release_stops_an_unfinished_session_first(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            group.create_task(guard.release())
            await settle()
            rig.link.rest()
        assert rig.link.names()[-2:] == ["stop", "reset"]


async def test_release_is_best_effort(rig: Rig) -> None:
    rig.link.answer(OpCode.RESET, "timeout")
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.release()
        await guard.release()
        assert rig.link.names() == ["request_control", "stop", "reset"]


class Boom(Exception):
    pass


async def fail_inside(rig: Rig, guard: SafetyGuard, *, hang_stop: bool = False) -> None:
    """Run a session that raises while the belt runs."""
    async with guard:
        await rig.running(guard, 1.6)
        if hang_stop:
            rig.link.answer(OpCode.STOP_OR_PAUSE, "hang")
        raise Boom


async def test_leaving_on_an_exception_stops_the_belt(rig: Rig) -> None:
    guard = rig.guard()
    with pytest.raises(Boom):
        await fail_inside(rig, guard)
    assert rig.link.names()[-1] == "stop"
    assert reason_of(guard) == "error"
    assert rig.link.listeners == 0


async def test_leaving_on_cancellation_stops_the_belt(rig: Rig) -> None:
    started = asyncio.Event()

    async def session() -> None:
        async with rig.guard() as guard:
            await rig.running(guard, 1.6)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(session())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.link.names()[-1] == "stop"
    assert any(e.reason == "signal" for e in rig.safety())


async def test_leaving_normally_after_finish_writes_nothing_more(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        assert await rig.stopped(guard.finish())
        written = len(rig.link.writes)
    assert len(rig.link.writes) == written


async def test_leaving_before_control_writes_nothing(rig: Rig) -> None:
    with pytest.raises(Boom):
        async with rig.guard():
            raise Boom
    assert rig.link.writes == []


async def test_the_exit_stop_has_a_deadline(rig: Rig) -> None:
    with pytest.raises(Boom):
        await fail_inside(rig, rig.guard(exit_deadline_s=0.05), hang_stop=True)
    assert rig.link.names()[-1] == "stop"


async def test_not_reentrant(rig: Rig) -> None:
    guard = rig.guard()
    async with guard:
        with pytest.raises(RuntimeError):
            await guard.__aenter__()


async def test_sleep_wakes_at_once_on_a_latch(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            sleeping = group.create_task(guard.sleep(60.0))
            await rig.tick(5, 1.6)
            assert not sleeping.done()
            rig.link.status(MachineStatus.stopped_by_safety_key())
            await settle()
            assert sleeping.done()
        assert sleeping.result() is False
        assert await guard.sleep(1.0) is False  # no sleeping through a latch


async def test_sleep_runs_out_undisturbed(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            sleeping = group.create_task(guard.sleep(10.0))
            await rig.tick(10, 1.6)
        assert sleeping.result() is True


async def test_sleep_wakes_on_a_pause_and_wait_resumed(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            sleeping = group.create_task(guard.sleep(60.0))
            await settle()
            rig.link.status(MachineStatus.paused_by_user())
            await settle()
            assert sleeping.done()
            assert sleeping.result() is False
            resumed = group.create_task(guard.wait_resumed())
            rig.link.data(0.0)
            await rig.clock.advance(10.0)
            assert not resumed.done()
            await guard.resume("terminal")
        assert resumed.result() is True
        async with asyncio.TaskGroup() as group:
            quiet = group.create_task(guard.wait_changed(1.0))
            await rig.tick(1, 0.5)
        assert quiet.result() is False


async def test_with_the_real_clock(make_rig: Callable[..., Rig]) -> None:
    """The watchdog on a real scaled `Clock`: stale data after 3 simulated seconds, alarm after 15."""
    clock = Clock(scale=1000.0)
    bus = EventBus(clock)
    link = FakeLink(clock)
    config = SafetyConfig()
    events: list[object] = []
    bus.subscribe(lambda _t, event: events.append(event))
    async with SafetyGuard(link, EffectiveLimits.from_config(config), config, clock, bus) as guard:
        await guard.take_control()
        await guard.start()
        link.data(0.5)
        async with asyncio.timeout(5.0):
            reason = await guard.wait_latched()
            confirmed = await guard.wait_stopped()
        assert reason.reason == "stale_data"
        assert clock.now() >= 3.0
        assert not confirmed
        assert any(isinstance(e, SafetyEvent) and e.reason == "stop_unconfirmed" for e in events)


async def test_a_cancelled_waiter_leaves_the_guard_working(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        waiter = asyncio.get_running_loop().create_task(guard.wait_latched())
        await settle()
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        rig.link.data(5.0)
        await settle()
        assert reason_of(guard) == "overspeed"
        assert rig.link.names()[-1] == "stop"


async def test_stop_answered_error_is_written_again(rig: Rig) -> None:
    rig.link.answer(OpCode.STOP_OR_PAUSE, ResultCode.OPERATION_FAILED)  # `cp-error` on the Stop
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await rig.tick(1, 1.6)
            await rig.tick(REST_RECORDS, 0.0)
        assert stopping.result() is True
        assert rig.link.names()[-2:] == ["stop", "stop"]


async def test_leaving_survives_a_link_that_swallows_a_cancellation(rig: Rig) -> None:
    rig.link.answer(OpCode.STOP_OR_PAUSE, "swallow_cancel")
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(MachineStatus.stopped_by_safety_key())
        await settle()
        rig.link.data(0.0)
        await settle()
        assert rig.link.names()[-1] == "stop"  # still waiting for its answer
    assert reason_of(guard) == "safety_key"


# -- what confirms a stop, and what revokes it (issue 16 violation 3, issue 10 item 3) ----------------------


async def test_one_zero_record_does_not_confirm_a_stop(rig: Rig) -> None:
    """`zero-blip`: the machine ignores Stop, sends one 0 km/h record and runs on: the alarm sounds."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await settle()
            rig.link.data(0.0)
            await settle()
            assert not stopping.done()
            await rig.tick(15, 1.6)
        assert stopping.result() is False
        assert guard.stop_confirmed_by is None
        assert guard.alarm == SafetyEvent("stop_unconfirmed", "alarm", UNCONFIRMED_DETAIL)
        assert guard.reason == "stop_unconfirmed"


async def test_zero_records_in_a_row_confirm_a_stop(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await rig.tick(1, 0.8)
            await rig.tick(2, 0.0)
            rig.link.data(0.4)  # the count starts again
            await rig.tick(STOP_CONFIRM_RECORDS - 1, 0.0)
            assert not stopping.done()
            await rig.tick(1, 0.0)
        assert stopping.result() is True
        assert guard.stop_confirmed_by == StopConfirmation("zero_records", STOP_CONFIRM_RECORDS)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (MachineStatus.stopped_by_safety_key(), "stopped_by_safety_key"),
        (MachineStatus.stopped_by_user(), "stopped_by_user"),
        (MachineStatus.reset(), "reset"),
    ],
)
async def test_a_stopped_status_and_one_zero_record_confirm_a_stop(
    rig: Rig, status: MachineStatus, name: str
) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(status)
        await rig.tick(2, 0.8)  # slowing down
        assert not guard.stop_confirmed
        rig.link.data(0.0)
        assert await guard.wait_stopped()
        assert guard.stop_confirmed_by == StopConfirmation("status", 1, name)  # type: ignore[arg-type]


async def test_the_echo_of_our_own_stop_proves_nothing(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await settle()
            rig.link.status(MachineStatus.stopped_by_user())  # "your Stop arrived", not "the belt stands"
            await rig.tick(1, 0.0)
            assert not stopping.done()
            await rig.tick(STOP_CONFIRM_RECORDS - 1, 0.0)
        assert stopping.result() is True
        assert guard.stop_confirmed_by == StopConfirmation("zero_records", STOP_CONFIRM_RECORDS)


async def test_a_stopped_status_after_the_latch_still_counts(rig: Rig) -> None:
    """The guard stops watching triggers once latched; a stopped status still confirms the stop."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.data(5.0)  # overspeed: latched
        await settle()
        assert reason_of(guard) == "overspeed"
        rig.link.status(MachineStatus.stopped_by_safety_key())  # the person pulls the key
        rig.link.data(0.0)
        assert await guard.wait_stopped()
        assert guard.stop_confirmed_by == StopConfirmation("status", 1, "stopped_by_safety_key")
        assert reason_of(guard) == "overspeed"


async def test_a_single_zero_record_before_the_stop_is_no_standstill(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        rig.link.data(0.0)
        async with asyncio.TaskGroup() as group:
            stopping = group.create_task(guard.stop("user"))
            await settle()
            assert not stopping.done()
            rig.link.rest()
        assert stopping.result() is True


async def test_a_belt_standing_for_records_before_the_stop_is_confirmed_at_once(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(5, 1.6)
        await rig.tick(STOP_CONFIRM_RECORDS, 0.0)
        assert await guard.stop("user")
        assert guard.stop_confirmed_by == StopConfirmation("zero_records", STOP_CONFIRM_RECORDS)


async def test_a_moving_record_after_the_confirmation_revokes_it(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        assert await rig.stopped(guard.finish())
        assert guard.stop_confirmed_by is not None
        rig.link.data(1.1)  # the machine runs on
        await settle()
        assert not guard.stop_confirmed
        assert guard.stop_confirmed_by is None
        assert not await guard.wait_stopped()
        alarm = SafetyEvent("stop_unconfirmed", "alarm", REVOKED_DETAIL.format(speed=1.1))
        assert guard.alarm == alarm
        assert "safety key" in alarm.detail
        assert rig.safety() == [alarm]
        assert StateEvent("faulted") in rig.events
        assert guard.reason == "stop_unconfirmed"
        rig.link.data(1.1)  # one alarm is enough
        await settle()
        assert rig.safety() == [alarm]


async def test_a_revoked_stop_after_a_trigger_is_stop_unconfirmed(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        rig.link.status(MachineStatus.stopped_by_safety_key())
        rig.link.data(0.0)
        assert await guard.wait_stopped()
        rig.link.data(0.9)
        await settle()
        assert guard.alarm is not None
        assert guard.reason == "stop_unconfirmed"
        assert reason_of(guard) == "safety_key"


async def test_after_the_release_the_belt_is_the_person_s(rig: Rig) -> None:
    """Reset gives the console back: a belt started there afterwards revokes nothing."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        assert await rig.stopped(guard.finish())
        await guard.release()
        rig.link.data(1.1)
        await settle()
        assert guard.alarm is None
        assert guard.stop_confirmed_by == StopConfirmation("zero_records", REST_RECORDS)

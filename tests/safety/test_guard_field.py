"""Real machines' shapes at the guard (field-captures.md): Target Changed statuses that track the ramp
(UREVO E1L, issue 16 v7) are echoes of our own commands while a real console change is still caught both
ways; a record cut before its incline leaves the incline unknown; a BH Fitness decline's stop names it; a
belt still spinning up from our Start until our Pause is answered is no restart during the pause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from retro_ftms.ble.link import TreadmillDataReceived
from retro_ftms.ble.quirks import TreadmillQuirks
from retro_ftms.codec import MachineStatus, OpCode, TreadmillData
from retro_ftms.safety import SafetyConfig
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import settle

# What the E1L sends every 0.3 s while its belt ramps from standstill toward our 1.0 km/h.
RAMP_UP_KMH = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0)


async def ramp_echoes(rig: Rig, values: tuple[float, ...], period_s: float = 0.3) -> None:
    """The belt ramps through `values`: a record and a Target Speed Changed at each."""
    for kmh in values:
        await rig.clock.advance(period_s)
        rig.link.data(kmh)
        rig.link.status(MachineStatus.target_speed_changed(kmh))
    await settle()


async def test_echoes_along_the_ramp_toward_our_target_are_ours(rig: Rig) -> None:
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.start()
        await ramp_echoes(rig, (0.15, 0.3))  # the belt spinning up to the machine's own start speed
        await guard.set_speed(1.0)
        await ramp_echoes(rig, RAMP_UP_KMH)
        assert reason_of(guard) is None
        assert not guard.holding
        assert rig.safety() == []
        await rig.until(40, 1.0)
        await guard.set_speed(0.8)  # a ramp down: 0.9, 0.8
        await ramp_echoes(rig, (0.9, 0.8))
        await guard.pause("terminal")  # the ramp down to the pause
        await ramp_echoes(rig, (0.6, 0.3, 0.0))
        assert reason_of(guard) is None
        assert not guard.holding
        assert rig.safety() == []


async def test_a_long_ramp_stays_ours_while_its_echoes_come(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await guard.set_speed(0.5)
        slow = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)
        await ramp_echoes(rig, slow, period_s=2.0)  # 16 s: longer than the window
        assert not guard.holding
        assert rig.safety() == []


async def test_a_console_raise_during_the_ramp_is_caught(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard)
        await guard.set_speed(1.0)
        await ramp_echoes(rig, RAMP_UP_KMH[:3])
        rig.link.status(MachineStatus.target_speed_changed(1.3))
        await settle()
        assert reason_of(guard) == "console_override"
        assert guard.latched is not None
        assert "raised the target speed to 1.3" in guard.latched.detail


async def test_a_console_lowering_below_the_ramp_holds_and_its_own_ramp_is_no_raise(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await rig.until(20, 1.0)
        await guard.set_speed(1.3)
        await ramp_echoes(rig, (1.15, 1.3))
        rig.link.status(MachineStatus.target_speed_changed(0.6))  # below where the ramp runs: the console
        await ramp_echoes(rig, (1.1, 0.9, 0.7, 0.6))  # the belt ramping down to the console's target
        assert reason_of(guard) is None
        assert guard.holding
        assert guard.target_speed_kmh == 0.6
        assert [e.action for e in rig.safety()] == ["hold"]


async def test_a_record_cut_before_its_incline_makes_the_incline_unknown(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        rig.link.data(1.0, 2.0)
        await settle()
        assert guard.reported_incline_pct == 2.0
        cut = TreadmillData(speed_kmh=1.0, cut_fields=("incline_pct", "ramp_angle_deg", "elapsed_time_s"))
        rig.link.emit(TreadmillDataReceived(cut))
        await settle()
        assert guard.reported_incline_pct is None
        rig.link.data(1.0)  # a record without the incline flag at all says nothing new about it
        await settle()
        assert guard.reported_incline_pct is None
        assert reason_of(guard) is None


@pytest.mark.parametrize(("raw", "shown"), [(450, -1), (380, -2), (320, -3)])
async def test_a_bh_decline_stops_and_the_stop_names_the_quirk(
    make_rig: Callable[..., Rig], raw: int, shown: int
) -> None:
    """BH Fitness T01 sends -1/-2/-3 % as raw 450/380/320: with `incline_report_scale = 0.16` they read as
    +7.2/+6.1/+5.1 %, real inclines as well; the cap (3 % here) stops the belt and says what it may be."""
    rig = make_rig(SafetyConfig(max_incline_pct=3.0))
    rig.link.quirks = TreadmillQuirks(incline_report_scale=0.16)
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        rig.link.data(1.0, round(raw / 10 * 0.16, 2))
        await settle()
        assert reason_of(guard) == "overincline"
        assert guard.latched is not None
        detail = guard.latched.detail
        assert f"about {shown} %" in detail
        assert "BH Fitness" in detail
        assert "incline_report_scale" in detail


async def test_a_belt_running_away_does_not_widen_the_echoes(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await rig.until(20, 1.0)
        await guard.set_speed(1.2)
        rig.link.data(3.0)  # the belt runs away (the speed check would see it after settling)
        rig.link.status(MachineStatus.target_speed_changed(2.8))  # and the console says so at once
        await settle()
        assert reason_of(guard) == "console_override"


async def test_a_console_lowering_during_a_pause_still_holds(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.0)
        await rig.until(20, 1.0)
        await guard.pause("terminal")
        await ramp_echoes(rig, (0.7, 0.4, 0.1, 0.0))  # the ramp down to the pause: ours
        assert not guard.holding
        await rig.until(30, 0.0)
        rig.link.status(MachineStatus.target_speed_changed(0.6))  # the person lowers it on the console
        await settle()
        assert guard.holding
        assert guard.target_speed_kmh == 0.6
        assert reason_of(guard) is None


async def test_the_spin_up_before_our_pause_is_answered_is_no_restart(rig: Rig) -> None:
    """A pause the moment the belt runs: until the machine answers our Pause, its records still show the
    Start's spin-up (a zero, then rising). That is not the belt moving again during the pause, and the
    zero from before the answer is no rest a resume may start from."""
    async with rig.guard() as guard:
        await guard.take_control()
        await guard.start()
        await guard.set_speed(0.8)
        rig.link.answer(OpCode.STOP_OR_PAUSE, "hang")  # the Pause is on its way
        async with asyncio.TaskGroup() as group:
            group.create_task(guard.pause("terminal"))
            await settle()
            await ramp_echoes(rig, (0.0, 0.3, 0.72))  # the machine has not had the Pause yet
            assert reason_of(guard) is None
            await guard.resume("terminal")  # waits: no record newer than the pause yet
            assert starts(rig) == 1
            rig.link.release_hang()
        await ramp_echoes(rig, (0.5, 0.2))  # the ramp down to the pause
        assert reason_of(guard) is None
        assert guard.paused
        await ramp_echoes(rig, (0.0,))  # at rest since the pause: the waiting resume starts the belt
        assert reason_of(guard) is None
        assert not guard.paused
        assert starts(rig) == 2


def starts(rig: Rig) -> int:
    return [w.op for w in rig.link.writes].count(OpCode.START_OR_RESUME)

"""The guard on quirky machines: trigger details that name the `[ble]` setting, and a belt that spins up."""

from __future__ import annotations

from retro_ftms.ble.ftms_client import TreadmillQuirks
from retro_ftms.safety import SafetyGuard
from retro_ftms.safety.guard import SPIN_UP_MARGIN_S
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import settle

MPH_HINT = 'set [ble] speed_target_units = "mph"'
KMH_HINT = 'set [ble] speed_target_units = "kmh"'
BH_HINT = "set [ble] incline_report_scale = 0.16"


def detail_of(guard: SafetyGuard) -> str:
    assert guard.latched is not None
    return guard.latched.detail


async def test_a_speed_mismatch_of_an_mph_machine_names_the_setting(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(11, 2.57)  # 1.6 "mph"
        assert reason_of(guard) == "speed_mismatch"
        assert MPH_HINT in detail_of(guard)


async def test_a_machine_configured_mph_that_takes_kmh_is_told_the_other_way(rig: Rig) -> None:
    rig.link.quirks = TreadmillQuirks(speed_target_units="mph")
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(11, 0.99)
        assert reason_of(guard) == "speed_mismatch"
        assert KMH_HINT in detail_of(guard)


async def test_a_mismatch_no_unit_explains_has_no_hint(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(12, 1.0)
        assert reason_of(guard) == "speed_mismatch"
        assert "[ble]" not in detail_of(guard)


async def test_an_overspeed_of_an_mph_machine_names_the_setting(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        for speed in (1.9, 2.2, 2.5):
            await guard.set_speed(speed)
            await rig.tick(20, speed)
        await guard.set_speed(2.8)
        rig.link.data(2.8 * 1.609344)  # above the cap 4.0 + 0.2
        await settle()
        assert reason_of(guard) == "overspeed"
        assert MPH_HINT in detail_of(guard)


async def test_an_overincline_on_the_0_1000_scale_names_the_setting(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.until(31, 1.6, 0.0)
        await guard.set_incline(1.0)
        rig.link.data(1.6, 6.25)
        await settle()
        assert reason_of(guard) == "overincline"
        assert BH_HINT in detail_of(guard)


async def test_an_incline_above_its_target_may_be_the_0_1000_scale(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.until(31, 1.6, 0.0)
        await guard.set_incline(1.0)
        await rig.tick(2, 1.6, 3.0)  # the incline motor on its way to 6.25 "%"
        assert reason_of(guard) == "console_override"
        assert BH_HINT in detail_of(guard)


async def test_a_belt_that_does_not_spin_up_is_a_mismatch(rig: Rig) -> None:
    rig.link.quirks = TreadmillQuirks(spin_up_s=3.0)
    async with rig.guard() as guard:
        await guard.take_control()
        rig.link.spun_up = False  # from the Start on, as the client reports it
        await guard.start()
        assert not guard.spun_up
        await rig.tick(3.0 + SPIN_UP_MARGIN_S - 1, 0.0)
        assert guard.latched is None
        await rig.tick(1, 0.0)
        assert reason_of(guard) == "speed_mismatch"
        assert detail_of(guard).startswith("the belt did not start")


async def test_a_belt_that_spins_up_in_time_is_fine(rig: Rig) -> None:
    rig.link.quirks = TreadmillQuirks(spin_up_s=3.0)
    async with rig.guard() as guard:
        await guard.take_control()
        rig.link.spun_up = False
        await guard.start()
        await rig.tick(4, 0.5)
        rig.link.spun_up = True
        await rig.tick(20, 0.5)
        assert guard.latched is None
        assert guard.spun_up
        await guard.set_speed(1.0)


async def test_the_lowering_after_a_resume_waits_for_the_spin_up(rig: Rig) -> None:
    rig.link.quirks = TreadmillQuirks(spin_up_s=3.0)
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await guard.set_speed(1.9)
        await rig.tick(20, 1.9)
        await guard.pause("terminal")
        rig.link.data(0.0)
        rig.link.spun_up = False
        await guard.resume("terminal")
        await rig.tick(3, 1.9)  # the machine resumes at its old target
        assert rig.link.names()[-1] == "start_or_resume"  # no speed command while spinning up
        rig.link.spun_up = True
        await rig.tick(1, 1.9)
        assert rig.link.names()[-1] == "set_target_speed"
        assert rig.link.writes[-1].value == 1.6
        assert guard.latched is None


async def test_a_pause_while_spinning_up_ends_the_wait(rig: Rig) -> None:
    rig.link.quirks = TreadmillQuirks(spin_up_s=3.0)
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6)
        await guard.set_speed(1.9)
        await rig.tick(20, 1.9)
        await guard.pause("terminal")
        rig.link.data(0.0)
        rig.link.spun_up = False
        await guard.resume("terminal")
        await guard.pause("terminal")
        rig.link.spun_up = True
        await rig.tick(20, 0.0)
        assert rig.link.names()[-2:] == ["start_or_resume", "pause"]  # nothing lowered while paused
        assert guard.latched is None

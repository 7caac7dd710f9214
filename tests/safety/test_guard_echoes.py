"""Target Changed statuses that track the ramp (UREVO E1L, issue 16 v7) are echoes of our own commands; a
real console change is still caught both ways. A record cut before its incline leaves the incline unknown."""

from __future__ import annotations

from retro_ftms.ble.link import TreadmillDataReceived
from retro_ftms.codec import MachineStatus, TreadmillData
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

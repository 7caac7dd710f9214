"""Issue 16 violations 1 and 2 at the guard: an incline rising with no command, and a belt moving again
during a pause (the session tests through the simulator are in tests/session/test_blind_spots.py)."""

from __future__ import annotations

import pytest

from retro_ftms.codec import MachineStatus
from retro_ftms.safety import SafetyGuard
from retro_ftms.safety.rules import CommandRefused, Rule
from tests.safety.conftest import Rig, reason_of
from tests.safety.fakes import settle

# -- incline rising by itself (violation 1) ------------------------------------------------------------------


async def test_incline_rising_in_a_flat_program_is_a_console_raise(rig: Rig) -> None:
    """No incline command at all: above 0 % + tolerance (0.5) for two records is `console_override`."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6, 0.0)
        await rig.tick(1, 1.6, 0.4)  # within the tolerance
        await rig.tick(1, 1.6, 0.6)  # one record above: may be noise
        assert guard.latched is None
        written = len(rig.link.writes)
        await rig.tick(1, 1.6, 1.0)
        assert reason_of(guard) == "console_override"
        assert guard.latched is not None
        assert "no incline command" in guard.latched.detail
        assert rig.link.names()[written:] == ["stop"]


async def test_incline_rising_past_the_cap_is_overincline_whatever_the_tolerance(rig: Rig) -> None:
    """5.2 and 5.4 % are within the cap's tolerance (5 + 0.5) but rose by themselves: `overincline`."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6, 0.0)
        await rig.tick(1, 1.6, 5.2)
        assert guard.latched is None
        await rig.tick(1, 1.6, 5.4)
        assert reason_of(guard) == "overincline"


async def test_a_reported_incline_rise_starts_the_separation_clock(rig: Rig) -> None:
    """An incline rise of the machine's own (here within the tolerance, so no trigger) keeps speed from
    rising for the separation time, as a commanded one does."""
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.tick(20, 1.6, 0.0)
        await rig.tick(1, 1.6, 0.4)
        rose_at = rig.clock.now()
        await rig.tick(10, 1.6, 0.4)
        assert guard.latched is None
        assert guard.speed_step(1.92).not_before_s == pytest.approx(rose_at + rig.limits.rise_separation_s)
        with pytest.raises(CommandRefused) as caught:
            await guard.set_speed(1.92)
        assert caught.value.rule is Rule.RISE_SEPARATION


async def test_a_commanded_incline_climbing_to_its_target_is_no_rise_of_its_own(rig: Rig) -> None:
    async with rig.guard() as guard:
        await rig.running(guard, 1.6)
        await rig.until(31, 1.6, 0.0)
        await guard.set_incline(1.0)
        commanded_at = rig.clock.now()
        for incline in (0.5, 1.0, 1.0, 1.0):
            await rig.tick(1, 1.6, incline)
        assert guard.latched is None
        assert guard.speed_step(1.92).not_before_s == pytest.approx(
            commanded_at + rig.limits.rise_separation_s
        )


# -- the belt moving again during a pause (violation 2) -----------------------------------------------------


async def paused_at_speed(rig: Rig, guard: SafetyGuard, source: str) -> None:
    """Running at 1.6 km/h for 20 s, then paused by `source` (the console, or the person through us)."""
    await rig.running(guard, 1.6)
    await rig.tick(20, 1.6)
    if source == "console":
        rig.link.status(MachineStatus.paused_by_user())
        await settle()
    else:
        await guard.pause(source)
    assert guard.paused


@pytest.mark.parametrize("source", ["console", "terminal"])
async def test_the_belt_starting_again_during_a_pause_is_stopped(rig: Rig, source: str) -> None:
    async with rig.guard() as guard:
        await paused_at_speed(rig, guard, source)
        for speed in (1.1, 0.1, 0.0, 0.0, 0.0):  # the pause's ramp-down, then standing
            await rig.tick(1, speed)
        await rig.tick(1, 0.5)  # one record: may be a glitch
        assert guard.latched is None
        written = len(rig.link.writes)
        await rig.tick(1, 1.0)
        assert reason_of(guard) == "console_override"
        assert guard.latched is not None
        assert "moved again during the pause" in guard.latched.detail
        assert rig.link.names()[written:] == ["stop"]
        assert rig.states()[-1] == "stopped"  # no longer "paused" for MQTT and the display


async def test_a_belt_rising_again_before_it_stood_is_stopped(rig: Rig) -> None:
    async with rig.guard() as guard:
        await paused_at_speed(rig, guard, "mqtt")
        for speed in (1.1, 0.6, 1.1):
            await rig.tick(1, speed)
        assert guard.latched is None
        await rig.tick(1, 1.6)
        assert reason_of(guard) == "console_override"


@pytest.mark.parametrize("interval_s", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("decel_kmh_per_s", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("zero_first", [False, True], ids=["plain", "zero-record-first"])
async def test_the_pause_ramp_down_never_trips(
    rig: Rig, interval_s: float, decel_kmh_per_s: float, zero_first: bool
) -> None:
    """Pause at 1.6 km/h: the belt slows down over seconds (after a machine's all-zero record, perhaps)."""
    async with rig.guard() as guard:
        await paused_at_speed(rig, guard, "terminal")
        if zero_first:
            rig.link.data(0.0)  # a machine going to sleep (the zero-wakeup quirk, unfiltered)
        speed = 1.6
        for _ in range(40):
            await rig.clock.advance(interval_s)
            speed = max(0.0, speed - decel_kmh_per_s * interval_s)
            rig.link.data(round(speed, 2))
        await settle()
        assert guard.latched is None
        assert guard.paused

"""Issue 9 item 4: a belt faster than its target is stopped within 3 s of its first fast record.

A property over random targets, ramps and overspeed values: the guard (fake link, manual clock) watches a
simulated belt that follows the commanded targets at random acceleration and deceleration rates, with
records at a random interval; then the belt runs away toward a random speed above the band. A belt that
follows its target (rising to it, or coming down to it) never trips; once it runs above target +
tolerance, Stop goes out within 3 s of session time of the first such record.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retro_ftms.events import EventBus
from retro_ftms.safety import EffectiveLimits, SafetyConfig, SafetyGuard
from tests.safety.conftest import INCLINE_RANGE_PCT, SPEED_RANGE_KMH
from tests.safety.fakes import FakeLink, ManualClock, settle

# Issue 9: from the first record above target + tolerance to the Stop command, at most this long.
REACTION_MAX_S: Final = 3.0
MACHINE_MIN_KMH: Final = 0.5  # the speed a machine starts at before it has a target
RUN_AWAY_WATCH_S: Final = 8.0
SCENARIO_TIMEOUT_S: Final = 60.0  # wall seconds: a hung scenario fails instead of hanging hypothesis


@dataclass
class Belt:
    """A belt motor that drives toward its goal at finite rates (as the simulator's model does)."""

    accel_kmh_per_s: float
    decel_kmh_per_s: float
    speed_kmh: float = 0.0
    goal_kmh: float = 0.0

    def run(self, dt_s: float) -> float:
        """Move `dt_s` seconds on; the record of the new speed (wire resolution 0.01 km/h)."""
        if self.goal_kmh >= self.speed_kmh:
            self.speed_kmh = min(self.goal_kmh, self.speed_kmh + self.accel_kmh_per_s * dt_s)
        else:
            self.speed_kmh = max(self.goal_kmh, self.speed_kmh - self.decel_kmh_per_s * dt_s)
        return round(self.speed_kmh, 2)


@dataclass
class Outcome:
    latched_while_following: str | None
    reason: str | None
    first_fast_s: float | None
    stop_s: float | None


async def _scenario(
    config: SafetyConfig, belt: Belt, interval_s: float, goals: list[float], excess_kmh: float
) -> Outcome:
    clock = ManualClock()
    link = FakeLink(clock)
    limits = EffectiveLimits.from_config(
        config, speed_range_kmh=SPEED_RANGE_KMH, incline_range_pct=INCLINE_RANGE_PCT
    )

    async def run_for(seconds: float) -> None:
        end = clock.now() + seconds
        while clock.now() + interval_s <= end:
            await clock.advance(interval_s)
            link.data(belt.run(interval_s))
        rest = end - clock.now()
        await clock.advance(max(0.0, rest))
        belt.run(max(0.0, rest))

    async with SafetyGuard(link, limits, config, clock, EventBus(clock)) as guard:
        await guard.take_control()
        await guard.start()
        belt.goal_kmh = MACHINE_MIN_KMH
        await run_for(2.0)
        for goal in goals:
            step = guard.speed_step(goal)
            if math.isinf(step.not_before_s) and step.not_before_s > 0:
                continue  # no allowed rise reaches the next wire value
            await run_for(max(0.0, step.not_before_s - clock.now()))
            if guard.latched is not None:
                break
            await guard.set_speed(step.value)
            belt.goal_kmh = guard.target_speed_kmh
            await run_for(3.0)
        await run_for(config.settle_time_s + 1.0)  # settled at the last target
        following = guard.latched.reason if guard.latched is not None else None
        if following is not None:
            return Outcome(following, following, None, None)

        threshold = guard.target_speed_kmh + config.speed_mismatch_kmh
        belt.goal_kmh = threshold + excess_kmh  # the motor controller runs away
        first_fast_s: float | None = None
        end = clock.now() + RUN_AWAY_WATCH_S
        while clock.now() < end and guard.latched is None:
            await clock.advance(interval_s)
            record = belt.run(interval_s)
            if first_fast_s is None and record > threshold:
                first_fast_s = clock.now()
            link.data(record)
            await settle()
        await settle()
        stops = [w.t for w in link.writes if w.name == "stop"]
        reason = guard.latched.reason if guard.latched is not None else None
        return Outcome(None, reason, first_fast_s, stops[0] if stops else None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tolerance=st.floats(0.1, 0.5),
    belt=st.builds(Belt, st.floats(0.3, 3.0), st.floats(0.6, 3.0)),
    interval_s=st.floats(0.25, 1.0),
    goals=st.lists(st.floats(0.5, 4.0), min_size=1, max_size=4),
    excess_kmh=st.floats(0.02, 4.0),
)
def test_a_belt_above_its_band_stops_within_3_s_and_a_following_belt_never(
    tolerance: float, belt: Belt, interval_s: float, goals: list[float], excess_kmh: float
) -> None:
    """`belt` draws the acceleration (0.3-3 km/h/s) and deceleration (0.6-3 km/h/s, so a belt comes down
    from 4 km/h within the default settling time)."""
    config = SafetyConfig(speed_mismatch_kmh=tolerance)
    scenario = _scenario(config, belt, interval_s, goals, excess_kmh)
    outcome = asyncio.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT_S))
    assert outcome.latched_while_following is None, outcome
    assert outcome.reason in ("speed_mismatch", "overspeed"), outcome
    assert outcome.first_fast_s is not None, outcome
    assert outcome.stop_s is not None, outcome
    assert outcome.stop_s - outcome.first_fast_s <= REACTION_MAX_S + 1e-9, outcome

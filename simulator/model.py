"""The simulated treadmill's physics: a belt motor and an incline motor with finite rates.

Nothing here polls. The model keeps an anchor (the values at the moment something last changed) and
computes speed, incline, distance, climb and elapsed time analytically from `clock.now()`, so a clock
scaled 1000x gives the same numbers as real time. Speed and incline are piecewise linear in time;
between their breakpoints every integral is a polynomial of degree two at most, which Simpson's rule
integrates exactly.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Final

from retro_ftms.clock import Clock
from simulator.quirk_fields import Quirks

KMH_PER_MPS: Final = 3.6
BODY_MASS_KG: Final = 75.0  # for the energy estimate; FTMS reports energy, not the person's mass
# ACSM walking equation: VO2 [ml/kg/min] = 3.5 + 0.1 * horizontal m/min + 1.8 * vertical m/min;
# 1 l of O2 is about 5 kcal.
REST_VO2_ML_KG_MIN: Final = 3.5
HORIZONTAL_VO2_ML_KG_PER_M: Final = 0.1
VERTICAL_VO2_ML_KG_PER_M: Final = 1.8
KCAL_PER_L_O2: Final = 5.0
_EPSILON: Final = 1e-9


class BeltState(enum.StrEnum):
    """What the console shows: the belt is told to run, is paused, or is stopped."""

    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateModel:
    """A simple heart rate that follows the effort, for a simulated chest strap."""

    rest_bpm: float = 70.0
    bpm_per_kmh: float = 8.0
    bpm_per_pct: float = 1.5

    def at(self, speed_kmh: float, incline_pct: float) -> int:
        return round(self.rest_bpm + self.bpm_per_kmh * speed_kmh + self.bpm_per_pct * max(0.0, incline_pct))


@dataclass(frozen=True, slots=True, kw_only=True)
class Fields:
    """Which optional Treadmill Data fields the machine reports (and so which features it claims)."""

    average_speed: bool = False
    total_distance: bool = True
    inclination: bool = True
    elevation_gain: bool = False
    expended_energy: bool = False
    metabolic_equivalent: bool = False
    elapsed_time: bool = True

    @classmethod
    def all(cls) -> Fields:
        """Every field the model computes: a 26-byte record (with heart rate), more than one
        default-MTU notification holds."""
        return cls(
            average_speed=True,
            total_distance=True,
            inclination=True,
            elevation_gain=True,
            expended_energy=True,
            metabolic_equivalent=True,
            elapsed_time=True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorSettings:
    """Everything that makes one simulated treadmill differ from another."""

    name: str = "RetroSim Treadmill"
    speed_min_kmh: float = 0.5
    speed_max_kmh: float = 16.0
    speed_step_kmh: float = 0.1
    incline_min_pct: float = 0.0
    incline_max_pct: float = 15.0
    incline_step_pct: float = 0.5
    fields: Fields = field(default_factory=Fields)
    heart_rate: HeartRateModel | None = None
    notify_interval_s: float = 1.0
    belt_accel_kmh_per_s: float = 0.5
    belt_decel_kmh_per_s: float = 1.0
    incline_rate_pct_per_s: float = 0.5
    max_att_mtu: int = 247  # what the server accepts in an MTU exchange; 23 keeps the default payload
    advertising_interval_ms: float = 1.0  # fast connects on an in-process link (ftms.md §8)
    quirks: Quirks = field(default_factory=Quirks)  # how this machine departs from FTMS (`--quirk`)

    def __post_init__(self) -> None:
        if not 0 <= self.speed_min_kmh < self.speed_max_kmh or self.speed_step_kmh <= 0:
            raise ValueError(
                f"bad speed range {self.speed_min_kmh}-{self.speed_max_kmh}/{self.speed_step_kmh}"
            )
        if not self.incline_min_pct < self.incline_max_pct or self.incline_step_pct <= 0:
            raise ValueError(
                f"bad incline range {self.incline_min_pct}-{self.incline_max_pct}/{self.incline_step_pct}"
            )
        rates = (self.belt_accel_kmh_per_s, self.belt_decel_kmh_per_s, self.incline_rate_pct_per_s)
        if min(rates) <= 0 or self.notify_interval_s <= 0:
            raise ValueError("rates and the notify interval must be positive")
        if not 23 <= self.max_att_mtu <= 517:
            raise ValueError(f"ATT MTU must be in 23..517, not {self.max_att_mtu}")

    def speed_in_range(self, kmh: float) -> bool:
        return self.speed_min_kmh - _EPSILON <= kmh <= self.speed_max_kmh + _EPSILON

    def incline_in_range(self, pct: float) -> bool:
        return self.incline_min_pct - _EPSILON <= pct <= self.incline_max_pct + _EPSILON


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSnapshot:
    """The model's values at one instant of simulated time."""

    t_s: float
    state: BeltState
    speed_kmh: float
    incline_pct: float
    target_speed_kmh: float
    target_incline_pct: float
    distance_m: float
    positive_elevation_m: float
    negative_elevation_m: float
    elapsed_s: float
    heart_rate_bpm: int | None

    @property
    def average_speed_kmh(self) -> float:
        return self.distance_m / self.elapsed_s * KMH_PER_MPS if self.elapsed_s > 0 else 0.0

    @property
    def total_energy_kcal(self) -> float:
        vo2_ml_kg = (
            REST_VO2_ML_KG_MIN * self.elapsed_s / 60.0
            + HORIZONTAL_VO2_ML_KG_PER_M * self.distance_m
            + VERTICAL_VO2_ML_KG_PER_M * self.positive_elevation_m
        )
        return vo2_ml_kg * BODY_MASS_KG / 1000.0 * KCAL_PER_L_O2

    @property
    def vo2_ml_kg_min(self) -> float:
        """Oxygen uptake now; resting when the belt is still."""
        m_per_min = self.speed_kmh * 1000.0 / 60.0
        return (
            REST_VO2_ML_KG_MIN
            + HORIZONTAL_VO2_ML_KG_PER_M * m_per_min
            + VERTICAL_VO2_ML_KG_PER_M * m_per_min * max(0.0, self.incline_pct) / 100.0
        )

    @property
    def energy_per_minute_kcal(self) -> float:
        return self.vo2_ml_kg_min * BODY_MASS_KG / 1000.0 * KCAL_PER_L_O2

    @property
    def metabolic_equivalent(self) -> float:
        return self.vo2_ml_kg_min / REST_VO2_ML_KG_MIN


def _approach(start: float, goal: float, up_rate: float, down_rate: float, dt: float) -> float:
    if goal >= start:
        return min(goal, start + up_rate * dt)
    return max(goal, start - down_rate * dt)


def _reach_time(start: float, goal: float, up_rate: float, down_rate: float) -> float:
    """Seconds until a ramp from `start` reaches `goal`."""
    if goal >= start:
        return (goal - start) / up_rate
    return (start - goal) / down_rate


class TreadmillModel:
    """Belt and incline motors on the shared clock; every reading is computed from `clock.now()`.

    The belt runs toward its goal (the target speed while running, zero otherwise) at the accelerate /
    decelerate rates; the incline motor runs toward the target incline whatever the belt does. Elapsed
    time ticks only while running; distance and climb follow the belt, including while it slows down.
    """

    def __init__(self, clock: Clock, settings: SimulatorSettings) -> None:
        self.clock = clock
        self.settings = settings
        self._state = BeltState.STOPPED
        self._target_speed_kmh = 0.0
        self._target_incline_pct = 0.0
        self._forced_speed_kmh: float | None = None
        self._run_away_kmh: float | None = None
        self._t0 = clock.now()
        self._speed0 = 0.0
        self._incline0 = 0.0
        self._distance0 = 0.0
        self._pos_climb0 = 0.0
        self._neg_climb0 = 0.0
        self._elapsed0 = 0.0

    # -- readings ---------------------------------------------------------------------------------------

    @property
    def state(self) -> BeltState:
        return self._state

    @property
    def target_speed_kmh(self) -> float:
        return self._target_speed_kmh

    @property
    def target_incline_pct(self) -> float:
        return self._target_incline_pct

    @property
    def forced_speed_kmh(self) -> float | None:
        """The speed an `overspeed` fault makes the belt run at while running, if any."""
        return self._forced_speed_kmh

    @property
    def speed_kmh(self) -> float:
        return self.snapshot().speed_kmh

    @property
    def incline_pct(self) -> float:
        return self.snapshot().incline_pct

    @property
    def distance_m(self) -> float:
        return self.snapshot().distance_m

    @property
    def elapsed_s(self) -> float:
        return self.snapshot().elapsed_s

    @property
    def run_away_kmh(self) -> float | None:
        """The speed a `run-away` fault makes the belt run at while paused, if any."""
        return self._run_away_kmh

    def belt_goal_kmh(self) -> float:
        """The speed the belt motor is driving toward now."""
        if self._state is BeltState.PAUSED and self._run_away_kmh is not None:
            return self._run_away_kmh
        if self._state is not BeltState.RUNNING:
            return 0.0
        if self._forced_speed_kmh is not None:
            return self._forced_speed_kmh
        return self._target_speed_kmh

    def snapshot(self, t: float | None = None) -> ModelSnapshot:
        """Every reading at simulated time `t` (default now); `t` must not precede the last change."""
        t = self.clock.now() if t is None else t
        dt = max(0.0, t - self._t0)
        speed, incline, distance, pos_climb, neg_climb = self._integrate(dt)
        elapsed = self._elapsed0 + (dt if self._state is BeltState.RUNNING else 0.0)
        hr = self.settings.heart_rate.at(speed, incline) if self.settings.heart_rate is not None else None
        return ModelSnapshot(
            t_s=t,
            state=self._state,
            speed_kmh=speed,
            incline_pct=incline,
            target_speed_kmh=self._target_speed_kmh,
            target_incline_pct=self._target_incline_pct,
            distance_m=distance,
            positive_elevation_m=pos_climb,
            negative_elevation_m=neg_climb,
            elapsed_s=elapsed,
            heart_rate_bpm=hr,
        )

    def belt_settles_at(self) -> float:
        """Simulated time at which the belt reaches its current goal (now if it already has)."""
        now = self.clock.now()
        speed = self.snapshot(now).speed_kmh
        goal = self.belt_goal_kmh()
        s = self.settings
        return now + _reach_time(speed, goal, s.belt_accel_kmh_per_s, s.belt_decel_kmh_per_s)

    def belt_moving(self) -> bool:
        return self.speed_kmh > _EPSILON

    # -- commands (each re-anchors the model at now) ------------------------------------------------------

    def start(self) -> None:
        """Run (or resume) toward the target speed, or the slowest supported speed when none is set."""
        self._rebase()
        if self._target_speed_kmh <= 0:
            self._target_speed_kmh = self.settings.speed_min_kmh
        self._state = BeltState.RUNNING

    def run_at(self, kmh: float) -> None:
        """The belt has been running at `kmh` for a while: someone started it at the console before any
        client connected (the `preroll` fault). No ramp: it is at speed now."""
        self._rebase()
        self._target_speed_kmh = kmh
        self._speed0 = kmh
        self._state = BeltState.RUNNING

    def stop(self) -> None:
        self._rebase()
        self._state = BeltState.STOPPED

    def pause(self) -> None:
        self._rebase()
        self._state = BeltState.PAUSED

    def set_target_speed(self, kmh: float) -> None:
        """Store the target; the belt follows it only while running."""
        self._rebase()
        self._target_speed_kmh = kmh

    def set_target_incline(self, pct: float) -> None:
        self._rebase()
        self._target_incline_pct = pct

    def force_speed(self, kmh: float | None) -> None:
        """Make the belt run at `kmh` whatever its target (a faulty motor controller); None to heal."""
        self._rebase()
        self._forced_speed_kmh = kmh

    def run_away(self, kmh: float | None) -> None:
        """Make a paused belt run at `kmh` (a pause the motor controller does not hold); None to heal.

        Stop still stops it: only the pause is broken."""
        self._rebase()
        self._run_away_kmh = kmh

    def reset(self) -> None:
        """Targets back to zero, belt stops, counters zeroed (the belt and incline still coast down)."""
        self._rebase()
        self._state = BeltState.STOPPED
        self._target_speed_kmh = 0.0
        self._target_incline_pct = 0.0
        self._distance0 = 0.0
        self._pos_climb0 = 0.0
        self._neg_climb0 = 0.0
        self._elapsed0 = 0.0

    # -- internals -------------------------------------------------------------------------------------

    def _rebase(self) -> None:
        now = self.clock.now()
        snap = self.snapshot(now)
        self._t0 = now
        self._speed0 = snap.speed_kmh
        self._incline0 = snap.incline_pct
        self._distance0 = snap.distance_m
        self._pos_climb0 = snap.positive_elevation_m
        self._neg_climb0 = snap.negative_elevation_m
        self._elapsed0 = snap.elapsed_s

    def _integrate(self, dt: float) -> tuple[float, float, float, float, float]:
        """Speed, incline, distance, positive and negative climb `dt` seconds after the anchor."""
        s = self.settings
        v_goal = self.belt_goal_kmh()
        g_goal = self._target_incline_pct
        v_rate = (s.belt_accel_kmh_per_s, s.belt_decel_kmh_per_s)
        g_rate = (s.incline_rate_pct_per_s, s.incline_rate_pct_per_s)

        def speed_at(u: float) -> float:
            return _approach(self._speed0, v_goal, *v_rate, u)

        def incline_at(u: float) -> float:
            return _approach(self._incline0, g_goal, *g_rate, u)

        # Breakpoints where a ramp ends or the incline crosses zero: between them both are linear.
        cuts = {0.0, dt}
        cuts.add(_reach_time(self._speed0, v_goal, *v_rate))
        cuts.add(_reach_time(self._incline0, g_goal, *g_rate))
        if self._incline0 * g_goal < 0:
            cuts.add(abs(self._incline0) / s.incline_rate_pct_per_s)
        points = sorted(c for c in cuts if 0.0 <= c <= dt)

        distance_m = pos_m = neg_m = 0.0
        for a, b in itertools.pairwise(points):
            h = b - a
            if h <= 0:
                continue
            m = (a + b) / 2
            va, vm, vb = (speed_at(u) / KMH_PER_MPS for u in (a, m, b))
            ga, gm, gb = (incline_at(u) / 100.0 for u in (a, m, b))
            distance_m += h * (va + 4 * vm + vb) / 6
            climb = h * (va * ga + 4 * vm * gm + vb * gb) / 6
            if gm >= 0:
                pos_m += climb
            else:
                neg_m -= climb
        return (
            speed_at(dt),
            incline_at(dt),
            self._distance0 + distance_m,
            self._pos_climb0 + pos_m,
            self._neg_climb0 + neg_m,
        )


def quantize(value: float, step: float) -> float:
    """`value` rounded to the nearest multiple of `step`, as a console would."""
    return round(round(value / step) * step, 6)

"""The motion rules of the safety contract as pure functions (design.md "Safety contract").

No I/O and no clock: the guard passes the time in, so every rule is a plain function that tests can drive
with any numbers. The same functions answer "may this be sent now?" (`check_speed`, `check_incline`) and
"what may be sent next, and when?" (`speed_step`, `incline_step`), so a runner that follows the plan is
never refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from retro_ftms.errors import RetroFtmsError
from retro_ftms.safety.limits import EffectiveLimits

# Values on the wire are quantized (0.01 km/h, 0.1 %); this absorbs float noise in comparisons only.
VALUE_EPSILON: Final = 1e-6
# An event loop may wake a timer a hair early; one simulated millisecond of a 15 s rule is no risk.
TIME_EPSILON_S: Final = 1e-3
SPEED_RESOLUTION_KMH: Final = 0.01
INCLINE_RESOLUTION_PCT: Final = 0.1


class Rule(StrEnum):
    """Why a command was refused: the rule of the contract, as the event log's `refused.rule`."""

    NOT_A_NUMBER = "value must be a finite number"
    MAX_SPEED = "max speed"
    MIN_SPEED = "min speed"
    MAX_INCLINE = "max incline"
    MIN_INCLINE = "min incline"
    FIRST_SPEED = "first speed after start/resume"
    SPEED_RISE = "one speed rise"
    INCLINE_RISE = "one incline rise"
    RISE_INTERVAL = "time between two rises of the same quantity"
    RISE_SEPARATION = "speed and incline never rise together"
    HOLDING = "holding after a console decrease"
    LATCHED = "no motion after a safety stop"
    NO_RESUME = "no resume after a safety stop"
    NO_CONTROL_AFTER_LATCH = "no request of control after a safety stop"
    PAUSED = "no motion while paused by the person"
    START_AFTER_PAUSE = "after a pause only the person's resume starts the belt"
    NOT_PAUSED = "resume only after a pause by the person"
    BELT_MOVING = "never send Start while the belt moves"
    NO_CONTROL = "no motion before control is taken"
    FINISHED = "no motion after the end of the session"
    NOT_SUPPORTED = "target not supported by the treadmill"


class CommandRefused(RetroFtmsError):
    """The guard refused a command because it breaks `rule`; nothing was written to the treadmill."""

    def __init__(self, op: str, value: float | int | str | None, rule: Rule) -> None:
        self.op = op
        self.value = value
        self.rule = rule
        super().__init__(f"refused {op} {value!r}: {rule}")


@dataclass(slots=True)
class RiseState:
    """What the rise rules remember: current targets and when things last rose (clock seconds)."""

    target_speed_kmh: float = 0.0
    # None until we (or the console) set one: the machine's own incline is then the base of a rise.
    target_incline_pct: float | None = None
    # True until the belt has a speed after a Start/Resume: that speed is bounded by first_speed_max.
    first_speed_pending: bool = True
    # A console decrease: no more rises of either quantity for the rest of the session.
    holding: bool = False
    speed_rise_s: float | None = None
    incline_rise_s: float | None = None
    # A Start/Resume is the belt rising from standstill: it counts as a speed rise for the interval of the
    # next (non-first) speed rise and for the separation of the next incline rise.
    start_s: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """The next command toward a goal: `value`, allowed from clock time `not_before_s` (inf: never)."""

    value: float
    not_before_s: float


def floor_to(value: float, resolution: float) -> float:
    """`value` rounded down to the wire resolution, so a planned value never rounds up past a limit."""
    return round(math.floor(value / resolution + VALUE_EPSILON) * resolution, 6)


def ceil_to(value: float, resolution: float) -> float:
    return round(math.ceil(value / resolution - VALUE_EPSILON) * resolution, 6)


def earliest_speed_rise_s(state: RiseState, limits: EffectiveLimits) -> float:
    """Clock time from which a speed rise is allowed by the interval and separation rules."""
    times = [-math.inf]
    if state.speed_rise_s is not None:
        times.append(state.speed_rise_s + limits.rise_interval_s)
    if state.start_s is not None and not state.first_speed_pending:
        times.append(state.start_s + limits.rise_interval_s)
    if state.incline_rise_s is not None:
        times.append(state.incline_rise_s + limits.rise_separation_s)
    return max(times)


def earliest_incline_rise_s(state: RiseState, limits: EffectiveLimits) -> float:
    times = [-math.inf]
    if state.incline_rise_s is not None:
        times.append(state.incline_rise_s + limits.rise_interval_s)
    for speed_rise in (state.speed_rise_s, state.start_s):
        if speed_rise is not None:
            times.append(speed_rise + limits.rise_separation_s)
    return max(times)


def _timing_rule(
    now_s: float, own_s: float | None, interval_s: float, other_s: float | None, separation_s: float
) -> Rule | None:
    """Interval since the last rise of the same quantity, then separation from the other quantity's."""
    if own_s is not None and now_s + TIME_EPSILON_S < own_s + interval_s:
        return Rule.RISE_INTERVAL
    if other_s is not None and now_s + TIME_EPSILON_S < other_s + separation_s:
        return Rule.RISE_SEPARATION
    return None


def check_speed(state: RiseState, limits: EffectiveLimits, kmh: float, now_s: float) -> Rule | None:
    """The rule that a Set Target Speed of `kmh` (already quantized) would break now, or None."""
    if not math.isfinite(kmh):
        return Rule.NOT_A_NUMBER
    if kmh > limits.max_speed_kmh + VALUE_EPSILON:
        return Rule.MAX_SPEED
    if kmh < limits.min_speed_kmh - VALUE_EPSILON:
        return Rule.MIN_SPEED
    if kmh <= state.target_speed_kmh + VALUE_EPSILON:
        return None  # decreases (and repeats) are always allowed, at once
    if state.holding:
        return Rule.HOLDING
    if state.first_speed_pending:
        if kmh > limits.first_speed_max_kmh + VALUE_EPSILON:
            return Rule.FIRST_SPEED
        own = state.speed_rise_s
    else:
        if kmh - state.target_speed_kmh > limits.speed_rise_max_kmh + VALUE_EPSILON:
            return Rule.SPEED_RISE
        own = max((t for t in (state.speed_rise_s, state.start_s) if t is not None), default=None)
    return _timing_rule(now_s, own, limits.rise_interval_s, state.incline_rise_s, limits.rise_separation_s)


def check_incline(
    state: RiseState, limits: EffectiveLimits, pct: float, base_pct: float, now_s: float
) -> Rule | None:
    """The rule that a Set Target Inclination of `pct` would break now; `base_pct` is what it rises from."""
    if not math.isfinite(pct):
        return Rule.NOT_A_NUMBER
    if pct > limits.max_incline_pct + VALUE_EPSILON:
        return Rule.MAX_INCLINE
    if pct < limits.min_incline_pct - VALUE_EPSILON:
        return Rule.MIN_INCLINE
    if pct <= base_pct + VALUE_EPSILON:
        return None
    if state.holding:
        return Rule.HOLDING
    if pct - base_pct > limits.incline_rise_max_pct + VALUE_EPSILON:
        return Rule.INCLINE_RISE
    other = max((t for t in (state.speed_rise_s, state.start_s) if t is not None), default=None)
    return _timing_rule(now_s, state.incline_rise_s, limits.rise_interval_s, other, limits.rise_separation_s)


def speed_step(state: RiseState, limits: EffectiveLimits, goal_kmh: float) -> Step:
    """The speed to command next on the way to `goal_kmh`, and the earliest time it is allowed."""
    cap = floor_to(limits.max_speed_kmh, SPEED_RESOLUTION_KMH)
    floor = ceil_to(limits.min_speed_kmh, SPEED_RESOLUTION_KMH)
    goal = max(floor, min(cap, goal_kmh))
    target = state.target_speed_kmh
    if goal <= target + VALUE_EPSILON:
        return Step(floor_to(goal, SPEED_RESOLUTION_KMH), -math.inf)
    if state.holding:
        return Step(target, math.inf)
    reach = limits.first_speed_max_kmh if state.first_speed_pending else target + limits.speed_rise_max_kmh
    value = floor_to(min(goal, reach), SPEED_RESOLUTION_KMH)
    if value <= target + VALUE_EPSILON or value < floor:
        return Step(target, math.inf)  # no allowed rise reaches the next wire value or the minimum
    return Step(value, earliest_speed_rise_s(state, limits))


def incline_step(state: RiseState, limits: EffectiveLimits, goal_pct: float, base_pct: float) -> Step:
    """The incline to command next on the way to `goal_pct`, and the earliest time it is allowed."""
    top = floor_to(limits.max_incline_pct, INCLINE_RESOLUTION_PCT)
    bottom = ceil_to(limits.min_incline_pct, INCLINE_RESOLUTION_PCT)
    goal = max(bottom, min(top, goal_pct))
    if goal <= base_pct + VALUE_EPSILON:
        return Step(floor_to(goal, INCLINE_RESOLUTION_PCT), -math.inf)
    if state.holding:
        return Step(base_pct, math.inf)
    value = floor_to(min(goal, base_pct + limits.incline_rise_max_pct), INCLINE_RESOLUTION_PCT)
    if value <= base_pct + VALUE_EPSILON:
        return Step(base_pct, math.inf)
    return Step(value, earliest_incline_rise_s(state, limits))

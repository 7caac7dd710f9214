"""The motion rules as pure functions: every rule refuses with its name, plans are never refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retro_ftms.codec import ControlPointRequest
from retro_ftms.safety import EffectiveLimits, Rule, SafetyConfig
from retro_ftms.safety.rules import (
    RiseState,
    ceil_to,
    check_incline,
    check_speed,
    earliest_incline_rise_s,
    earliest_speed_rise_s,
    floor_to,
    incline_step,
    speed_step,
)

LIMITS = EffectiveLimits.from_config(
    SafetyConfig(), speed_range_kmh=(0.5, 16.0), incline_range_pct=(0.0, 15.0)
)


def running(target: float = 2.0, **kwargs: float | bool | None) -> RiseState:
    """A belt running at `target` for a long time, nothing rose recently."""
    state = RiseState(target_speed_kmh=target, first_speed_pending=False, start_s=-1000.0)
    for name, value in kwargs.items():
        setattr(state, name, value)
    return state


@pytest.mark.parametrize(
    ("kmh", "rule"),
    [
        (4.01, Rule.MAX_SPEED),
        (5.9, Rule.MAX_SPEED),
        (0.4, Rule.MIN_SPEED),
        (0.0, Rule.MIN_SPEED),
        (math.nan, Rule.NOT_A_NUMBER),
        (math.inf, Rule.NOT_A_NUMBER),
        (2.33, Rule.SPEED_RISE),
        (2.32, None),
        (4.0, Rule.SPEED_RISE),
        (1.0, None),
        (0.5, None),
    ],
)
def test_speed_caps_and_rise(kmh: float, rule: Rule | None) -> None:
    assert check_speed(running(2.0), LIMITS, kmh, 0.0) == rule


def test_cap_applies_to_decreases_too() -> None:
    """A target above the cap is refused even if it is below the current target (which cannot happen)."""
    assert check_speed(running(4.0), LIMITS, 4.01, 0.0) == Rule.MAX_SPEED


def test_first_speed_after_start() -> None:
    state = RiseState(first_speed_pending=True, start_s=0.0)
    assert check_speed(state, LIMITS, 1.61, 1.0) == Rule.FIRST_SPEED
    assert check_speed(state, LIMITS, 1.6, 1.0) is None  # not limited by rise max, nor by the start


def test_rise_interval() -> None:
    state = running(2.0, speed_rise_s=100.0)
    assert check_speed(state, LIMITS, 2.3, 114.9) == Rule.RISE_INTERVAL
    assert check_speed(state, LIMITS, 2.3, 115.0) is None
    assert check_speed(state, LIMITS, 1.5, 100.0) is None  # decreases at once


def test_start_counts_as_a_speed_rise_for_the_next_rise() -> None:
    state = running(1.6, start_s=50.0)
    assert check_speed(state, LIMITS, 1.9, 60.0) == Rule.RISE_INTERVAL
    assert check_speed(state, LIMITS, 1.9, 65.0) is None


def test_separation_both_ways() -> None:
    state = running(2.0, incline_rise_s=100.0, speed_rise_s=0.0)
    assert check_speed(state, LIMITS, 2.3, 129.9) == Rule.RISE_SEPARATION
    assert check_speed(state, LIMITS, 2.3, 130.0) is None
    state = running(2.0, speed_rise_s=100.0)
    assert check_incline(state, LIMITS, 1.0, 0.0, 129.0) == Rule.RISE_SEPARATION
    assert check_incline(state, LIMITS, 1.0, 0.0, 130.0) is None
    state = running(2.0, start_s=100.0)
    assert check_incline(state, LIMITS, 1.0, 0.0, 110.0) == Rule.RISE_SEPARATION


def test_holding_refuses_rises_only() -> None:
    state = running(2.0, holding=True, speed_rise_s=99.0, incline_rise_s=99.0)
    assert check_speed(state, LIMITS, 2.1, 1000.0) == Rule.HOLDING
    assert check_incline(state, LIMITS, 1.0, 0.5, 1000.0) == Rule.HOLDING
    assert check_speed(state, LIMITS, 1.9, 100.0) is None
    assert check_incline(state, LIMITS, 0.0, 0.5, 100.0) is None


@pytest.mark.parametrize(
    ("pct", "base", "rule"),
    [
        (5.1, 4.5, Rule.MAX_INCLINE),
        (-0.1, 0.0, Rule.MIN_INCLINE),
        (1.1, 0.0, Rule.INCLINE_RISE),
        (1.0, 0.0, None),
        (3.0, 3.5, None),
        (math.nan, 0.0, Rule.NOT_A_NUMBER),
    ],
)
def test_incline_caps_and_rise(pct: float, base: float, rule: Rule | None) -> None:
    assert check_incline(running(), LIMITS, pct, base, 0.0) == rule


def test_incline_interval() -> None:
    state = running(incline_rise_s=10.0)
    assert check_incline(state, LIMITS, 2.0, 1.0, 24.0) == Rule.RISE_INTERVAL
    assert check_incline(state, LIMITS, 2.0, 1.0, 25.0) is None


def test_quantizing_helpers() -> None:
    assert floor_to(1.9299999, 0.01) == 1.92
    assert floor_to(1.92, 0.01) == 1.92
    assert ceil_to(0.501, 0.01) == 0.51
    assert floor_to(-0.35, 0.1) == -0.4


def test_speed_step_plans_a_ramp() -> None:
    state = RiseState(first_speed_pending=True, start_s=0.0)
    first = speed_step(state, LIMITS, 3.0)
    assert (first.value, first.not_before_s) == (1.6, -math.inf)
    state = running(1.6, speed_rise_s=10.0, start_s=0.0)
    step = speed_step(state, LIMITS, 3.0)
    assert (step.value, step.not_before_s) == (1.92, 25.0)
    assert speed_step(state, LIMITS, 1.0).not_before_s == -math.inf
    assert speed_step(running(1.6, holding=True), LIMITS, 3.0).not_before_s == math.inf
    assert speed_step(running(3.9), LIMITS, 9.0).value == 4.0


def test_incline_step_plans_a_ramp() -> None:
    state = running(incline_rise_s=0.0, speed_rise_s=20.0)
    step = incline_step(state, LIMITS, 3.0, 1.0)
    assert (step.value, step.not_before_s) == (2.0, 50.0)
    assert incline_step(state, LIMITS, 0.0, 1.0).value == 0.0
    assert incline_step(state, LIMITS, 9.0, 4.5).value == 5.0


_configs = st.builds(
    SafetyConfig,
    max_speed_kmh=st.floats(1.6, 5.9),
    first_speed_max_kmh=st.floats(0.5, 1.6),
    speed_rise_max_kmh=st.floats(0.05, 0.32),
    incline_rise_max_pct=st.floats(0.1, 1.0),
    rise_interval_s=st.floats(15.0, 60.0),
    rise_separation_s=st.floats(30.0, 90.0),
    max_incline_pct=st.floats(0.0, 15.0),
)
_times = st.none() | st.floats(-100.0, 100.0)


@st.composite
def rise_states(draw: st.DrawFn) -> RiseState:
    return RiseState(
        target_speed_kmh=floor_to(draw(st.floats(0.0, 6.0)), 0.01),
        target_incline_pct=None,
        first_speed_pending=draw(st.booleans()),
        holding=draw(st.booleans()),
        speed_rise_s=draw(_times),
        incline_rise_s=draw(_times),
        start_s=draw(_times),
    )


@given(config=_configs, state=rise_states(), goal=st.floats(-1.0, 8.0))
def test_a_planned_speed_step_passes_its_check(config: SafetyConfig, state: RiseState, goal: float) -> None:
    limits = EffectiveLimits.from_config(config, speed_range_kmh=(0.5, 16.0))
    state.target_speed_kmh = min(state.target_speed_kmh, floor_to(limits.max_speed_kmh, 0.01))
    target = state.target_speed_kmh
    step = speed_step(state, limits, goal)
    if step.not_before_s == math.inf:
        return
    wire = ControlPointRequest.set_target_speed(step.value).value
    assert isinstance(wire, float)
    now = max(step.not_before_s, 100.0 if step.value > target else -1e9)
    assert check_speed(state, limits, wire, now) is None
    if step.value > target and step.not_before_s > -math.inf:
        assert step.not_before_s == earliest_speed_rise_s(state, limits)
        early = check_speed(state, limits, wire, step.not_before_s - 0.01)
        assert early in (Rule.RISE_INTERVAL, Rule.RISE_SEPARATION)


@given(config=_configs, state=rise_states(), base=st.floats(0.0, 15.0), goal=st.floats(-1.0, 20.0))
def test_a_planned_incline_step_passes_its_check(
    config: SafetyConfig, state: RiseState, base: float, goal: float
) -> None:
    limits = EffectiveLimits.from_config(config)
    base = min(floor_to(base, 0.1), limits.max_incline_pct)
    state.target_incline_pct = base
    state.first_speed_pending = False
    step = incline_step(state, limits, goal, base)
    if step.not_before_s == math.inf:
        return
    wire = ControlPointRequest.set_target_inclination(step.value).value
    assert isinstance(wire, float)
    now = max(step.not_before_s, 100.0)
    assert check_incline(state, limits, wire, base, now) is None
    if step.value > base and step.not_before_s > -math.inf:
        assert step.not_before_s == earliest_incline_rise_s(state, limits)

"""Property tests: whatever the program and however strict the rules, a program is either rejected with a
named step and rule, or its expansion obeys every rule (checked by the independent checker in `rules.py`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from retro_ftms.errors import ProgramError
from retro_ftms.program import Program, check_program, expand
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from tests.program.rules import rule_violations

KINDS = ["warmup", "walk", "ramp", "hold", "incline", "cooldown"]
WHERE_RE = re.compile(r'^step \d+ ".+"$')
PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tenths(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(round(lo * 10), round(hi * 10)).map(lambda n: n / 10)


@st.composite
def safety_configs(draw: st.DrawFn) -> SafetyConfig:
    """The defaults, or any of them made stricter."""
    max_speed = draw(st.floats(1.0, 4.0))
    max_incline = draw(st.floats(0.0, 5.0))
    return SafetyConfig(
        max_speed_kmh=max_speed,
        max_incline_pct=max_incline,
        min_incline_pct=draw(st.sampled_from([0.0, -1.0, -2.5])),
        first_speed_max_kmh=draw(st.floats(0.3, min(1.6, max_speed))),
        speed_rise_max_kmh=draw(st.floats(0.05, 0.32)),
        incline_rise_max_pct=draw(st.floats(0.1, 1.0)),
        rise_interval_s=draw(st.floats(15.0, 60.0)),
        rise_separation_s=draw(st.floats(30.0, 90.0)),
    )


@st.composite
def raw_steps(draw: st.DrawFn, units: str) -> list[dict[str, Any]]:
    """Steps that look like a program: speeds near each other, small inclines, mostly sensible durations,
    with enough near-misses (short steps, big jumps, both rising) to exercise every rule."""
    count = draw(st.integers(1, 8))
    top = 3.0 if units == "mph" else 4.8
    first_top = 1.6 if units == "kmh" else 1.0
    speed = draw(st.one_of(tenths(0.3, first_top), tenths(0.3, first_top), tenths(0.3, first_top + 0.6)))
    incline = 0.0
    steps = []
    for index in range(count):
        kind = draw(st.sampled_from(KINDS if index else ["warmup", "walk"] * 4 + ["ramp"]))
        if index:
            delta = draw(st.one_of(st.just(0.0), tenths(-0.8, 0.3), tenths(-0.8, 1.2)))
            speed = round(min(top, max(0.1, speed + delta)), 1)
            choices = [incline] * 6 + [incline + 0.5, incline + 1.0, max(0.0, incline - 0.5), 0.0, -0.5]
            incline = draw(st.sampled_from(choices))
        else:
            incline = draw(st.sampled_from([0.0] * 8 + [1.0, -0.5]))
        step: dict[str, Any] = {"name": f"step{index + 1}", "kind": kind, "speed": speed, "incline": incline}
        if draw(st.booleans()):
            step["duration_s"] = draw(st.one_of(st.integers(30, 240), st.integers(5, 60)))
        else:
            step["duration_min"] = draw(st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]))
        if draw(st.booleans()):
            step["note"] = "keep going"
        steps.append(step)
    return steps


@st.composite
def programs(draw: st.DrawFn) -> Program:
    units = draw(st.sampled_from(["kmh", "mph"]))
    data = {"name": "random", "title": "Random", "units": units, "steps": draw(raw_steps(units))}
    return Program.from_data(data, source="random.toml")


def assert_rejected_or_safe(program: Program, limits: SafetyConfig | EffectiveLimits) -> None:
    errors = check_program(program, limits)
    if errors:
        event("rejected")
        for error in errors:
            assert error.source == program.source
            assert WHERE_RE.match(error.where), error.where
            assert error.rule
            assert "\n" not in str(error)
        with pytest.raises(ProgramError) as caught:
            expand(program, limits)
        assert str(caught.value) == str(errors[0])
        return
    event("accepted")
    segments = expand(program, limits)
    assert rule_violations(program, segments, limits) == []


@PROPERTY_SETTINGS
@given(program=programs(), config=safety_configs())
def test_random_programs_under_stricter_rules(program: Program, config: SafetyConfig) -> None:
    assert_rejected_or_safe(program, config)


@PROPERTY_SETTINGS
@given(program=programs())
def test_random_programs_under_the_default_rules(program: Program) -> None:
    assert_rejected_or_safe(program, SafetyConfig())


@PROPERTY_SETTINGS
@given(
    program=programs(),
    config=safety_configs(),
    low=st.sampled_from([0.0, 0.5, 1.0]),
    high=st.floats(2.0, 20.0),
    incline_high=st.floats(0.0, 15.0),
)
def test_random_programs_on_treadmills_with_their_own_ranges(
    program: Program, config: SafetyConfig, low: float, high: float, incline_high: float
) -> None:
    limits = EffectiveLimits.from_config(
        config, speed_range_kmh=(low, high), incline_range_pct=(0.0, incline_high)
    )
    assert_rejected_or_safe(program, limits)


@st.composite
def valid_programs(draw: st.DrawFn) -> Program:
    """Programs built to respect the default rules: the planner must accept every one of them."""
    speed = draw(tenths(0.5, 1.6))
    incline = 0.0
    steps: list[dict[str, Any]] = [
        {"kind": "warmup", "speed": speed, "duration_s": draw(st.integers(30, 120))}
    ]
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.sampled_from(["walk", "ramp", "incline", "hold", "cooldown"]))
        extra = draw(st.integers(0, 60))
        if choice == "walk":
            speed = round(min(4.0, speed + draw(tenths(-0.5, 0.3))), 1)
            speed = max(speed, 0.3)
            steps.append({"kind": "walk", "speed": speed, "incline": incline, "duration_s": 30 + extra})
        elif choice == "ramp":
            target = round(min(4.0, speed + draw(tenths(0.1, 2.0))), 1)
            rises = max(1, math.ceil((target - speed) / 0.32 - 1e-9))
            steps.append(
                {"kind": "ramp", "speed": target, "incline": incline, "duration_s": rises * 30 + extra}
            )
            speed = target
        elif choice == "incline":
            target = round(min(5.0, incline + draw(tenths(-1.0, 2.0))), 1)
            target = max(target, 0.0)
            rises = max(1, math.ceil(target - incline - 1e-9))
            steps.append(
                {"kind": "incline", "speed": speed, "incline": target, "duration_s": rises * 30 + extra}
            )
            incline = target
        else:
            steps.append({"kind": choice, "speed": speed, "incline": incline, "duration_s": 30 + extra})
    steps.append({"kind": "cooldown", "speed": min(speed, 0.5), "duration_s": 60})
    named = [{"name": f"s{i + 1}", **step} for i, step in enumerate(steps)]
    return Program.from_data(
        {"name": "valid", "title": "Valid", "units": "kmh", "steps": named}, source="v.toml"
    )


@PROPERTY_SETTINGS
@given(program=valid_programs())
def test_programs_within_the_rules_are_accepted(program: Program) -> None:
    config = SafetyConfig()
    assert check_program(program, config) == []
    assert rule_violations(program, expand(program, config), config) == []


@PROPERTY_SETTINGS
@given(program=valid_programs(), config=safety_configs())
def test_programs_within_the_default_rules_under_stricter_rules(
    program: Program, config: SafetyConfig
) -> None:
    assert_rejected_or_safe(program, config)

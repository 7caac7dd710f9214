"""Expansion: what each kind of step turns into, unit conversion, and the rules' edges."""

from __future__ import annotations

from typing import Any

import pytest

from retro_ftms.errors import ProgramError
from retro_ftms.program import MPH_TO_KMH, Program, Quantity, Segment, check_program, expand
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from tests.program.rules import rule_violations

DEFAULT = SafetyConfig()


def make(units: str, *steps: dict[str, Any], source: str = "test.toml") -> Program:
    return Program.from_data(
        {
            "name": "t",
            "title": "Test",
            "units": units,
            "steps": [{"name": f"s{i + 1}", **s} for i, s in enumerate(steps)],
        },
        source=source,
    )


def step(kind: str, speed: float, seconds: float = 60, incline: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "speed": speed, "incline": incline, "duration_s": seconds, **extra}


def targets(segments: list[Segment]) -> list[tuple[float, float, float, float]]:
    return [(s.start_s, s.duration_s, s.target_speed_kmh, s.target_incline_pct) for s in segments]


def rules(program: Program, config: SafetyConfig = DEFAULT) -> list[str]:
    return [error.rule for error in check_program(program, config)]


def test_walk_steps_change_at_their_start() -> None:
    program = make("kmh", step("warmup", 1.5), step("walk", 1.8, 30), step("cooldown", 1.0, 45))
    assert targets(expand(program, DEFAULT)) == [
        (0.0, 60.0, 1.5, 0.0),
        (60.0, 30.0, 1.8, 0.0),
        (90.0, 45.0, 1.0, 0.0),
    ]


def test_ramp_spreads_rises_evenly_and_no_bigger_than_one_rise() -> None:
    program = make("kmh", step("warmup", 1.6), step("ramp", 2.6, 80))
    segments = expand(program, DEFAULT)
    assert targets(segments)[1:] == [
        (60.0, 20.0, 1.85, 0.0),
        (80.0, 20.0, 2.1, 0.0),
        (100.0, 20.0, 2.35, 0.0),
        (120.0, 20.0, 2.6, 0.0),
    ]
    assert {seg.step_index for seg in segments[1:]} == {1}
    assert {seg.step_kind for seg in segments[1:]} == {"ramp"}


def test_ramp_spacing_is_exactly_the_interval_when_the_step_is_just_long_enough() -> None:
    program = make("kmh", step("warmup", 1.6), step("ramp", 2.56, 45))
    segments = expand(program, DEFAULT)
    assert [seg.start_s for seg in segments] == [0.0, 60.0, 75.0, 90.0]
    assert rule_violations(program, segments, DEFAULT) == []
    too_short = make("kmh", step("warmup", 1.6), step("ramp", 2.56, 44.9))
    assert rules(too_short) == [
        "too short for this ramp: 3 rises of at most 0.32 km/h (safety.speed_rise_max_kmh), "
        "15.0 s apart (safety.rise_interval_s), need at least 45.0 s"
    ]


def test_falling_ramp_steps_down_smoothly() -> None:
    program = make("kmh", step("warmup", 1.6), step("ramp", 3.2, 120), step("ramp", 1.6, 20))
    segments = [seg for seg in expand(program, DEFAULT) if seg.step_index == 2]
    speeds = [seg.target_speed_kmh for seg in segments]
    assert speeds == sorted(speeds, reverse=True)
    assert speeds[-1] == 1.6
    assert all(seg.duration_s >= 1.0 for seg in segments)


def test_incline_step_ramps_incline_and_holds_speed() -> None:
    program = make(
        "kmh", step("warmup", 1.6, 60), step("incline", 1.6, 60, incline=2.0), step("cooldown", 1.2, 30)
    )
    segments = expand(program, DEFAULT)
    assert targets(segments) == [
        (0.0, 60.0, 1.6, 0.0),
        (60.0, 30.0, 1.6, 1.0),
        (90.0, 30.0, 1.6, 2.0),
        (120.0, 30.0, 1.2, 0.0),
    ]


def test_hold_keeps_and_decreases_are_immediate() -> None:
    program = make("kmh", step("warmup", 1.6), step("hold", 1.6), step("hold", 1.2), step("cooldown", 0.8))
    speeds = [seg.target_speed_kmh for seg in expand(program, DEFAULT)]
    assert speeds == [1.6, 1.6, 1.2, 0.8]


def test_duration_in_minutes_or_seconds() -> None:
    program = make("kmh", {"kind": "warmup", "speed": 1.0, "duration_min": 1.5}, step("walk", 1.2, 12.34))
    assert [s.seconds for s in program.steps] == [90.0, 12.3]
    assert program.duration_s == 102.3
    assert [seg.duration_s for seg in expand(program, DEFAULT)] == [90.0, 12.3]


def test_notes_and_names_reach_the_segments() -> None:
    program = make("kmh", step("warmup", 1.0, note="Hold the rails."), step("cooldown", 0.8))
    first, second = expand(program, DEFAULT)
    assert (first.step_name, first.step_kind, first.note) == ("s1", "warmup", "Hold the rails.")
    assert (second.step_index, second.note) == (1, None)
    assert first.end_s == 60.0


def test_mph_converts_with_the_exact_factor_and_rounds_to_hundredths() -> None:
    program = make("mph", step("warmup", 0.8), step("walk", 0.9), step("cooldown", 0.5))
    speeds = [seg.target_speed_kmh for seg in expand(program, DEFAULT)]
    assert speeds == [round(0.8 * MPH_TO_KMH, 2), round(0.9 * MPH_TO_KMH, 2), round(0.5 * MPH_TO_KMH, 2)]
    assert speeds == [1.29, 1.45, 0.8]


def test_mph_limits_quoted_in_mph_run_at_the_limit() -> None:
    """1.0 mph (1.609 km/h) starts at 1.6 km/h; a 0.2 mph rise is one 0.32 km/h rise; 2.5 mph runs at 4.0."""
    program = make(
        "mph",
        step("warmup", 1.0),
        step("walk", 1.2),
        step("walk", 1.4),
        step("ramp", 2.5, 300),
        step("hold", 2.5),
        step("cooldown", 1.0),
    )
    segments = expand(program, DEFAULT)
    assert [seg.target_speed_kmh for seg in segments[:3]] == [1.6, 1.92, 2.24]
    assert max(seg.target_speed_kmh for seg in segments) == 4.0
    assert segments[-2].target_speed_kmh == 4.0  # the hold at the same mph stays at the same km/h
    assert rule_violations(program, segments, DEFAULT) == []


def test_kmh_programs_get_no_slack() -> None:
    program = make("kmh", step("warmup", 1.61))
    assert rules(program) == ["above the first speed after a start 1.6 km/h (safety.first_speed_max_kmh)"]
    program = make("kmh", step("warmup", 1.6), step("walk", 1.93))
    assert rules(program) == [
        "one speed rise is at most 0.32 km/h (safety.speed_rise_max_kmh): use a ramp step"
    ]


def test_mph_beyond_the_slack_is_rejected_with_both_units() -> None:
    program = make("mph", step("warmup", 1.1))
    (error,) = check_program(program, DEFAULT)
    assert error.value == Quantity("speed", 1.1, "mph", "1.77 km/h")
    assert str(error) == (
        'test.toml: step 1 "s1": speed 1.1 mph (1.77 km/h): '
        "above the first speed after a start 1.6 km/h (safety.first_speed_max_kmh)"
    )


def test_stricter_config_rejects_what_the_default_allows() -> None:
    program = make("kmh", step("warmup", 1.6), step("walk", 1.9))
    assert rules(program) == []
    strict = SafetyConfig(first_speed_max_kmh=1.2, speed_rise_max_kmh=0.2, max_speed_kmh=1.8)
    assert rules(program, strict) == [
        "above the first speed after a start 1.2 km/h (safety.first_speed_max_kmh)",
        "above the speed cap 1.8 km/h (safety.max_speed_kmh)",
        "one speed rise is at most 0.2 km/h (safety.speed_rise_max_kmh): use a ramp step",
    ]


def test_rises_must_be_spaced_by_the_interval() -> None:
    program = make("kmh", step("warmup", 1.6, 10), step("walk", 1.9, 60))
    (error,) = check_program(program, DEFAULT)
    assert error.where == 'step 2 "s2"'
    assert repr(error.value) == "speed rise at 10.0 s (10.0 s after the speed rise at 0.0 s)"
    assert error.rule == "speed rises must be at least 15.0 s apart (safety.rise_interval_s)"


def test_incline_rise_must_wait_for_the_separation_after_a_speed_rise() -> None:
    program = make(
        "kmh", step("warmup", 1.6, 60), step("walk", 1.9, 29.9), step("incline", 1.9, 60, incline=1)
    )
    (error,) = check_program(program, DEFAULT)
    assert error.where == 'step 3 "s3"'
    assert (
        error.rule
        == "an incline rise must come at least 30.0 s after a speed rise (safety.rise_separation_s)"
    )
    ok = make("kmh", step("warmup", 1.6, 60), step("walk", 1.9, 30), step("incline", 1.9, 60, incline=1))
    assert rules(ok) == []


def test_speed_rise_must_wait_for_the_separation_after_an_incline_rise() -> None:
    program = make("kmh", step("warmup", 1.6, 60), step("incline", 1.6, 20, incline=1), step("walk", 1.9, 60))
    assert rules(program) == [
        "a speed rise must come at least 30.0 s after an incline rise (safety.rise_separation_s)"
    ]


def test_a_decrease_may_come_with_a_rise() -> None:
    program = make(
        "kmh", step("warmup", 1.6, 60), step("incline", 1.6, 60, incline=1), step("walk", 1.9, 60, incline=0)
    )
    assert rules(program) == []


@pytest.mark.parametrize(
    ("kind", "speed", "incline", "rule"),
    [
        ("hold", 1.9, 0.0, "a hold step cannot raise speed; use a walk, ramp or incline step"),
        ("cooldown", 1.6, 1.0, "a cooldown step cannot raise incline; use a walk, ramp or incline step"),
        ("ramp", 1.6, 1.0, "a ramp step changes speed only: raise incline in an incline step"),
        ("incline", 1.9, 0.0, "an incline step changes incline only: raise speed in a walk or ramp step"),
        (
            "walk",
            1.6,
            2.0,
            "one incline rise is at most 1.0 % (safety.incline_rise_max_pct): use an incline step",
        ),
    ],
)
def test_kind_rules(kind: str, speed: float, incline: float, rule: str) -> None:
    program = make("kmh", step("warmup", 1.6, 60), step(kind, speed, 60, incline=incline))
    assert rules(program) == [rule]


@pytest.mark.parametrize("kind", ["ramp", "incline"])
def test_first_step_cannot_be_a_ramp(kind: str) -> None:
    program = make("kmh", step(kind, 1.0))
    assert rules(program) == [
        "the first step starts the belt at its own speed: it cannot be a ramp or incline step"
    ]


def test_first_step_must_be_flat_but_may_decline_when_allowed() -> None:
    assert rules(make("kmh", step("warmup", 1.0, incline=1.0))) == [
        "the first step must be flat: starting the belt is a speed rise, and incline may not rise "
        "within 30.0 s of it (safety.rise_separation_s)"
    ]
    declined = make("kmh", step("warmup", 1.0, incline=-1.0))
    assert rules(declined) == ["below the lowest incline 0.0 % (safety.min_incline_pct)"]
    assert rules(declined, SafetyConfig(min_incline_pct=-2.0)) == []


def test_incline_cap() -> None:
    program = make(
        "kmh", step("warmup", 1.6, 60), *[step("incline", 1.6, 60, incline=i) for i in range(1, 7)]
    )
    assert rules(program) == ["above the incline cap 5.0 % (safety.max_incline_pct)"]


def test_effective_limits_name_the_treadmill() -> None:
    limits = EffectiveLimits.from_config(DEFAULT, speed_range_kmh=(1.0, 3.0), incline_range_pct=(0.0, 10.0))
    program = make("kmh", step("warmup", 0.8), step("ramp", 3.2, 120))
    assert [e.rule for e in check_program(program, limits)] == [
        "below the treadmill's lowest speed 1.0 km/h",
        "above the speed cap 3.0 km/h (safety.max_speed_kmh or the treadmill's range)",
    ]


def test_expand_raises_the_first_error_and_check_lists_all() -> None:
    program = make("kmh", step("walk", 2.0), step("hold", 2.5, incline=1.0))
    errors = check_program(program, DEFAULT)
    assert [e.where for e in errors] == ['step 1 "s1"', 'step 2 "s2"']
    with pytest.raises(ProgramError) as caught:
        expand(program, DEFAULT)
    assert caught.value.rule == errors[0].rule


def test_segments_are_immutable() -> None:
    (segment,) = expand(make("kmh", step("warmup", 1.0)), DEFAULT)
    with pytest.raises(AttributeError):
        segment.target_speed_kmh = 9.9  # type: ignore[misc]

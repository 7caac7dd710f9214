"""Bad programs: every error names the file, the step (or key or line), the value and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from retro_ftms.errors import ProgramError
from retro_ftms.program import NOT_SET, Program, Quantity, check_program, expand, load_program
from retro_ftms.safety.limits import SafetyConfig

DATA = Path(__file__).parent / "data"


def load_error(name: str) -> ProgramError:
    with pytest.raises(ProgramError) as caught:
        load_program(str(DATA / name))
    return caught.value


def check_errors(name: str) -> list[ProgramError]:
    program = load_program(str(DATA / name))
    errors = check_program(program, SafetyConfig())
    assert errors, "a bad program must not pass"
    with pytest.raises(ProgramError):
        expand(program, SafetyConfig())
    return errors


def test_speed_above_the_cap_reads_like_the_design() -> None:
    (error,) = check_errors("over_cap.toml")
    source = str(DATA / "over_cap.toml")
    assert (error.source, error.where, error.value) == (
        source,
        'step 3 "brisk"',
        Quantity("speed", 6.4, "km/h"),
    )
    assert str(error) == (
        f'{source}: step 3 "brisk": speed 6.4 km/h: above the speed cap 4.0 km/h (safety.max_speed_kmh)'
    )


def test_speed_and_incline_rising_in_one_step_is_rejected_not_split() -> None:
    (error,) = check_errors("both_rise.toml")
    assert error.where == 'step 3 "up and up"'
    assert error.rule.startswith("speed and incline both rise in this step")
    assert "(safety.rise_separation_s)" in error.rule
    assert repr(error.value) == "speed rise 0.3 km/h (1.6 km/h to 1.9 km/h)"


def test_first_speed_too_high() -> None:
    (error,) = check_errors("first_too_fast.toml")
    assert error.where == 'step 1 "go"'
    assert error.value == Quantity("speed", 2.0, "km/h")
    assert error.rule == "above the first speed after a start 1.6 km/h (safety.first_speed_max_kmh)"


def test_mph_program_above_the_cap_shows_both_units() -> None:
    (error,) = check_errors("mph_over_cap.toml")
    assert error.where == 'step 2 "too far"'
    assert repr(error.value) == "speed 2.6 mph (4.18 km/h)"
    assert error.rule == "above the speed cap 4.0 km/h (safety.max_speed_kmh)"


def test_ramp_too_short_for_its_rises() -> None:
    (error,) = check_errors("short_ramp.toml")
    assert error.where == 'step 2 "rush"'
    assert error.value == Quantity("duration", 60.0, "s")
    assert "need at least 75.0 s" in error.rule


def test_incline_too_soon_after_a_speed_rise() -> None:
    (error,) = check_errors("incline_too_soon.toml")
    assert error.where == 'step 3 "tilt"'
    assert repr(error.value) == "incline rise at 80.0 s (20.0 s after the speed rise at 60.0 s)"
    assert error.rule == (
        "an incline rise must come at least 30.0 s after a speed rise (safety.rise_separation_s)"
    )


def test_unknown_key_names_step_and_key_and_suggests() -> None:
    error = load_error("unknown_key.toml")
    assert error.source == str(DATA / "unknown_key.toml")
    assert error.where == "step 2 \"quicker\" key 'sped'"
    assert error.value == 1.9
    assert error.rule == "unknown key (did you mean 'speed'?)"


def test_malformed_value() -> None:
    error = load_error("malformed_value.toml")
    assert (error.where, error.value, error.rule) == (
        "step 1 \"start\" key 'speed'",
        "fast",
        "must be a number",
    )


def test_wrong_type_is_not_coerced() -> None:
    error = load_error("wrong_type.toml")
    assert (error.where, error.value, error.rule) == (
        "step 1 \"start\" key 'duration_min'",
        "2",
        "must be a number",
    )


def test_bad_toml_names_the_line() -> None:
    error = load_error("bad_syntax.toml")
    assert error.where == "line 8"
    assert error.value == "speed 1.6"
    assert error.rule.startswith("not valid TOML: Expected '=' after a key")
    assert "\n" not in str(error)


def test_bad_units() -> None:
    error = load_error("bad_units.toml")
    assert (error.where, error.value) == ("key 'units'", "furlongs_per_fortnight")
    assert error.rule == "must be one of 'mph' or 'kmh'"


def test_exactly_one_duration() -> None:
    error = load_error("two_durations.toml")
    assert error.where == 'step 1 "start"'
    assert error.rule == "give exactly one of duration_s and duration_min (both are given)"
    assert repr(error.value) == "(the whole table)"


def make_error(data: dict[str, object]) -> ProgramError:
    with pytest.raises(ProgramError) as caught:
        Program.from_data(data, source="mem.toml")
    return caught.value


GOOD_STEP = {"name": "a", "kind": "walk", "speed": 1.0, "duration_s": 60}


@pytest.mark.parametrize(
    ("data", "where", "rule"),
    [
        ({"title": "T", "units": "kmh", "steps": [GOOD_STEP]}, "key 'name'", "required key is missing"),
        ({"name": "T!", "title": "T", "units": "kmh", "steps": [GOOD_STEP]}, "key 'name'", "must be 1-40"),
        ({"name": "t", "title": "T", "units": "kmh", "steps": []}, "key 'steps'", "needs at least 1 entry"),
        ({"name": "t", "title": "T", "units": "kmh", "steps": 3}, "key 'steps'", "must be an array"),
        ({"name": "t", "title": "T", "units": "kmh", "steps": [3]}, "step 1", "must be a table"),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [GOOD_STEP], "colour": 1},
            "key 'colour'",
            "unknown key",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "sources": ["a", 2], "steps": [GOOD_STEP]},
            "key 'sources' entry 2",
            "must be text",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "speed": -1.0}]},
            "step 1 \"a\" key 'speed'",
            "must be above 0",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "speed": True}]},
            "step 1 \"a\" key 'speed'",
            "must be a number",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "speed": float("nan")}]},
            "step 1 \"a\" key 'speed'",
            "must be a finite number",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "kind": "run"}]},
            "step 1 \"a\" key 'kind'",
            "must be one of 'warmup', 'walk', 'ramp', 'hold', 'incline' or 'cooldown'",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "duration_s": 7200}]},
            "step 1 \"a\" key 'duration_s'",
            "must be at most 3600.0",
        ),
        (
            {"name": "t", "title": "T", "units": "kmh", "steps": [{**GOOD_STEP, "duration_s": 0.5}]},
            "step 1 \"a\" key 'duration_s'",
            "must be at least 1.0",
        ),
        (
            {
                "name": "t",
                "title": "T",
                "units": "kmh",
                "steps": [{**GOOD_STEP, "duration_s": None, "duration_min": 0.01}],
            },
            'step 1 "a"',
            "a step lasts at least 1 s",
        ),
    ],
)
def test_parse_errors_are_specific(data: dict[str, object], where: str, rule: str) -> None:
    error = make_error(data)
    assert error.source == "mem.toml"
    assert error.where == where
    assert error.rule.startswith(rule)
    assert "pydantic" not in str(error)
    assert "validation error" not in str(error)


def test_missing_value_reads_as_not_set() -> None:
    error = make_error(
        {"name": "t", "title": "T", "units": "kmh", "steps": [{"name": "a", "kind": "walk", "duration_s": 1}]}
    )
    assert error.value is NOT_SET
    assert str(error) == "mem.toml: step 1 \"a\" key 'speed': (not set): required key is missing"


def test_unknown_program_name_lists_the_builtins() -> None:
    with pytest.raises(ProgramError) as caught:
        load_program("no-such-program")
    assert "first-steps" in caught.value.rule


def test_missing_file() -> None:
    with pytest.raises(ProgramError) as caught:
        load_program(str(DATA / "absent.toml"))
    assert (caught.value.where, caught.value.rule) == ("file", "no such file")

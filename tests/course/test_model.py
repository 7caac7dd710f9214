"""Course files: the built-ins load and pass the static check; bad files name the file, key, value, rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from retro_ftms.course import builtin_names, check_course, level_program, load_course
from retro_ftms.course.model import SPEED_STEP_MAX_KMH, Course, course_errors
from retro_ftms.errors import CourseError
from retro_ftms.program import check_program, expand
from retro_ftms.safety.limits import SafetyConfig
from tests.program.rules import rule_violations

KNEE = Path(__file__).parents[2] / "retro_ftms/course/builtin/knee-six-weeks.toml"


def knee_data() -> dict[str, object]:
    return tomllib.loads(KNEE.read_text(encoding="utf-8"))


def test_builtins_are_the_two_the_issue_names() -> None:
    assert builtin_names() == ["gentle-start", "knee-six-weeks"]


@pytest.mark.parametrize("name", ["gentle-start", "knee-six-weeks"])
def test_every_builtin_level_passes_the_program_check_and_the_independent_rules(name: str) -> None:
    course = load_course(name)
    limits = SafetyConfig()
    assert check_course(course, limits) == []
    for level in course.levels:
        program = level_program(course, level, limits)
        assert check_program(program, limits) == []
        assert rule_violations(program, expand(program, limits), limits) == []
        assert abs(program.duration_s - level.walk_s) < 1e-6
        assert level.source
    assert course.schedule.source
    assert course.session.source
    assert course.pain.source


def test_knee_six_weeks_builds_5_to_10_then_20_and_30_then_speed_then_incline() -> None:
    course = load_course("knee-six-weeks")
    minutes = [level.walk_s / 60 for level in course.levels]
    assert minutes[0] == 5
    assert minutes[:6] == [5, 6, 7, 8, 9, 10]
    assert 20 in minutes
    assert minutes[-1] == 30
    changes = [level.change for level in course.levels]
    order = [change for index, change in enumerate(changes) if index == 0 or changes[index - 1] != change]
    assert order == ["start", "duration", "speed", "incline"]
    assert course.schedule.sessions_per_week == 3
    assert course.schedule.weeks == 6


def test_gentle_start_is_2_to_5_minutes() -> None:
    course = load_course("gentle-start")
    minutes = [level.walk_s / 60 for level in course.levels]
    assert min(minutes) == 2
    assert max(minutes) == 5
    assert all(level.incline_pct == 0 for level in course.levels)


def test_each_level_changes_one_thing_by_one_rule_step() -> None:
    for name in builtin_names():
        course = load_course(name)
        for before, after in zip(course.levels, course.levels[1:], strict=False):
            changed = [
                before.walk_s != after.walk_s,
                before.speed != after.speed,
                before.incline_pct != after.incline_pct,
            ]
            assert sum(changed) == 1, (before, after)
            assert 0 < after.walk_s - before.walk_s <= 120 or not changed[0]
            step_kmh = course.speed_kmh(after.speed) - course.speed_kmh(before.speed)
            assert step_kmh <= SPEED_STEP_MAX_KMH + 1e-6
            assert after.incline_pct - before.incline_pct <= 1.0


def test_a_stricter_cap_names_the_level_step_value_and_rule() -> None:
    errors = check_course(load_course("knee-six-weeks"), SafetyConfig(max_speed_kmh=3.0))
    assert errors
    first = errors[0]
    assert first.source == "builtin:knee-six-weeks"
    assert first.where.startswith("level 21 (30 min, 2 mph, incline 0 %) step 2")
    assert repr(first.value) == "speed 2.0 mph (3.22 km/h)"
    assert first.rule == "above the speed cap 3.0 km/h (safety.max_speed_kmh)"


@pytest.mark.parametrize(
    ("change", "where", "rule"),
    [
        ({"speed": {"up_to": 2.0, "step": 0.3, "source": "x"}}, "key 'speed.step'", "0.1-0.2 mph"),
        (
            {"incline": {"up_to_pct": 2, "step_pct": 2, "source": "x"}},
            "key 'incline.step_pct'",
            "at most 1.0",
        ),
        (
            {"pain": {"safe_max": 3, "acceptable_max": 7, "source": "x"}},
            "key 'pain.acceptable_max'",
            "at most 5",
        ),
        ({"speeed": 1}, "key 'speeed'", "unknown key (did you mean 'speed'?)"),
        ({"start": {"walk_min": 5, "sped": 1.0, "source": "x"}}, "key 'start.sped'", "did you mean 'speed'"),
        ({"start": {"walk_min": 5, "speed": 1.0}}, "key 'start.source'", "required key is missing"),
        (
            {"duration": [{"up_to_min": 10, "step_min": 3, "source": "x"}]},
            "key 'duration' entry 1 'step_min'",
            "at most 2.0",
        ),
        (
            {"duration": [{"up_to_min": 60, "step_min": 0.1, "source": "x"}]},
            "file",
            "at most 100 levels",
        ),
        (
            {"duration": [{"up_to_min": 4, "step_min": 1, "source": "x"}]},
            "key 'duration' entry 1 'up_to_min'",
            "duration only grows",
        ),
        (
            {
                "session": {
                    "warmup_min": 1,
                    "warmup_speed": 0.8,
                    "cooldown_min": 1,
                    "cooldown_speed": 1.5,
                    "source": "x",
                }
            },
            "key 'session.cooldown_speed'",
            "a cool-down never speeds up",
        ),
    ],
)
def test_bad_course_names_key_value_and_rule(change: dict[str, object], where: str, rule: str) -> None:
    data = {**knee_data(), **change}
    errors = course_errors(data, source="my.toml")
    assert errors
    assert errors[0].source == "my.toml"
    assert errors[0].where == where
    assert rule in errors[0].rule
    with pytest.raises(CourseError):
        Course.from_data(data, source="my.toml")


def test_unknown_course_names_the_builtins(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="built-in: gentle-start, knee-six-weeks"):
        load_course("no-such-course")
    with pytest.raises(CourseError, match="no such file"):
        load_course(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n", encoding="utf-8")
    with pytest.raises(CourseError) as caught:
        load_course(str(bad))
    assert caught.value.where == "line 1"


def test_the_readme_example_course_is_valid() -> None:
    import re

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r'```toml\n(name = "my-course".*?)```', readme, re.S)
    assert match is not None
    course = Course.from_toml(match[1], source="README")
    assert check_course(course, SafetyConfig()) == []

"""Courses as data: a TOML file of rules that generate one level after another, and its validation.

A course is a file a clinician can read and edit. Its rules generate the levels, one change per level, in
the order of programs.md ("Progression from session to session"): duration first, then speed, then
incline. Every table carries a `source` naming where its numbers come from. Any other key is an error.

```toml
name = "my-course"           # lowercase letters, digits and dashes; the name `--course` accepts
title = "My course"          # shown to the person
description = "Why and for whom."           # optional
units = "mph"                # "mph" or "kmh": the unit of every speed below
sources = ["..."]            # optional: full citations of the sources named below

[schedule]                   # how often; a session asked for sooner gets a warning, never a refusal
sessions_per_week = 3        # 1-7
weeks = 6                    # 1-52
min_rest_h = 24              # hours from the end of one session to the start of the next, 0-168
source = "..."

[session]                    # every session: warm-up, working block, cool-down
warmup_min = 1.0             # minutes at warmup_speed, inside the walking time
warmup_speed = 0.8           # at most the first speed of the safety rules
cooldown_min = 1.0
cooldown_speed = 0.8         # at most the start speed (a cool-down never speeds up)
source = "..."

[start]                      # level 1
walk_min = 5                 # minutes of walking in all, warm-up and cool-down included
speed = 1.0                  # the working block's speed
incline = 0.0                # the working block's incline, %
source = "..."

[[duration]]                 # then one level per step, up to `up_to_min`; more tables continue from there
up_to_min = 10
step_min = 1                 # 1-2 minutes per progression (at most 2)
source = "..."

[speed]                      # optional: then one level per speed step up to `up_to`
up_to = 2.0
step = 0.2                   # 0.1-0.2 mph (0.16-0.32 km/h) per progression
source = "..."

[incline]                    # optional: then one level per incline step up to `up_to_pct`
up_to_pct = 2
step_pct = 1                 # at most 1 % per progression, never with a speed step
source = "..."

[pain]                       # the pain-monitoring model's thresholds (NRS 0-10)
safe_max = 3                 # worst pain during at or below this may progress
acceptable_max = 5           # above safe_max up to this repeats the level; above it steps back (at most 5)
source = "..."
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from retro_ftms.errors import CourseError, InvalidInputError
from retro_ftms.program.model import (
    MPH_TO_KMH,
    Quantity,
    Titled,
    error_value,
    explain,
    relevant_errors,
)

# programs.md, "Progression from session to session": one speed step is 0.1-0.2 mph (seeds 004).
SPEED_STEP_MIN_KMH: Final = 0.1 * MPH_TO_KMH
SPEED_STEP_MAX_KMH: Final = 0.2 * MPH_TO_KMH
# Rounding slack so that a km/h course may write 0.16 or 0.32 for 0.1 or 0.2 mph.
_SPEED_STEP_SLACK_KMH: Final = 0.005
DURATION_STEP_MAX_MIN: Final = 2.0  # "add a minute or two" (seeds 004)
INCLINE_STEP_MAX_PCT: Final = 1.0  # "1 % per progression" (programs.md)
PAIN_ACCEPTABLE_CEILING: Final = 5  # the pain-monitoring model: above 5/10 is "too much" (Thomeé 1997)
WALK_MAX_MIN: Final = 60.0  # no source goes beyond 30 minutes a session; an hour is a typo
LEVELS_MAX: Final = 100
# The working block keeps at least this much steady walking after any ramp: a level that is all ramp
# would never let the person settle at its speed ("a few minutes at each new speed", seeds 004).
STEADY_MIN_S: Final = 30.0

Change = Literal["start", "duration", "speed", "incline"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    source: str = Field(min_length=1, max_length=1000)


class Schedule(_Table):
    sessions_per_week: int = Field(ge=1, le=7)
    weeks: int = Field(ge=1, le=52)
    min_rest_h: float = Field(ge=0, le=168)


class SessionTemplate(_Table):
    warmup_min: float = Field(gt=0, le=15)
    warmup_speed: float = Field(gt=0)
    cooldown_min: float = Field(gt=0, le=15)
    cooldown_speed: float = Field(gt=0)


class Start(_Table):
    walk_min: float = Field(gt=0, le=WALK_MAX_MIN)
    speed: float = Field(gt=0)
    incline: float = Field(default=0.0, ge=0)


class DurationRule(_Table):
    up_to_min: float = Field(gt=0, le=WALK_MAX_MIN)
    step_min: float = Field(gt=0, le=DURATION_STEP_MAX_MIN)


class SpeedRule(_Table):
    up_to: float = Field(gt=0)
    step: float = Field(gt=0)


class InclineRule(_Table):
    up_to_pct: float = Field(gt=0)
    step_pct: float = Field(gt=0, le=INCLINE_STEP_MAX_PCT)


class PainRule(_Table):
    safe_max: int = Field(ge=0, le=PAIN_ACCEPTABLE_CEILING)
    acceptable_max: int = Field(ge=0, le=PAIN_ACCEPTABLE_CEILING)


@dataclass(frozen=True, slots=True)
class Level:
    """One level of a course: its walking time, working speed (in the course's units) and incline.

    `number` counts from 1; `change` is what this level changed from the one before, and `source` the
    rule (its citation) that generated it.
    """

    number: int
    walk_s: float
    speed: float
    incline_pct: float
    change: Change
    source: str


class Course(Titled):
    """A validated course file: its rules, and the levels they generate."""

    schedule: Schedule
    session: SessionTemplate
    start: Start
    duration: tuple[DurationRule, ...] = Field(default=(), strict=False, max_length=10)
    speed: SpeedRule | None = None
    incline: InclineRule | None = None
    pain: PainRule
    _levels: tuple[Level, ...] = PrivateAttr(())
    ERROR: ClassVar[type[InvalidInputError]] = CourseError

    @property
    def levels(self) -> tuple[Level, ...]:
        return self._levels

    def level(self, number: int) -> Level:
        """Level `number` (from 1), clamped to the course's first and last."""
        return self._levels[min(max(number, 1), len(self._levels)) - 1]

    def speed_kmh(self, speed: float) -> float:
        return speed * MPH_TO_KMH if self.units == "mph" else speed

    def speed_text(self, speed: float) -> str:
        return f"{speed:g} {'mph' if self.units == 'mph' else 'km/h'}"

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str) -> Self:
        """Validate parsed TOML; raise the first problem as a `CourseError` naming the table and key."""
        errors = course_errors(data, source=source)
        if errors:
            raise errors[0]
        course = cls.model_validate(dict(data))
        course._source = source
        course._levels = tuple(_generate(course))
        return course


def course_errors(data: Mapping[str, object], *, source: str) -> list[CourseError]:
    """Every problem of the file's format and its rules (all of them, for `course check`)."""
    try:
        course = Course.model_validate(dict(data))
    except ValidationError as exc:
        return [
            CourseError(
                source, _where(error["loc"]), error_value(error), explain(error, _known(error["loc"]))
            )
            for error in relevant_errors(exc.errors(include_url=False))
        ]
    course._source = source
    return _rule_errors(course)


def _rule_errors(course: Course) -> list[CourseError]:
    """The rules pydantic cannot see: the order of the levels and the size of each change."""
    errors: list[CourseError] = []

    def fail(where: str, value: object, rule: str) -> None:
        errors.append(CourseError(course.source, where, value, rule))

    unit = "mph" if course.units == "mph" else "km/h"
    start, session = course.start, course.session
    if course.pain.safe_max > course.pain.acceptable_max:
        fail("key 'pain.safe_max'", course.pain.safe_max, "must not be above pain.acceptable_max")
    if session.cooldown_speed > start.speed:
        fail(
            "key 'session.cooldown_speed'",
            Quantity("speed", session.cooldown_speed, unit),
            f"a cool-down never speeds up: at most the start speed {start.speed:g} {unit}",
        )
    if session.warmup_min + session.cooldown_min >= start.walk_min:
        fail(
            "key 'start.walk_min'",
            Quantity("walk", start.walk_min, "min"),
            "must be longer than the warm-up and cool-down together "
            f"({session.warmup_min + session.cooldown_min:g} min)",
        )
    walk = start.walk_min
    for index, rule in enumerate(course.duration):
        if rule.up_to_min <= walk:
            fail(
                f"key 'duration' entry {index + 1} 'up_to_min'",
                Quantity("walk", rule.up_to_min, "min"),
                f"must be above the walking time before it ({walk:g} min): duration only grows",
            )
        walk = max(walk, rule.up_to_min)
    if course.speed is not None:
        step_kmh = course.speed_kmh(course.speed.step)
        if (
            not SPEED_STEP_MIN_KMH - _SPEED_STEP_SLACK_KMH
            <= step_kmh
            <= SPEED_STEP_MAX_KMH + _SPEED_STEP_SLACK_KMH
        ):
            fail(
                "key 'speed.step'",
                Quantity("speed step", course.speed.step, unit),
                "one speed step is 0.1-0.2 mph (0.16-0.32 km/h) per progression (seeds 004)",
            )
        if course.speed.up_to <= start.speed:
            fail(
                "key 'speed.up_to'",
                Quantity("speed", course.speed.up_to, unit),
                f"must be above the start speed {start.speed:g} {unit}",
            )
    if course.incline is not None and course.incline.up_to_pct <= start.incline:
        fail(
            "key 'incline.up_to_pct'",
            Quantity("incline", course.incline.up_to_pct, "%"),
            f"must be above the start incline {start.incline:g} %",
        )
    count = len(_generate(course)) if not errors else 0
    if count > LEVELS_MAX:
        fail("file", Quantity("levels", count, ""), f"at most {LEVELS_MAX} levels")
    return errors


def _steps(start: float, end: float, step: float) -> list[float]:
    """The values after `start` up to `end` in `step`s, the last one exactly `end` (rounded to 0.01)."""
    count = math.ceil((end - start) / step - 1e-9)
    return [round(min(start + step * k, end), 2) for k in range(1, count + 1)]


def _generate(course: Course) -> list[Level]:
    """The levels the rules make: start, then every duration step, then speed, then incline."""
    start = course.start
    walk, speed, incline = start.walk_min, start.speed, start.incline
    levels = [Level(1, round(walk * 60, 1), speed, incline, "start", start.source)]

    def add(change: Change, source: str) -> None:
        levels.append(Level(len(levels) + 1, round(walk * 60, 1), speed, incline, change, source))

    for rule in course.duration:
        for value in _steps(walk, rule.up_to_min, rule.step_min):
            walk = value
            add("duration", rule.source)
    if course.speed is not None:
        for value in _steps(speed, course.speed.up_to, course.speed.step):
            speed = value
            add("speed", course.speed.source)
    if course.incline is not None:
        for value in _steps(incline, course.incline.up_to_pct, course.incline.step_pct):
            incline = value
            add("incline", course.incline.source)
    return levels


_TABLES: Final[dict[str, type[BaseModel]]] = {
    "schedule": Schedule,
    "session": SessionTemplate,
    "start": Start,
    "duration": DurationRule,
    "speed": SpeedRule,
    "incline": InclineRule,
    "pain": PainRule,
}


def _known(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    table = _TABLES.get(str(loc[0])) if len(loc) >= 2 else None
    return tuple(table.model_fields) if table is not None else tuple(Course.model_fields)


def _where(loc: tuple[int | str, ...]) -> str:
    """`key 'speed.step'`, `key 'duration' entry 2 'step_min'`, `key 'sources' entry 1`, or `file`."""
    if not loc:
        return "file"
    head, rest = str(loc[0]), loc[1:]
    if rest and isinstance(rest[0], int):
        where = f"key '{head}' entry {rest[0] + 1}"
        return f"{where} '{rest[1]}'" if len(rest) >= 2 else where
    return f"key '{'.'.join(str(part) for part in loc)}'"

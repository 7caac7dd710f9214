"""Turning a course level into a program: warm-up, working block, cool-down, within the safety rules.

The ramps are sized from the effective limits (one rise at most, rises spaced by the rise interval, an
incline rise no sooner than the separation after a speed rise), so a stricter configuration gives longer
ramps, never a program that breaks it. Every generated program still goes through `check_program`, the
same static check as a program file, before anything moves: a level that cannot keep the limits (a speed
above the configured cap, say) is reported with the level, the step, the value and the rule.
"""

from __future__ import annotations

import math
from typing import Final

from retro_ftms.course.model import STEADY_MIN_S, Course, Level
from retro_ftms.errors import CourseError, ProgramError
from retro_ftms.program import Program, check_program
from retro_ftms.program.model import Quantity
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig

_EPS: Final = 1e-6


def _ceil_tenth(seconds: float) -> float:
    """Round a duration up to the program grid (0.1 s), so a ramp is never a hair too short."""
    return math.ceil(seconds * 10 - _EPS) / 10


def level_steps(
    course: Course, level: Level, limits: SafetyConfig | EffectiveLimits
) -> tuple[list[dict[str, object]], float]:
    """The `[[steps]]` of a level's program, as a program file would hold them, and the steady walk's
    length in seconds (what the warm-up, ramps and cool-down leave of the walking time)."""
    session = course.session
    warm_s, cool_s = session.warmup_min * 60, session.cooldown_min * 60
    steps: list[dict[str, object]] = [
        {
            "name": "Warm up",
            "kind": "warmup",
            "speed": session.warmup_speed,
            "duration_s": round(warm_s, 1),
            "note": "Safety clip at your hip, hands on the rails. Toe first, roll to the heel.",
        }
    ]
    used_s = 0.0
    rise_kmh = course.speed_kmh(level.speed) - course.speed_kmh(session.warmup_speed)
    if rise_kmh > _EPS:
        count = math.ceil(rise_kmh / limits.speed_rise_max_kmh - _EPS)
        ramp_s = _ceil_tenth(count * limits.rise_interval_s)
        steps.append(
            {
                "name": "Up to your pace",
                "kind": "ramp",
                "speed": level.speed,
                "duration_s": ramp_s,
                "note": "The belt speeds up in small steps. Keep your steps even.",
            }
        )
        used_s += ramp_s
    if level.incline_pct > 0:
        settle_s = _ceil_tenth(limits.rise_separation_s)
        count = math.ceil(level.incline_pct / limits.incline_rise_max_pct - _EPS)
        incline_s = _ceil_tenth(count * limits.rise_interval_s)
        steps += [
            {"name": "Settle", "kind": "hold", "speed": level.speed, "duration_s": settle_s},
            {
                "name": "Up the slope",
                "kind": "incline",
                "speed": level.speed,
                "incline": level.incline_pct,
                "duration_s": incline_s,
                "note": "The belt tilts up one step at a time. Hold the rails.",
            },
        ]
        used_s += settle_s + incline_s
    steady_s = round(level.walk_s - warm_s - cool_s - used_s, 1)
    steps.append(
        {
            "name": "Steady walk",
            "kind": "hold",
            "speed": level.speed,
            "incline": level.incline_pct,
            "duration_s": steady_s,
            "note": "A pace at which you can still talk. Stop at once on sharp pain (the ! key).",
        }
    )
    steps.append(
        {
            "name": "Cool down",
            "kind": "cooldown",
            "speed": session.cooldown_speed,
            "duration_s": round(cool_s, 1),
            "note": "Ease off. Tomorrow morning, notice how the knee feels.",
        }
    )
    return steps, steady_s


def level_program(course: Course, level: Level, limits: SafetyConfig | EffectiveLimits) -> Program:
    """The program of one level, checked like a program file; raises the first `CourseError` otherwise."""
    errors = level_errors(course, level, limits)
    if errors:
        raise errors[0]
    return _program(course, level, limits)


def _program(course: Course, level: Level, limits: SafetyConfig | EffectiveLimits) -> Program:
    data = {
        "name": f"{course.name}-{level.number}"[:40],
        "title": f"{course.title}, level {level.number}",
        "description": course.description,
        "units": course.units,
        "sources": [level.source, course.session.source],
        "steps": level_steps(course, level, limits)[0],
    }
    return Program.from_data(data, source=f"{course.source} level {level.number}")


def _level_label(course: Course, level: Level) -> str:
    minutes = f"{level.walk_s / 60:g} min"
    what = f"{minutes}, {course.speed_text(level.speed)}, incline {level.incline_pct:g} %"
    return f"level {level.number} ({what})"


def level_errors(course: Course, level: Level, limits: SafetyConfig | EffectiveLimits) -> list[CourseError]:
    """Every way the level's program breaks the rules, as `CourseError`s naming the level and the step."""
    steady_s = level_steps(course, level, limits)[1]
    label = _level_label(course, level)
    if steady_s < STEADY_MIN_S:
        return [
            CourseError(
                course.source,
                label,
                Quantity("steady walk", steady_s, "s"),
                f"the warm-up, ramps and cool-down leave less than {STEADY_MIN_S:g} s of steady walking: "
                "give this level more walking time or a smaller change",
            )
        ]
    try:
        program = _program(course, level, limits)
    except ProgramError as error:
        return [CourseError(course.source, f"{label} {error.where}", error.value, error.rule)]
    return [
        CourseError(course.source, f"{label} {error.where}", error.value, error.rule)
        for error in check_program(program, limits)
    ]


def check_course(course: Course, limits: SafetyConfig | EffectiveLimits) -> list[CourseError]:
    """Every problem of every level against these limits; empty when the whole course may run."""
    return [error for level in course.levels for error in level_errors(course, level, limits)]

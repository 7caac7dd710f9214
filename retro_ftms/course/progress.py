"""The next session of a course: which level, and why, from the sessions walked and the check-ins given.

The rules are programs.md's "Progression from session to session" (the pain-monitoring model of Thomeé
1997 and Silbernagel et al. 2007, the order of the seeds), applied to the last session of the course:

- back one level: worst pain during (or pain after) above the course's acceptable maximum (5/10), the next
  morning worse than before the session, or a session that ended on the `pain` key;
- hold the level: a stop the machine caused (link, data, control, an interrupted or failed session): it
  neither progresses nor penalizes;
- repeat the level: worst pain above the safe maximum (4-5/10), could not talk, stopped early by the
  person, or any answer unknown (no progression without known pain answers);
- progress one level: worst pain at most the safe maximum, the next morning back to baseline (morning pain
  at most the pain before), could talk, and the session completed.

A level whose program would break the effective limits is never reached: the course stays where it is and
says which limit stops it. Pure: no I/O, no clock (the caller passes `now`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from retro_ftms.course.model import Course, Level
from retro_ftms.course.past import PastSession
from retro_ftms.course.plan import level_errors, level_program
from retro_ftms.program import Program
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig

DecisionKind = Literal["progress", "repeat", "back", "hold"]

# Session ends the person did not cause (design.md's safety reasons): the machine, the link or the data
# failed, so the session says nothing about the knee.
MACHINE_REASONS: Final = frozenset(
    {
        "link_lost",
        "stale_data",
        "bad_data",
        "command_failed",
        "control_lost",
        "machine_reset",
        "stop_unconfirmed",
        "overspeed",
        "overincline",
        "speed_mismatch",
        "error",
    }
)
PAIN_REASON: Final = "pain"
_RULES_SOURCE: Final = "programs.md, Progression from session to session"
_WEEK: Final = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Decision:
    """The next session of a course.

    `decision` is design.md's `progression` field; `level` the level of the next session (from 1);
    `previous_level` the level of the session that decided it (None for the first session); `reason` one
    short paragraph citing the rule and the check-in that decided it; `source` the rule's citation;
    `session_id` the past session that decided it; `rest_warning` a warning when the session comes sooner
    than the course's rest advice (None otherwise).
    """

    course: str
    decision: DecisionKind
    level: int
    previous_level: int | None
    reason: str
    source: str
    program: Program
    session_id: int | None
    rest_warning: str | None


@dataclass(frozen=True, slots=True)
class _Verdict:
    decision: DecisionKind
    reason: str
    source: str


def _pain(value: int | None) -> str:
    return "unknown" if value is None else f"{value}/10"


def judge(course: Course, last: PastSession, *, morning_pending: bool = False) -> _Verdict:
    """What the last session's end and check-ins say, before the levels and limits are applied.

    `morning_pending`: the session has just ended, so its next-morning answer cannot be known yet; when
    that is the only answer missing and the others would move on, the reason says so.
    """
    pain = course.pain
    pain_source = pain.source
    worst = max((p for p in (last.worst_pain, last.pain_after) if p is not None), default=None)
    if last.outcome in {"stopped", "error"} and last.reason == PAIN_REASON:
        return _Verdict("back", "the last session ended on the pain key: one level back", pain_source)
    if worst is not None and worst > pain.acceptable_max:
        return _Verdict(
            "back",
            f"pain during the last session reached {worst}/10, above {pain.acceptable_max}/10 "
            "(too much in the pain-monitoring model): one level back",
            pain_source,
        )
    if (
        last.morning_pain is not None
        and last.pain_before is not None
        and last.morning_pain > last.pain_before
    ):
        return _Verdict(
            "back",
            f"the next morning the knee was worse than before the session ({last.morning_pain}/10 against "
            f"{last.pain_before}/10): one level back",
            pain_source,
        )
    if last.outcome in {"error", "interrupted"} or (
        last.outcome == "stopped" and last.reason in MACHINE_REASONS
    ):
        why = last.reason or last.outcome
        return _Verdict(
            "hold",
            f"the last session ended on a machine problem ({why}), not on your knee: the same level again, "
            "with no step back",
            _RULES_SOURCE,
        )
    if last.outcome == "stopped":
        return _Verdict(
            "repeat",
            f"the last session was stopped before its end ({last.reason or 'stopped'}): the same level again",
            "seeds 001: stop before fatigue",
        )
    unknown = [
        name
        for name, value in (
            ("pain before", last.pain_before),
            ("worst pain during", last.worst_pain),
            ("next-morning pain", last.morning_pain),
            ("could you talk", last.talk),
        )
        if value is None
    ]
    if unknown == ["next-morning pain"] and morning_pending:
        verdict = judge(course, dataclasses.replace(last, morning_pain=last.pain_before))
        if verdict.decision == "progress":
            return _Verdict(
                "repeat",
                f"worst pain {_pain(worst)} and you could talk; the next-morning answer is still to come: "
                "if tomorrow morning the knee is back to how it was before the session, the next session "
                "moves up a level (no level moves on without known pain answers)",
                pain_source,
            )
        return verdict
    if unknown:
        return _Verdict(
            "repeat",
            f"not every check-in of the last session is known ({', '.join(unknown)}): the same level again, "
            "as no level moves on without known pain answers",
            _RULES_SOURCE,
        )
    assert last.worst_pain is not None  # checked as unknown above
    if worst is not None and worst > pain.safe_max:
        return _Verdict(
            "repeat",
            f"worst pain was {worst}/10, acceptable (up to {pain.acceptable_max}) but above safe "
            f"(0-{pain.safe_max}): the same level again",
            pain_source,
        )
    if last.talk is False:
        return _Verdict(
            "repeat",
            "you could not talk the whole time: the same level again, at a pace you can talk at",
            "seeds 001: a pace at which you can still talk",
        )
    return _Verdict(
        "progress",
        f"worst pain {_pain(worst)}, next morning back to how it was ({last.morning_pain}/10, before "
        f"{last.pain_before}/10) and you could talk: one level up",
        pain_source,
    )


def rest_warning(course: Course, walked: Sequence[PastSession], now: datetime) -> str | None:
    """A warning when the next session comes sooner than the course's rest, or beyond its weekly count.

    Every session the person walked counts (oldest first), whatever its course: the knee rests or not.
    """
    if not walked:
        return None
    last = walked[-1]
    ended = last.ended_at or last.started_at
    rest = now - ended
    schedule = course.schedule
    if rest < timedelta(hours=schedule.min_rest_h):
        minutes = max(rest.total_seconds() / 60, 0.0)
        ago = f"{minutes:.0f} min" if minutes < 60 else f"{minutes / 60:.0f} h"
        return (
            f"Your last session ended {ago} ago; this course advises at least "
            f"{schedule.min_rest_h:g} h of rest between sessions ({schedule.source}). Rest first if you can."
        )
    this_week = sum(1 for session in walked if now - session.started_at < _WEEK)
    if this_week >= schedule.sessions_per_week:
        return (
            f"You have walked {this_week} sessions in the last 7 days; it plans "
            f"{schedule.sessions_per_week} a week ({schedule.source})."
        )
    return None


def _fits(course: Course, level: Level, limits: SafetyConfig | EffectiveLimits) -> bool:
    return not level_errors(course, level, limits)


def decide(
    course: Course,
    past_sessions: Sequence[PastSession],
    now: datetime,
    limits: SafetyConfig | EffectiveLimits,
    *,
    morning_pending: bool = False,
) -> Decision:
    """The next session of `course` for the person whose sessions (any course) are `past_sessions`.

    Only the sessions of this course count, the newest deciding. The level returned always fits the
    limits: a level that would not is never entered (the course stays below it and says why). Raises
    `CourseError` when even the first level breaks the limits. `morning_pending`: the newest session has
    just ended (the decision logged after it), so its next-morning answer is still to come.
    """
    walked = sorted(past_sessions, key=lambda s: s.started_at)
    sessions = [s for s in walked if s.course == course.name]
    warning = rest_warning(course, walked, now)
    if not sessions:
        first = course.level(1)
        return Decision(
            course=course.name,
            decision="hold",
            level=1,
            previous_level=None,
            reason=f"The first session of {course.title}: level 1 ({_describe(course, first)}).",
            source=first.source,
            program=level_program(course, first, limits),
            session_id=None,
            rest_warning=warning,
        )
    last = sessions[-1]
    previous = course.level(last.course_level or 1).number
    verdict = judge(course, last, morning_pending=morning_pending)
    target = {"progress": previous + 1, "back": previous - 1}.get(verdict.decision, previous)
    decision, reason, source = verdict.decision, verdict.reason, verdict.source
    if target > len(course.levels):
        decision, target = "repeat", previous
        reason += f"; but level {previous} is the last of this course, so it stays there"
    elif target < 1:
        target = 1
        reason += "; level 1 is the first, so it stays there"
    level = course.level(target)
    if decision == "progress" and not _fits(course, level, limits):
        (error, *_) = level_errors(course, level, limits)
        decision, level = "repeat", course.level(previous)
        reason += (
            f"; but level {target} would break the safety limits ({error.rule}), so it stays at {previous}"
        )
    while not _fits(course, level, limits) and level.number > 1:  # a tightened configuration
        level = course.level(level.number - 1)
    if level.number != target and decision != "repeat":
        reason += f"; the safety limits allow no more than level {level.number}"
    text = f"Level {level.number} ({_describe(course, level)}): {reason}."
    if decision == "progress":
        text += f" This level changes the {level.change} ({level.source})."
    return Decision(
        course=course.name,
        decision=decision,
        level=level.number,
        previous_level=previous,
        reason=text[0].upper() + text[1:],
        source=f"{source}; level {level.number}: {level.source}",
        program=level_program(course, level, limits),
        session_id=last.session_id,
        rest_warning=warning,
    )


def _describe(course: Course, level: Level) -> str:
    incline = f", incline {level.incline_pct:g} %" if level.incline_pct else ""
    return f"{level.walk_s / 60:g} minutes at {course.speed_text(level.speed)}{incline}"

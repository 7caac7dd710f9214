"""Property tests over random courses of check-ins: thousands of courses, every decision against the rules.

Each example walks one course for up to 30 sessions: the next level comes from `decide`, the session's
end and check-in answers are random (including unknown answers and machine stops), and every decision is
judged by the rules written again here from programs.md, not by the code under test.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retro_ftms.course import Course, PastSession, decide, level_errors, load_course
from retro_ftms.errors import CourseError
from retro_ftms.program import check_program, expand
from retro_ftms.safety.limits import SafetyConfig
from tests.course.helpers import session
from tests.program.rules import rule_violations

COURSES = {name: load_course(name) for name in ("knee-six-weeks", "gentle-start")}
MACHINE = ["link_lost", "stale_data", "bad_data", "command_failed", "control_lost", "machine_reset"]
PERSON = ["user", "user_stop", "safety_key", "signal", "heart_rate"]

pain = st.none() | st.integers(min_value=0, max_value=10)
ends = st.sampled_from(
    [("completed", None)] * 6
    + [("stopped", "pain")]
    + [("stopped", reason) for reason in MACHINE + PERSON]
    + [("error", "error"), ("interrupted", None)]
)
answers = st.fixed_dictionaries(
    {
        "pain_before": pain,
        "worst_pain": pain,
        "pain_after": pain,
        "morning_pain": pain,
        "talk": st.none() | st.booleans(),
        "end": ends,
    }
)
limits = st.builds(
    SafetyConfig,
    max_speed_kmh=st.sampled_from([1.7, 2.0, 2.5, 3.0, 3.3, 4.0, 5.9]),
    max_incline_pct=st.sampled_from([0.0, 1.0, 1.5, 5.0]),
    speed_rise_max_kmh=st.sampled_from([0.1, 0.2, 0.32]),
    rise_interval_s=st.sampled_from([15.0, 20.0]),
)


def allowed(course: Course, last: PastSession) -> set[str]:
    """Which decisions programs.md allows after `last` (before the course's first and last level)."""
    answers = (last.pain_before, last.worst_pain, last.morning_pain, last.talk)
    worst = max((p for p in (last.worst_pain, last.pain_after) if p is not None), default=None)
    too_much = worst is not None and worst > course.pain.acceptable_max
    worse_morning = (
        last.morning_pain is not None
        and last.pain_before is not None
        and last.morning_pain > last.pain_before
    )
    if last.reason == "pain" or too_much or worse_morning:
        return {"back"}
    if last.outcome in {"error", "interrupted"} or last.reason in MACHINE:
        return {"hold"}
    if (
        last.outcome == "completed"
        and None not in answers
        and worst is not None
        and worst <= course.pain.safe_max
        and last.morning_pain <= last.pain_before  # type: ignore[operator]
        and last.talk
    ):
        return {"progress"}
    return {"repeat"}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(COURSES)),
    safety=limits,
    start=st.integers(min_value=1, max_value=30),
    script=st.lists(answers, min_size=1, max_size=30),
)
def test_random_check_ins_never_break_a_rule_or_a_limit(
    name: str, safety: SafetyConfig, start: int, script: list[dict[str, Any]]
) -> None:
    course = COURSES[name]
    if level_errors(course, course.level(1), safety):
        # Limits so strict that even the first level cannot keep them: the course refuses, nothing moves.
        with pytest.raises(CourseError):
            decide(course, [], session(1, 1).started_at, safety)
        return
    past: list[PastSession] = []
    level = min(start, len(course.levels))
    for number, given_answers in enumerate(script, start=1):
        outcome, reason = given_answers.pop("end")
        past.append(session(number, level, course=name, outcome=outcome, reason=reason, **given_answers))
        decision = decide(course, past, session(number + 1, level).started_at, safety)
        last = past[-1]
        # The program of the next session passes the static check and the contract's rules.
        assert check_program(decision.program, safety) == []
        assert rule_violations(decision.program, expand(decision.program, safety), safety) == []
        before, after = course.level(level), course.level(decision.level)
        # One thing at a time: speed and incline never rise together, at most one level a session.
        assert not (after.speed > before.speed and after.incline_pct > before.incline_pct)
        assert abs(decision.level - level) <= 1 or decision.decision != "progress"
        if decision.decision == "progress":
            # No progression without known pain answers, and only on good ones.
            assert decision.level == level + 1
            assert None not in (last.pain_before, last.worst_pain, last.morning_pain, last.talk)
            assert last.worst_pain is not None
            assert last.worst_pain <= course.pain.safe_max
        else:
            assert decision.level <= level
        expected = allowed(course, last)
        if expected == {"progress"}:
            expected |= {"repeat"}  # at the last level, or when the next level breaks the limits
        assert decision.decision in expected, (last, decision.reason)
        if decision.decision == "back":
            assert decision.level == max(level - 1, 1) or decision.level < level
        if decision.decision in {"hold", "repeat"}:
            assert decision.level <= level
        if last.morning_pain is None:
            # Right after the session (the event logged then): its next morning is still to come.
            pending = decide(course, past, last.started_at, safety, morning_pending=True)
            assert pending.decision != "progress"
            assert pending.level <= level
        level = decision.level
    assert past[-1].started_at - past[0].started_at >= timedelta(0)

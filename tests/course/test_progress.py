"""The progression rules over a scripted six-week course (virtual dates, no store, no clock)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from retro_ftms.course import PastSession, decide, load_course
from retro_ftms.safety.limits import SafetyConfig
from tests.course.helpers import MONDAY, session

GOOD: dict[str, Any] = {}
# (what the session's check-ins and end were, the decision it leads to, the level of the next session)
SIX_WEEKS: list[tuple[str, dict[str, Any], str, int]] = [
    ("good", GOOD, "progress", 2),
    ("good", GOOD, "progress", 3),
    ("worst pain 4", {"worst_pain": 4}, "repeat", 3),
    ("worst pain 5", {"worst_pain": 5, "pain_after": 3}, "repeat", 3),
    ("good", GOOD, "progress", 4),
    ("worse next morning", {"morning_pain": 4}, "back", 3),
    ("good", GOOD, "progress", 4),
    ("pain key", {"outcome": "stopped", "reason": "pain", "worst_pain": None}, "back", 3),
    ("link lost", {"outcome": "stopped", "reason": "link_lost", "worst_pain": None}, "hold", 3),
    ("good", GOOD, "progress", 4),
    ("morning unknown", {"morning_pain": None}, "repeat", 4),
    ("could not talk", {"talk": False}, "repeat", 4),
    ("worst pain 7", {"worst_pain": 7, "pain_after": 6}, "back", 3),
    ("good", GOOD, "progress", 4),
    ("interrupted", {"outcome": "interrupted", "ended_at": None, "morning_pain": None}, "hold", 4),
    ("good", GOOD, "progress", 5),
    ("stopped by the person", {"outcome": "stopped", "reason": "user"}, "repeat", 5),
    ("good", GOOD, "progress", 6),
]


def test_a_scripted_six_weeks_climbs_holds_and_steps_back_as_the_rules_say() -> None:
    course = load_course("knee-six-weeks")
    limits = SafetyConfig()
    past: list[PastSession] = []
    level = decide(course, past, MONDAY, limits).level
    assert level == 1
    for number, (what, answers, expected, next_level) in enumerate(SIX_WEEKS, start=1):
        past.append(session(number, level, **answers))
        now = session(number + 1, level).started_at  # Monday, Wednesday, Friday
        decision = decide(course, past, now, limits)
        assert (decision.decision, decision.level) == (expected, next_level), (number, what, decision.reason)
        assert decision.previous_level == level
        assert decision.session_id == number
        assert decision.rest_warning is None
        assert f"Level {next_level} (" in decision.reason
        assert decision.program.name == f"knee-six-weeks-{next_level}"
        level = decision.level
    assert len(past) == 18  # 3 a week for 6 weeks


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        ({"worst_pain": 4}, "worst pain was 4/10, acceptable (up to 5) but above safe (0-3)"),
        ({"morning_pain": 5, "pain_before": 2}, "worse than before the session (5/10 against 2/10)"),
        ({"outcome": "stopped", "reason": "pain"}, "ended on the pain key"),
        ({"outcome": "stopped", "reason": "stale_data"}, "machine problem (stale_data)"),
        ({"worst_pain": None, "talk": None}, "not every check-in of the last session is known"),
    ],
)
def test_the_reason_cites_the_check_in_and_the_rule(answers: dict[str, Any], words: str) -> None:
    course = load_course("knee-six-weeks")
    decision = decide(course, [session(1, 3, **answers)], MONDAY + timedelta(days=3), SafetyConfig())
    assert words in decision.reason
    assert decision.source


def test_no_progress_when_any_answer_is_unknown() -> None:
    course = load_course("knee-six-weeks")
    for field in ("pain_before", "worst_pain", "morning_pain", "talk"):
        past = [session(1, 3, **{field: None})]
        decision = decide(course, past, MONDAY + timedelta(days=3), SafetyConfig())
        assert (decision.decision, decision.level) == ("repeat", 3), field


def test_a_session_too_soon_gets_a_clear_warning() -> None:
    course = load_course("knee-six-weeks")
    past = [session(1, 1)]
    soon = decide(course, past, past[0].ended_at + timedelta(hours=5), SafetyConfig())  # type: ignore[operator]
    assert soon.rest_warning is not None
    assert "ended 5 h ago" in soon.rest_warning
    assert "at least 24 h of rest" in soon.rest_warning
    sooner = decide(course, past, past[0].ended_at + timedelta(minutes=20), SafetyConfig())  # type: ignore[operator]
    assert sooner.rest_warning is not None
    assert "ended 20 min ago" in sooner.rest_warning
    later = decide(course, past, past[0].started_at + timedelta(days=2), SafetyConfig())
    assert later.rest_warning is None


def test_more_sessions_a_week_than_planned_is_warned() -> None:
    course = load_course("knee-six-weeks")
    past = [dataclasses.replace(session(n, 1), started_at=MONDAY + timedelta(days=n - 1)) for n in (1, 2, 3)]
    past = [dataclasses.replace(s, ended_at=s.started_at + timedelta(minutes=6)) for s in past]
    decision = decide(course, past, MONDAY + timedelta(days=3, hours=12), SafetyConfig())
    assert decision.rest_warning is not None
    assert "3 sessions in the last 7 days" in decision.rest_warning


def test_the_last_level_repeats_and_a_capped_speed_never_is_entered() -> None:
    course = load_course("knee-six-weeks")
    top = len(course.levels)
    at_top = decide(course, [session(1, top)], MONDAY + timedelta(days=2), SafetyConfig())
    assert (at_top.decision, at_top.level) == ("repeat", top)
    capped = SafetyConfig(max_speed_kmh=3.0)  # level 21 (2.0 mph) is above it
    stays = decide(course, [session(1, 20)], MONDAY + timedelta(days=2), capped)
    assert (stays.decision, stays.level) == ("repeat", 20)
    assert "safety.max_speed_kmh" in stays.reason
    tightened = decide(course, [session(1, 23)], MONDAY + timedelta(days=2), capped)
    assert tightened.level == 20


def test_other_courses_sessions_do_not_count() -> None:
    course = load_course("knee-six-weeks")
    past = [session(1, 4, course="gentle-start")]
    decision = decide(course, past, MONDAY + timedelta(days=2), SafetyConfig())
    assert (decision.level, decision.previous_level) == (1, None)

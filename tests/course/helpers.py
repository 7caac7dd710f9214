"""Past sessions for course tests: a completed session with good answers, changed by keyword."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from retro_ftms.course import PastSession

MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def session(number: int, level: int, *, course: str = "knee-six-weeks", **changes: Any) -> PastSession:
    """Session `number` (from 1) at `level`: Monday, Wednesday, Friday, ..., all answers good."""
    week, slot = divmod(number - 1, 3)
    started = MONDAY + timedelta(weeks=week, days=2 * slot)
    base = PastSession(
        session_id=number,
        started_at=started,
        ended_at=started + timedelta(minutes=10),
        person="me",
        program=f"{course}-{level}",
        course=course,
        course_level=level,
        outcome="completed",
        reason=None,
        simulated=True,
        walked_s=600.0,
        distance_m=300.0,
        top_speed_kmh=1.6,
        top_incline_pct=0.0,
        pain_before=2,
        worst_pain=2,
        pain_after=2,
        morning_pain=2,
        talk=True,
    )
    return dataclasses.replace(base, **changes)

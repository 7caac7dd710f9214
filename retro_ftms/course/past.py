"""One past session as a course sees it: what was walked and what the person said about their knee.

The history store (`retro_ftms.history`) builds these from its tables; the course rules read them and
nothing else, so the rules stay pure and testable without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

PastOutcome = Literal["completed", "stopped", "error", "interrupted"]


@dataclass(frozen=True, slots=True)
class PastSession:
    """A recorded session. Pain answers are 0-10 (NRS) and None when unknown (not asked, not answered).

    `outcome` is `interrupted` when the session never recorded its end (the process was killed);
    `morning_pain` is the next morning's answer, given before the following session or by
    `retro-ftms checkin --morning`.
    """

    session_id: int
    started_at: datetime
    ended_at: datetime | None
    person: str
    program: str
    course: str | None
    course_level: int | None
    outcome: PastOutcome
    reason: str | None
    simulated: bool
    walked_s: float
    distance_m: float
    top_speed_kmh: float
    top_incline_pct: float
    pain_before: int | None
    worst_pain: int | None
    pain_after: int | None
    morning_pain: int | None
    talk: bool | None

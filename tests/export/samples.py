"""Sessions built by hand for the export and report tests: what the history store hands the exporters."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from retro_ftms.course.past import PastSession
from retro_ftms.export import RecordedSession
from retro_ftms.history.store import SafetyRecord, Sample

# A start with milliseconds and a zone east of UTC: the files must carry both right.
START: Final = datetime(2026, 12, 7, 15, 0, 0, 640000, tzinfo=timezone(timedelta(hours=1)))


PAST: Final = PastSession(
    session_id=12,
    started_at=START,
    ended_at=START + timedelta(minutes=7),
    person="ana",
    program="gentle-start",
    course=None,
    course_level=None,
    outcome="completed",
    reason=None,
    simulated=True,
    walked_s=417.0,
    distance_m=230.0,
    top_speed_kmh=2.4,
    top_incline_pct=2.0,
    pain_before=2,
    worst_pain=3,
    pain_after=2,
    morning_pain=None,
    talk=True,
)


def past(**changes: Any) -> PastSession:
    """A past session of ana's (`PAST`) with `changes`."""
    return dataclasses.replace(PAST, **changes)


def walk(seconds: int = 420, *, hr: bool = True) -> list[Sample]:
    """A warm-up, a working block with incline and a cool-down; no HR in the first 20 s (strap pairing)."""
    rows = []
    distance = 0.0
    for t in range(seconds):
        step = 0 if t < 120 else (1 if t < 300 else 2)
        speed = (1.6, 2.4, 1.2)[step] if t >= 3 else 0.0
        distance += speed / 3.6
        rows.append(
            Sample(
                t_s=float(t),
                speed_kmh=speed,
                incline_pct=(0.0, 2.0, 0.0)[step],
                distance_m=round(distance, 3),
                hr_bpm=(88 + t // 10) if hr and t >= 20 else None,
                step_index=step if t >= 3 else None,
            )
        )
    return rows


def session(
    samples: Sequence[Sample] | None = None, *, safety: Sequence[SafetyRecord] = (), reason: str | None = None
) -> RecordedSession:
    """Session 12 of ana's: `walk()` unless other samples are given; stopped when a `reason` is given."""
    return RecordedSession(
        past=past(outcome="completed" if reason is None else "stopped", reason=reason),
        samples=walk() if samples is None else samples,
        safety=safety,
        step_names=("warm-up", "walk", "cool-down"),
    )

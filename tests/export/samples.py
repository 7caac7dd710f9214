"""Sessions built by hand for the export and report tests: what the history store hands the exporters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from retro_ftms.export import RecordedSession, SafetyMark

# A start with milliseconds and a zone east of UTC: the files must carry both right.
START: Final = datetime(2026, 12, 7, 15, 0, 0, 640000, tzinfo=timezone(timedelta(hours=1)))


@dataclass(frozen=True, slots=True)
class Row:
    """One second as the history store's `Sample` holds it."""

    t_s: float
    speed_kmh: float
    incline_pct: float
    distance_m: float
    hr_bpm: int | None
    step_index: int | None


def walk(seconds: int = 420, *, hr: bool = True) -> list[Row]:
    """A warm-up, a working block with incline and a cool-down; no HR in the first 20 s (strap pairing)."""
    rows = []
    distance = 0.0
    for t in range(seconds):
        step = 0 if t < 120 else (1 if t < 300 else 2)
        speed = (1.6, 2.4, 1.2)[step] if t >= 3 else 0.0
        distance += speed / 3.6
        rows.append(
            Row(
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
    rows: Sequence[Row] | None = None, *, safety: Sequence[SafetyMark] = (), outcome: str = "completed"
) -> RecordedSession:
    return RecordedSession(
        session_id=12,
        started_at=START,
        person="ana",
        program="gentle-start",
        simulated=True,
        outcome=outcome,
        reason=None if outcome == "completed" else "pain",
        samples=walk() if rows is None else rows,
        safety=safety,
        step_names=("warm-up", "walk", "cool-down"),
    )

"""What the report reads of each past session (the course's `PastSession` is one)."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

# The pain-monitoring model's bands (programs.md): 0-3 safe, 4-5 acceptable, above 5 stop and step back.
PAIN_SAFE_MAX: Final = 3
PAIN_ACCEPTABLE_MAX: Final = 5
PAIN_SCALE_MAX: Final = 10


class CoursePoint(Protocol):
    """One past session of the course, as far as the report shows it (pain 0-10, None unknown)."""

    @property
    def session_id(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def walked_s(self) -> float: ...
    @property
    def top_speed_kmh(self) -> float: ...
    @property
    def pain_before(self) -> int | None: ...
    @property
    def worst_pain(self) -> int | None: ...
    @property
    def pain_after(self) -> int | None: ...
    @property
    def morning_pain(self) -> int | None: ...

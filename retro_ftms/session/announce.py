"""Rises announced ahead (spoken cues, issue 13): what the runner will raise next, and when it may.

With announcements on, the runner tells `plan` listeners of each speed or incline rise `lead_s` clock
seconds before it is due, and never sends a rise sooner than `lead_s` after its announcement (the first
speed after a Start, or a rise after a resume, waits). With them off (`lead_s` None) nothing here changes
what is sent or when. Decreases are never announced ahead, never delayed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from retro_ftms.clock import Clock
from retro_ftms.events import ChangeQuantity
from retro_ftms.listeners import Listeners
from retro_ftms.program import Segment
from retro_ftms.safety import SafetyGuard

# Targets closer than these are the same target (below the FTMS resolution of 0.01 km/h and 0.1 %), as
# the runner compares them.
SAME_SPEED_KMH: Final = 0.005
SAME_INCLINE_PCT: Final = 0.05
# How much further than the lead the next segments are looked at (simulated seconds): the runner's tick,
# so that it wakes exactly when the lead begins rather than up to a tick late.
LOOK_FURTHER_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """A rise about to be commanded: `value` of `quantity`, due at clock time `at_s` (later if the person
    pauses)."""

    quantity: ChangeQuantity
    value: float
    at_s: float


class RiseAnnouncer:
    """The runner's announcements: `plan` listeners run inline when a rise is announced."""

    def __init__(self, lead_s: float | None, clock: Clock) -> None:
        self.plan: Final = Listeners[PlannedChange]("plan")
        self._lead_s = lead_s
        self._clock = clock
        self._announced: tuple[PlannedChange, float] | None = None  # the rise announced, and when
        self.wake_at_s = math.inf  # clock time the next rise is to be announced

    def look_ahead(
        self, guard: SafetyGuard, segments: Sequence[Segment], segment: Segment, program_time_s: float
    ) -> None:
        """Announce the next rise once it is `lead_s` away (or now, when it is nearer: then it waits),
        unless it was announced already; else note when to look again (`wake_at_s`)."""
        self.wake_at_s = math.inf
        if self._lead_s is None:
            return
        change = self._next_rise(guard, segments, segment, program_time_s, self._lead_s + LOOK_FURTHER_S)
        if change is None or self._is_announced(change.quantity, change.value):
            return
        now = self._clock.now()
        if change.at_s - self._lead_s > now:
            self.wake_at_s = change.at_s - self._lead_s
            return
        change = PlannedChange(change.quantity, change.value, max(change.at_s, now + self._lead_s))
        self.plan.emit(change)
        # Stamped after the listeners ran, so that whatever they queued is at least `lead_s` ahead.
        self._announced = (change, self._clock.now())

    def gate(self, quantity: ChangeQuantity, value: float) -> float:
        """The clock time from which this rise may go out: at once without announcements, `lead_s` after
        its announcement with them (never, until it has been announced)."""
        if self._lead_s is None:
            return -math.inf
        if self._announced is None or not self._is_announced(quantity, value):
            return math.inf
        return self._announced[1] + self._lead_s

    def sent(self) -> None:
        """The announced rise went out: the next one needs its own announcement."""
        self._announced = None

    def _next_rise(
        self,
        guard: SafetyGuard,
        segments: Sequence[Segment],
        segment: Segment,
        program_time_s: float,
        horizon_s: float,
    ) -> PlannedChange | None:
        """The first rise of the segments from `segment` on that start within `horizon_s` of program time,
        as the guard would allow it now (None: no rise there, or none possible: paused, holding, latched)."""
        now = self._clock.now()
        current_incline = guard.target_incline_pct or 0.0
        for later in segments[segments.index(segment) :]:
            ahead_s = max(0.0, later.start_s - program_time_s)
            if ahead_s > horizon_s:
                return None
            speed = guard.speed_step(later.target_speed_kmh)
            if speed.value > guard.target_speed_kmh + SAME_SPEED_KMH and speed.not_before_s < math.inf:
                return PlannedChange("speed", speed.value, max(now + ahead_s, speed.not_before_s))
            incline = guard.incline_step(later.target_incline_pct)
            if incline.value > current_incline + SAME_INCLINE_PCT and incline.not_before_s < math.inf:
                return PlannedChange("incline", incline.value, max(now + ahead_s, incline.not_before_s))
        return None

    def _is_announced(self, quantity: ChangeQuantity, value: float) -> bool:
        if self._announced is None:
            return False
        change = self._announced[0]
        same = SAME_SPEED_KMH if quantity == "speed" else SAME_INCLINE_PCT
        return change.quantity == quantity and abs(change.value - value) < same

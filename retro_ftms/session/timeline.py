"""What the guided runner and the coaching session share: the program's segments as a timeline (which
segment is current, how a step is announced), the edge's requests and the wake-up that carries them to the
session's own task, and how a session's end is reported (`SessionResult`, its exit code).

The two walk the same timeline in different ways (one drives the belt through the guard, the other tells
the person what to set on the console); each keeps its own control loop here left to it.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from retro_ftms.clock import Clock
from retro_ftms.events import PERSON_STOP_REASONS, EventBus, Outcome, SafetyReason, StepEvent
from retro_ftms.program import Segment

if TYPE_CHECKING:
    from retro_ftms.events import StopConfirmation

EXIT_COMPLETED: Final = 0
EXIT_SAFETY_STOP: Final = 3
EXIT_INTERRUPTED: Final = 130
EXIT_INTERNAL_ERROR: Final = 1

_PERSON_REASONS: Final = PERSON_STOP_REASONS  # exit 130: the person stopped it

Request = tuple[Literal["stop"], SafetyReason] | tuple[Literal["pause", "resume"], str]


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How a session ended, and the process exit code design.md assigns to it."""

    outcome: Outcome
    reason: str | None
    exit_code: int
    program_time_s: float
    # The guard confirmed the belt stopped from fresh Treadmill Data (after a reconnect too); None: unknown.
    belt_stopped: bool | None = None
    # What confirmed it (zero records in a row, or a stopped status with a zero record); None: not confirmed.
    stop_confirmed_by: StopConfirmation | None = None

    @classmethod
    def stopped(cls, reason: str, program_time_s: float, belt_stopped: bool | None) -> SessionResult:
        """A `stopped` end: exit 130 when the person stopped it, 3 for a safety stop."""
        code = EXIT_INTERRUPTED if reason in _PERSON_REASONS else EXIT_SAFETY_STOP
        return cls("stopped", reason, code, program_time_s, belt_stopped)


def segment_at(segments: Sequence[Segment], t: float) -> Segment:
    """The segment running at program time `t` (the last one once the program is over)."""
    for segment in segments:
        if t < segment.end_s:
            return segment
    return segments[-1]


def step_event(segments: Sequence[Segment], segment: Segment) -> StepEvent:
    """The `step` event for the step `segment` belongs to: its final targets and its whole duration."""
    step_segments = [s for s in segments if s.step_index == segment.step_index]
    return StepEvent(
        index=segment.step_index,
        name=segment.step_name,
        target_speed_kmh=step_segments[-1].target_speed_kmh,
        target_incline_pct=step_segments[-1].target_incline_pct,
        duration_s=round(step_segments[-1].end_s - step_segments[0].start_s, 3),
    )


class TimelineSession(abc.ABC):
    """The part of `SessionRunner` and `CoachingSession` that is the same: `SessionControl` requests queued
    for the session's own task (so the caller never waits for the treadmill), program time, the current
    step and the wake-up between ticks."""

    def __init__(self, *, segments: Sequence[Segment], clock: Clock, bus: EventBus) -> None:
        if not segments:
            raise ValueError("a session needs at least one segment")
        self._segments = tuple(segments)
        self._clock = clock
        self._bus = bus
        self._requests: asyncio.Queue[Request] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._program_time_s = 0.0
        self._step_index = -1
        self.total_duration_s: Final = self._segments[-1].end_s

    # --- SessionControl -----------------------------------------------------------------------------------

    def request_stop(self, reason: SafetyReason) -> None:
        self._requests.put_nowait(("stop", reason))
        self._wake.set()

    def request_pause(self, source: str) -> None:
        self._requests.put_nowait(("pause", source))
        self._wake.set()

    def request_resume(self, source: str) -> str | None:
        if self._is_latched():
            return "no resume after a safety stop"
        if not self._is_paused():
            return "not paused by the person"
        self._requests.put_nowait(("resume", source))
        self._wake.set()
        return None

    @abc.abstractmethod
    def _is_latched(self) -> bool:
        """A safety stop has ended the session (no resume after it)."""

    @abc.abstractmethod
    def _is_paused(self) -> bool:
        """The session is paused by the person (the only pause a resume may end)."""

    # --- the timeline ---------------------------------------------------------------------------------------

    @property
    def program_time_s(self) -> float:
        return self._program_time_s

    def _segment_at(self, t: float) -> Segment:
        return segment_at(self._segments, t)

    def _announce_step(self, segment: Segment) -> None:
        self._step_index = segment.step_index
        self._bus.publish(step_event(self._segments, segment))

    async def _sleep(self, horizon_s: float) -> None:
        """Sleep up to `horizon_s` simulated seconds, waking at once when `_wake` is set meanwhile (a
        request, a latch, a report)."""
        self._wake.clear()
        try:
            async with self._clock.timeout(max(horizon_s, 0.0)):
                await self._wake.wait()
        except TimeoutError:
            pass

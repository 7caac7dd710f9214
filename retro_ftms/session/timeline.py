"""A program's expanded segments as a timeline: which segment is current, and how a step is announced.

Shared by the guided runner and the coaching session, which walk the same timeline in different ways.
"""

from __future__ import annotations

from collections.abc import Sequence

from retro_ftms.events import StepEvent
from retro_ftms.program import Segment


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

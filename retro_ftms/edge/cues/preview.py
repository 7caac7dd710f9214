"""`programs preview`: a program's cues rendered on a virtual clock, with no treadmill and no belt.

The session is played as the runner would walk it with cues on (each step at its planned time, each rise
announced `lead_s` ahead, the first speed `lead_s` after the Start) through the same `CueLayer`; the
clock jumps from one cue to the next, so the file holds every cue one after another, not the real pauses.
"""

from __future__ import annotations

from typing import Final

from retro_ftms.clock import Clock
from retro_ftms.edge.cues.layer import CueLayer
from retro_ftms.edge.cues.speech import Voice
from retro_ftms.edge.cues.words import Units
from retro_ftms.events import (
    ChangeQuantity,
    CommandEvent,
    CommandOp,
    CueEvent,
    EndEvent,
    Event,
    EventBus,
    StateEvent,
)
from retro_ftms.program import Program, Segment, expand
from retro_ftms.safety.limits import SafetyConfig
from retro_ftms.session.announce import PlannedChange
from retro_ftms.session.timeline import step_event

_OPS: Final[dict[ChangeQuantity, CommandOp]] = {"speed": "set_speed", "incline": "set_incline"}
VALUE_EPSILON: Final = 1e-6


class VirtualClock(Clock):
    """A clock that stands still until told to move: a preview's whole session takes no time."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0

    def now(self) -> float:
        return self.t


def collect_cues(bus: EventBus) -> list[CueEvent]:
    """The list every `cue` event published on `bus` from now on is appended to."""
    said: list[CueEvent] = []

    def collect(_t: float, event: Event) -> None:
        if isinstance(event, CueEvent):
            said.append(event)

    bus.subscribe(collect)
    return said


def timeline(segments: list[Segment], lead_s: float) -> list[tuple[float, Event | PlannedChange]]:
    """What the session's bus and plan would carry, by clock time (the Start at 0)."""
    items: list[tuple[float, Event | PlannedChange]] = [
        (0.0, StateEvent("running")),
        (0.0, CommandEvent("start")),
    ]
    current: dict[ChangeQuantity, float] = {"speed": 0.0, "incline": 0.0}
    step = -1
    for segment in segments:
        start = segment.start_s
        if segment.step_index != step:
            step = segment.step_index
            items.append((start, step_event(segments, segment)))
        targets: dict[ChangeQuantity, float] = {
            "speed": segment.target_speed_kmh,
            "incline": segment.target_incline_pct,
        }
        for quantity, value in targets.items():
            if abs(value - current[quantity]) < VALUE_EPSILON:
                continue
            at = start
            if value > current[quantity]:
                at = max(start, lead_s) if current["speed"] == 0.0 else start
                items.append((max(0.0, at - lead_s), PlannedChange(quantity, value, at)))
            items.append((at, CommandEvent(_OPS[quantity], value)))
            current[quantity] = value
    end = segments[-1].end_s
    items += [(end, CommandEvent("stop")), (end, EndEvent("completed"))]
    return sorted(items, key=lambda item: item[0])


async def render_preview(
    program: Program, safety: SafetyConfig, units: Units, lead_s: float, voice: Voice
) -> list[CueEvent]:
    """Say `program`'s cues to `voice` (rendering into a file for `programs preview`); the cues, in order."""
    segments = expand(program, safety)
    clock = VirtualClock()
    bus = EventBus(clock)
    said = collect_cues(bus)
    start = clock.now()
    layer = CueLayer(
        bus=bus, speaker=voice, segments=segments, units=units, program_time=lambda: clock.t - start
    )
    async with layer:
        # No await in here: the layer's timer never runs; the clock jumps to each timed cue and each item.
        for t, item in timeline(segments, lead_s):
            while clock.t + layer.due_in() <= t:
                clock.t += max(0.0, layer.due_in())
                layer.tick()
            clock.t = t
            if isinstance(item, PlannedChange):
                layer.on_plan(item)
            else:
                bus.publish(item)
    return said

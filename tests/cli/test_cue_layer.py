"""The cue layer on a virtual clock (issue 13): what it says for each event, and when its timed cues come."""

from __future__ import annotations

from typing import Final

from retro_ftms.edge.cues.layer import ALARM_REPEAT_WALL_S, CueLayer
from retro_ftms.edge.cues.preview import VirtualClock, collect_cues
from retro_ftms.edge.cues.speech import Sound, Speaker
from retro_ftms.events import (
    CommandEvent,
    CueEvent,
    DataEvent,
    EndEvent,
    EventBus,
    SafetyEvent,
    StateEvent,
)
from retro_ftms.program import Segment
from retro_ftms.safety.guard import STOP_CONFIRM_RECORDS
from retro_ftms.session.announce import PlannedChange

WALK: Final = Segment(0.0, 600.0, 1.0, 0.0, 0, "walk", "walk")


class _Queue:
    """An output that only records (the speaker's thread is never started here)."""

    def play(self, sound: Sound) -> None:
        raise AssertionError(sound)

    def interrupt(self) -> None:
        """Nothing plays."""

    def close(self) -> None:
        """Nothing to release."""


def layer_on_virtual_clock(units: str = "kmh") -> tuple[CueLayer, VirtualClock, list[CueEvent]]:
    clock = VirtualClock()
    bus = EventBus(clock)
    said = collect_cues(bus)
    layer = CueLayer(
        bus=bus,
        speaker=Speaker(_Queue()),
        segments=[WALK],
        units="mph" if units == "mph" else "kmh",
        program_time=lambda: clock.t,
    )
    bus.subscribe(layer.on_event)
    return layer, clock, said


def advance(layer: CueLayer, clock: VirtualClock, to_s: float) -> None:
    while clock.t + layer.due_in() <= to_s:
        clock.t += max(0.0, layer.due_in())
        layer.tick()
    clock.t = to_s


def test_a_rise_is_announced_with_its_value_and_beeps_in_its_last_three_seconds() -> None:
    layer, clock, said = layer_on_virtual_clock()
    layer.on_event(0.0, StateEvent("running"))
    layer.on_plan(PlannedChange("speed", 1.3, 10.0))
    advance(layer, clock, 10.0)
    assert said[0] == CueEvent(
        "change", "In ten seconds: speed up to 1.3 kilometres per hour.", "speed", 1.3, 10.0
    )
    assert [(c.kind, c.text) for c in said[1:]] == [("countdown", f"beep {n}") for n in (3, 2, 1)]


def test_miles_per_hour_and_a_decrease_said_as_it_happens() -> None:
    layer, clock, said = layer_on_virtual_clock("mph")
    layer.on_plan(PlannedChange("speed", 1.61, 10.0))
    assert said[0].text == "In ten seconds: speed up to 1.0 miles per hour."
    bus_t = 12.0
    clock.t = bus_t
    layer.on_event(bus_t, CommandEvent("set_speed", 1.61))
    layer.on_event(bus_t, CommandEvent("set_speed", 0.8))
    assert said[-1] == CueEvent("change", "Slowing down to 0.5 miles per hour.", "speed", 0.8, 12.0)


def test_a_pause_or_a_stop_drops_the_countdown() -> None:
    layer, clock, said = layer_on_virtual_clock()
    layer.on_event(0.0, StateEvent("running"))
    layer.on_plan(PlannedChange("incline", 1.0, 10.0))
    advance(layer, clock, 5.0)
    layer.on_event(5.0, SafetyEvent("user", "pause"))
    advance(layer, clock, 20.0)
    assert [c.kind for c in said] == ["change", "stop"]
    assert said[1].text == "Pause: the belt stops."


def test_a_lasting_alarm_repeats_until_the_belt_is_seen_standing() -> None:
    layer, clock, said = layer_on_virtual_clock()
    layer.on_event(0.0, SafetyEvent("link_lost", "stop", "the belt may still be moving"))
    advance(layer, clock, 2.5 * ALARM_REPEAT_WALL_S)
    assert [(c.kind, c.text) for c in said] == [("alarm", "Stop. Pull the safety key.")] * 3
    layer.on_event(clock.t, DataEvent(0.0, 0.0, 0, 0, None))  # one zero record proves nothing
    advance(layer, clock, 3.5 * ALARM_REPEAT_WALL_S)
    assert len(said) == 4
    for _ in range(STOP_CONFIRM_RECORDS):
        layer.on_event(clock.t, DataEvent(0.0, 0.0, 0, 0, None))
    advance(layer, clock, 10 * ALARM_REPEAT_WALL_S)
    assert len(said) == 4


def test_halfway_the_last_minute_and_the_end_with_the_time_walked() -> None:
    layer, clock, said = layer_on_virtual_clock()
    layer.on_event(0.0, StateEvent("running"))
    advance(layer, clock, 600.0)
    layer.on_event(600.0, EndEvent("completed"))
    assert [c.text for c in said] == [
        "Halfway.",
        "One minute left.",
        "Well done, the program is complete. You walked ten minutes.",
    ]

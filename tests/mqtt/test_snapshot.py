"""SnapshotTracker: the state fields of design.md, kept current from bus events."""

from __future__ import annotations

import pytest

from retro_ftms.events import (
    CommandEvent,
    CueEvent,
    DataEvent,
    EndEvent,
    SafetyEvent,
    StateEvent,
    StepEvent,
)
from retro_ftms.session.snapshot import NextChange, SessionSnapshot, SnapshotTracker

DESIGN_STATE_FIELDS = {
    "state",
    "program",
    "step_index",
    "step_count",
    "step_name",
    "speed_kmh",
    "incline_pct",
    "target_speed_kmh",
    "target_incline_pct",
    "elapsed_s",
    "remaining_s",
    "distance_m",
    "hr_bpm",
    "safety_alarm",
    "safety_reason",
    "limits_loosened",  # issue 9 item 5: the [safety] keys set looser than their defaults
    "person",  # issue 12: whose session, and the course and level it belongs to
    "course",
    "course_level",
    "next_change",  # issue 13: the rise the spoken cues announced, and in how many seconds
}


def test_fields_are_exactly_the_design_state_fields() -> None:
    assert set(SessionSnapshot.model_fields) == DESIGN_STATE_FIELDS
    tracker = SnapshotTracker("gentle", 3, 600.0)
    assert set(tracker.snapshot.model_dump()) == DESIGN_STATE_FIELDS


def test_initial_snapshot() -> None:
    snapshot = SnapshotTracker("gentle", 3, 600.0).snapshot
    assert snapshot.state == "connecting"
    assert snapshot.program == "gentle"
    assert snapshot.step_count == 3
    assert snapshot.step_index is None
    assert snapshot.elapsed_s == 0.0
    assert snapshot.remaining_s == 600.0
    assert snapshot.safety_alarm is False
    assert snapshot.safety_reason is None


def test_step_and_data_events_update_fields() -> None:
    tracker = SnapshotTracker("gentle", 3, 600.0)
    tracker.on_event(1.0, StateEvent("running"))
    tracker.on_event(1.0, StepEvent(0, "warm up", 1.6, 0.0, 120.0))
    tracker.on_event(2.0, DataEvent(1.234, 0.5, 12, 1, 88))
    snapshot = tracker.snapshot
    assert snapshot.state == "running"
    assert (snapshot.step_index, snapshot.step_name) == (0, "warm up")
    assert (snapshot.target_speed_kmh, snapshot.target_incline_pct) == (1.6, 0.0)
    assert (snapshot.speed_kmh, snapshot.incline_pct, snapshot.distance_m, snapshot.hr_bpm) == (
        1.23,
        0.5,
        12,
        88,
    )
    assert snapshot.elapsed_s == 1.0
    assert snapshot.remaining_s == 599.0


def test_elapsed_counts_running_time_only() -> None:
    tracker = SnapshotTracker("gentle", 1, 100.0)
    tracker.on_event(5.0, StateEvent("running"))
    tracker.on_event(15.0, StateEvent("paused"))
    assert tracker.snapshot.elapsed_s == 10.0
    assert tracker.snapshot_at(50.0).elapsed_s == 10.0  # holds while paused
    tracker.on_event(60.0, StateEvent("running"))
    assert tracker.snapshot_at(70.0).elapsed_s == 20.0
    assert tracker.snapshot_at(70.0).remaining_s == 80.0
    assert tracker.snapshot_at(500.0).remaining_s == 0.0  # never negative
    assert tracker.snapshot.elapsed_s == 10.0  # snapshot_at does not change the tracker


def test_version_counts_changes_only() -> None:
    tracker = SnapshotTracker("gentle", 1, 100.0)
    start = tracker.version
    tracker.on_event(0.0, StateEvent("ready"))
    assert tracker.version == start + 1
    tracker.on_event(0.0, StateEvent("ready"))
    tracker.on_event(0.0, CommandEvent("start"))  # not a state field
    assert tracker.version == start + 1


@pytest.mark.parametrize(
    ("action", "reason", "alarm"),
    [
        ("stop", "safety_key", True),
        ("alarm", "stop_unconfirmed", True),
        ("stop", "link_lost", True),
        ("pause", "user_stop", False),
        ("hold", "console_override", False),
        ("stop", "mqtt_stop", False),
        ("stop", "signal", False),
        ("stop", "user", False),
        ("stop", "pain", False),
    ],
)
def test_safety_alarm_rules(action: str, reason: str, alarm: bool) -> None:
    tracker = SnapshotTracker("gentle", 1, 100.0)
    tracker.on_event(0.0, StateEvent("running"))
    tracker.on_event(1.0, SafetyEvent(reason, action))  # type: ignore[arg-type]
    assert tracker.snapshot.safety_alarm is alarm
    assert tracker.snapshot.safety_reason == reason


def test_alarm_clears_when_running_again() -> None:
    tracker = SnapshotTracker("gentle", 1, 100.0)
    tracker.on_event(0.0, StateEvent("running"))
    tracker.on_event(1.0, SafetyEvent("safety_key", "stop"))
    tracker.on_event(1.0, StateEvent("stopped"))
    tracker.on_event(9.0, StateEvent("running"))
    assert tracker.snapshot.safety_alarm is False
    assert tracker.snapshot.safety_reason is None


def test_end_event_freezes_time_and_sets_terminal_state() -> None:
    tracker = SnapshotTracker("gentle", 1, 100.0)
    tracker.on_event(0.0, StateEvent("running"))
    tracker.on_event(40.0, EndEvent("error", "error"))
    assert tracker.snapshot.state == "faulted"
    assert tracker.snapshot_at(90.0).elapsed_s == 40.0
    tracker2 = SnapshotTracker("gentle", 1, 100.0)
    tracker2.on_event(0.0, StateEvent("completed"))
    tracker2.on_event(0.0, EndEvent("stopped"))
    assert tracker2.snapshot.state == "completed"  # the runner's own terminal state wins


def test_totals_add_up_the_data() -> None:
    """Time walked counts only while the belt moves; tops, distance and heart rate from the records."""
    tracker = SnapshotTracker("gentle", 3, 600.0, person="ann")
    for t, speed, incline, distance, hr in [
        (0.0, 0.0, 0.0, 0, None),
        (1.0, 1.0, 0.0, 0, 90),
        (2.0, 1.5, 1.0, 1, 100),
        (3.0, 0.0, 2.0, 2, None),  # stopped from here on
        (10.0, 0.0, 0.0, 2, 95),
    ]:
        tracker.on_event(t, DataEvent(speed, incline, distance, int(t), hr))
    totals = tracker.totals
    assert (totals.walked_s, totals.distance_m, totals.top_speed_kmh, totals.top_incline_pct) == (
        2.0,
        2.0,
        1.5,
        2.0,
    )
    assert (totals.max_hr_bpm, totals.avg_hr_bpm) == (100, 95.0)
    assert tracker.snapshot.person == "ann"


def test_next_change_counts_down_from_the_announcement_until_its_command() -> None:
    """Issue 13: `next_change` is the announced rise and its seconds to go; the command clears it."""
    tracker = SnapshotTracker("gentle", 3, 600.0)
    tracker.on_event(0.0, StateEvent("running"))
    tracker.on_event(5.0, CueEvent("change", "In ten seconds", "speed", 1.3, 15.0))
    assert tracker.snapshot_at(9.0).next_change == NextChange(quantity="speed", value=1.3, in_s=6.0)
    tracker.on_event(12.0, CommandEvent("set_incline", 1.0))  # another quantity: still due
    assert tracker.snapshot.next_change is not None
    tracker.on_event(15.0, CommandEvent("set_speed", 1.3))
    assert tracker.snapshot.next_change is None
    tracker.on_event(16.0, CueEvent("change", "Slowing down", "speed", 1.0, 16.0))  # said as it happens
    assert tracker.snapshot.next_change is None

"""The terminal display: the status panel, event lines, the summary, and the display thread in both modes."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest
from rich.console import Console, RenderableType

from retro_ftms.clock import Clock
from retro_ftms.edge.app import SessionUI
from retro_ftms.edge.display import (
    PULL_KEY_MESSAGE,
    SessionDisplay,
    TerminalUI,
    event_line,
    format_distance,
    format_duration,
    format_speed,
    render_status,
    render_summary,
)
from retro_ftms.events import (
    DataEvent,
    EndEvent,
    EventBus,
    RefusedEvent,
    SafetyEvent,
    StateEvent,
    StepEvent,
)
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
from retro_ftms.session.timeline import SessionResult
from tests.cli.fakes import FakeControl

FAST_SCALE = 200.0


def snapshot(**changes: object) -> SessionSnapshot:
    base = SessionSnapshot(
        state="running",
        program="first-steps",
        step_index=1,
        step_count=5,
        step_name="A little quicker",
        speed_kmh=1.05,
        incline_pct=0.0,
        target_speed_kmh=1.13,
        target_incline_pct=0.0,
        elapsed_s=75.0,
        remaining_s=225.0,
        distance_m=21,
        hr_bpm=None,
        safety_alarm=False,
        safety_reason=None,
    )
    return base.model_copy(update=changes)


def text_of(renderable: RenderableType, width: int = 100) -> str:
    term = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    term.print(renderable)
    return term.export_text()


# --- formatting --------------------------------------------------------------------------------------------


def test_formats() -> None:
    assert format_duration(0) == "0:00"
    assert format_duration(75.4) == "1:15"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "-"
    assert format_speed(1.609344, "mph") == "1.0 mph"
    assert format_speed(1.61, "kmh") == "1.61 km/h"
    assert format_speed(1.5, "kmh") == "1.5 km/h"
    assert format_speed(2.0, "kmh") == "2.0 km/h"
    assert format_speed(None, "kmh") == "-"
    assert format_distance(500, "kmh") == "500 m"
    assert format_distance(1500, "kmh") == "1.50 km"
    assert format_distance(1609.344, "mph") == "1.00 mi"


# --- the status panel ---------------------------------------------------------------------------------------


def test_status_shows_the_session() -> None:
    text = text_of(render_status(snapshot(hr_bpm=92), "mph", step_left_s=45))
    for expected in (
        "first-steps",
        "step 2/5 A little quicker",
        "RUNNING",
        "step 0:45",
        "total 3:45",
        "0.7 mph",  # 1.05 km/h
        "target 0.7 mph",
        "target 0.0 %",
        "0.01 mi",
        "92 bpm",
        "Safety: OK",
        "s, space, Enter, Esc, q or x stop the belt",
        "p pause",
        "r resume",
        "Ctrl-C",
    ):
        assert expected in text, expected


def test_status_in_kmh_before_the_first_step() -> None:
    text = text_of(
        render_status(
            snapshot(state="connecting", step_index=None, step_name=None, speed_kmh=None, distance_m=None),
            "kmh",
        )
    )
    assert "waiting for the first step" in text
    assert "CONNECTING" in text
    assert "target 1.13 km/h" in text
    assert "step -" in text


def test_status_alarm_is_loud() -> None:
    text = text_of(
        render_status(snapshot(state="stopped", safety_alarm=True, safety_reason="safety_key"), "kmh")
    )
    assert "SAFETY STOP: the safety key was pulled" in text
    assert PULL_KEY_MESSAGE not in text


def test_status_link_lost_says_pull_the_key() -> None:
    text = text_of(
        render_status(snapshot(state="faulted", safety_alarm=True, safety_reason="link_lost"), "kmh")
    )
    assert "SAFETY STOP" in text
    assert PULL_KEY_MESSAGE in text


def test_status_person_stop_is_not_an_alarm() -> None:
    text = text_of(render_status(snapshot(state="stopped", safety_reason="user"), "kmh"))
    assert "SAFETY STOP" not in text
    assert "you stopped it" in text


# --- event lines --------------------------------------------------------------------------------------------


def test_event_lines() -> None:
    step = StepEvent(index=2, name="Settle in", target_speed_kmh=1.45, target_incline_pct=0.0, duration_s=60)
    assert str(event_line(step, "mph", 5)) == "step 3/5 Settle in: 0.9 mph, incline 0.0 %, 1:00"
    safety = SafetyEvent("stale_data", "stop", "no data for 3.2 s")
    line = str(event_line(safety, "kmh", 5))
    assert "stale_data" in line
    assert "stopped reporting" in line
    assert "no data for 3.2 s" in line
    assert PULL_KEY_MESSAGE in str(event_line(SafetyEvent("stop_unconfirmed", "alarm"), "kmh", 5))
    refused = str(event_line(RefusedEvent("set_speed", 5.0, "above the speed cap 4.0 km/h"), "kmh", 5))
    assert refused == "refused: set_speed 5.0: above the speed cap 4.0 km/h"
    assert "paused" in str(event_line(StateEvent("paused"), "kmh", 5))
    assert event_line(StateEvent("running"), "kmh", 5) is None
    assert event_line(DataEvent(1.0, 0.0, 1, 1, None), "kmh", 5) is None
    assert "completed" in str(event_line(EndEvent("completed"), "kmh", 5))
    assert "the safety key was pulled" in str(event_line(EndEvent("stopped", "safety_key"), "kmh", 5))


# --- the summary --------------------------------------------------------------------------------------------


def test_summary_completed() -> None:
    result = SessionResult("completed", None, 0, 300.0)
    end = snapshot(state="completed", elapsed_s=300.0, remaining_s=0.0, distance_m=130)
    text = text_of(render_summary(result, end, "mph", 1.609344))
    for expected in ("completed", "5:00 of 5:00", "0.08 mi", "1.0 mph", "0: the program completed"):
        assert expected in text, expected
    assert PULL_KEY_MESSAGE not in text


def test_summary_safety_stop() -> None:
    result = SessionResult("stopped", "safety_key", 3, 12.0)
    text = text_of(
        render_summary(result, snapshot(state="stopped", elapsed_s=12.0, remaining_s=288.0), "kmh", None)
    )
    assert "the safety key was pulled (safety_key)" in text
    assert "0:12 of 5:00" in text
    assert "3: stopped by a safety trigger" in text
    assert "Top speed" in text


@pytest.mark.parametrize("reason", ["user", "signal", "mqtt_stop", "pain"])
def test_summary_of_a_persons_stop_says_stopped_by_you(reason: str) -> None:
    result = SessionResult("stopped", reason, 130, 12.0)
    text = text_of(render_summary(result, snapshot(state="stopped"), "kmh", 1.2))
    assert "stopped by you" in text
    assert "130: stopped by you" in text
    assert "safety trigger" not in text


def test_status_after_a_link_loss_shows_the_speed_as_unknown() -> None:
    text = text_of(render_status(snapshot(), "kmh", speed_known=False))
    assert "unknown (link lost)" in text
    assert "1.05 km/h" not in text


@pytest.mark.parametrize("reason", ["stop_unconfirmed", "link_lost"])
def test_summary_tells_to_pull_the_safety_key(reason: str) -> None:
    result = SessionResult("stopped", reason, 3, 12.0)
    text = text_of(render_summary(result, snapshot(state="faulted"), "kmh", 1.2))
    assert PULL_KEY_MESSAGE in text


# --- the display thread -------------------------------------------------------------------------------------


def session() -> tuple[EventBus, SnapshotTracker]:
    bus = EventBus(Clock(FAST_SCALE))
    tracker = SnapshotTracker("first-steps", 5, 300.0)
    bus.subscribe(tracker.on_event)
    return bus, tracker


def publish_a_short_session(bus: EventBus) -> None:
    bus.publish(StateEvent("running"))
    bus.publish(
        StepEvent(
            index=0, name="Find your footing", target_speed_kmh=0.8, target_incline_pct=0.0, duration_s=60
        )
    )
    bus.publish(DataEvent(0.8, 0.0, 3, 4, None))
    bus.publish(DataEvent(1.2, 0.0, 5, 5, None))
    bus.publish(RefusedEvent("set_speed", 9.0, "above the speed cap 4.0 km/h"))
    bus.publish(SafetyEvent("safety_key", "stop", "status 0x03"))
    bus.publish(StateEvent("stopped"))
    bus.publish(EndEvent("stopped", "safety_key"))


async def test_plain_lines_when_not_a_terminal() -> None:
    bus, tracker = session()
    out = io.StringIO()
    term = Console(file=out, width=60)
    assert not term.is_terminal
    async with SessionDisplay(term, tracker, bus, "kmh") as display:
        publish_a_short_session(bus)
        display.notice("stop requested: stopping the belt")
    lines = out.getvalue().splitlines()
    assert len(lines) == 5, lines  # one line each, however long: no wrapping, no live panel
    assert "step 1/5 Find your footing: 0.8 km/h" in lines[0]
    assert "refused: set_speed 9.0" in lines[1]
    assert "safety: the safety key was pulled" in lines[2]
    assert "end: stopped by a safety trigger: the safety key was pulled" in lines[3]
    assert lines[4] == "stop requested: stopping the belt"
    assert "\x1b" not in out.getvalue()
    assert display.top_speed_kmh == 1.2


async def test_events_after_exit_are_not_shown() -> None:
    bus, tracker = session()
    out = io.StringIO()
    async with SessionDisplay(Console(file=out), tracker, bus, "kmh"):
        pass
    bus.publish(EndEvent("completed"))
    assert out.getvalue() == ""


async def test_live_panel_on_a_terminal() -> None:
    bus, tracker = session()
    out = io.StringIO()
    term = Console(file=out, width=100, force_terminal=True, color_system=None)
    async with SessionDisplay(term, tracker, bus, "mph") as display:
        publish_a_short_session(bus)
        display.notice("the belt may still be moving", loud=True)
    text = out.getvalue()
    assert "step 1/5 Find your footing: 0.5 mph" in text
    assert "retro-ftms: first-steps" in text
    assert "SAFETY STOP: the safety key was pulled" in text
    assert "the belt may still be moving" in text
    assert "\a" in text  # the alarm rings the terminal bell


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


async def test_terminal_ui_session(pty: tuple[int, int]) -> None:
    master, slave = pty
    out = io.StringIO()
    ui = TerminalUI(Console(file=out, width=120), assume_yes=True, key_fd=slave)
    assert ui.preflight("First steps", "Five flat minutes.")
    bus, tracker = session()
    control = FakeControl()
    async with ui.session_started(tracker, bus, control, "kmh"):
        bus.publish(StateEvent("running"))
        bus.publish(DataEvent(1.4, 0.0, 10, 8, None))
        os.write(master, b" ")
        await control.wait_for(1)
        ui.alarm("the belt may still be moving: pull the safety key")
        ui.notice("MQTT: broker unreachable")
        bus.publish(EndEvent("stopped", "user"))
    assert control.calls == [("stop", "user")]
    ui.finished(SessionResult("stopped", "user", 130, 8.0), tracker.snapshot)
    text = out.getvalue()
    assert "stop requested" in text
    assert "ALARM: the belt may still be moving" in text
    assert "MQTT: broker unreachable" in text
    assert "Top speed" in text
    assert "1.4 km/h" in text
    assert "130: stopped by you" in text


def test_terminal_ui_is_a_session_ui() -> None:
    ui: SessionUI = TerminalUI(Console(file=io.StringIO()))  # mypy checks the protocol here
    assert ui is not None


def test_notice_outside_a_session_is_printed() -> None:
    out = io.StringIO()
    TerminalUI(Console(file=out, width=120)).notice("MQTT: connection refused by 127.0.0.1:1883")
    assert out.getvalue() == "MQTT: connection refused by 127.0.0.1:1883\n"


def test_alarm_outside_a_session_is_printed() -> None:
    out = io.StringIO()
    ui = TerminalUI(Console(file=out, width=120))
    ui.alarm("link lost: the belt may still be moving")
    assert "ALARM: link lost" in out.getvalue()

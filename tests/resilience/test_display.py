"""What the terminal shows of the resilience features: coaching lines, a stop confirmed after a reconnect."""

from __future__ import annotations

from rich.console import Console

from retro_ftms.edge.display import PULL_KEY_MESSAGE, event_line, render_summary
from retro_ftms.events import CoachEvent, SafetyEvent
from retro_ftms.session.snapshot import SessionSnapshot
from retro_ftms.session.timeline import SessionResult


def text_of(renderable: object) -> str:
    console = Console(width=140, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def snapshot() -> SessionSnapshot:
    return SessionSnapshot(
        state="stopped",
        program="first-steps",
        step_index=1,
        step_count=5,
        step_name="Walk",
        speed_kmh=0.0,
        incline_pct=0.0,
        target_speed_kmh=1.6,
        target_incline_pct=0.0,
        elapsed_s=60.0,
        remaining_s=240.0,
        distance_m=25,
        hr_bpm=95,
        safety_alarm=True,
        safety_reason="link_lost",
    )


def test_coach_lines_use_the_persons_units() -> None:
    line = event_line(CoachEvent("set_speed", "Raise the speed to 1.92 km/h.", 1.92), "mph", 5)
    assert line is not None
    assert line.plain == "coach: Set the speed on the console to 1.2 mph."
    stop = event_line(CoachEvent("stop", "The program is over: press STOP on the console.", 0.0), "kmh", 5)
    assert stop is not None
    assert "press STOP" in stop.plain


def test_a_coaching_alarm_is_red() -> None:
    event = SafetyEvent("console_override", "alarm", "speed and incline rose together: press STOP")
    line = event_line(event, "kmh", 5)
    assert line is not None
    assert "red" in str(line.style)


def test_a_stop_confirmed_after_a_reconnect_does_not_say_pull_the_key() -> None:
    confirmed = event_line(
        SafetyEvent("link_lost", "stop_confirmed", "the belt is confirmed stopped"), "kmh", 5
    )
    assert confirmed is not None
    assert PULL_KEY_MESSAGE not in confirmed.plain
    lost = event_line(SafetyEvent("link_lost", "stop", "the belt may still be moving"), "kmh", 5)
    assert lost is not None
    assert PULL_KEY_MESSAGE in lost.plain


def test_summary_says_whether_the_belt_was_confirmed_stopped() -> None:
    stopped = text_of(
        render_summary(SessionResult("stopped", "link_lost", 3, 60.0, True), snapshot(), "kmh", 1.6)
    )
    assert "confirmed stopped" in stopped
    assert PULL_KEY_MESSAGE not in stopped
    unknown = text_of(
        render_summary(SessionResult("stopped", "link_lost", 3, 60.0, False), snapshot(), "kmh", 1.6)
    )
    assert "NOT confirmed stopped" in unknown
    assert PULL_KEY_MESSAGE in unknown

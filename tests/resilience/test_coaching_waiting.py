"""Coaching mode before the belt ever moved (issue 9 item 9): nobody at the console is no safety stop.

A watch-only treadmill (`no-control-point`) sends no Treadmill Data while it stands. A session that waits
for the person to start the belt says so, and when nobody does within `max_pause_s` it ends as
`not_started` (exit 2: nothing moved) with no alarm; a stop asked before the belt ever moved ends without
claiming that the belt may still be moving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from retro_ftms.events import NOT_STARTED, CoachEvent, Event
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.resilience.conftest import TIME_SCALE, RecordingUI

EXIT_NOTHING_MOVED: Final = 2
EXIT_PERSON: Final = 130
WATCH_ONLY: Final = ("no-control-point",)


async def watched_alone(tmp_path: Path, ui: RecordingUI) -> tuple[harness.SessionRun[RecordingUI], str]:
    """first-steps on a watch-only treadmill nobody starts; the run and its log tail."""
    session = await harness.run_in(tmp_path, "first-steps", ui=ui, quirks=WATCH_ONLY, time_scale=TIME_SCALE)
    return session, session.describe()


def alarms(session: harness.SessionRun[RecordingUI]) -> list[str]:
    return [e["reason"] for e in session.safety]


async def test_nobody_starts_the_belt_ends_as_not_started(tmp_path: Path) -> None:
    session, log = await watched_alone(tmp_path, RecordingUI())
    assert session.exit_code == EXIT_NOTHING_MOVED, log
    assert session.end["outcome"] == "stopped", log
    assert session.end["reason"] == NOT_STARTED, log
    assert alarms(session) == [], log  # neither pause_timeout nor stop_unconfirmed
    coached = [e["message"] for e in session.of_type("coach")]
    assert any("Waiting for you to start the belt" in m for m in coached), coached
    assert any("nobody started the belt" in m.lower() for m in coached), coached
    assert session.result.belt_stopped is not False
    assert not session.snapshot.safety_alarm


class _StopsBeforeStarting(harness.ListeningUI):
    """The person reads the first instruction and presses s instead of starting the belt."""

    def on_session_event(self, event: Event, tracker: SnapshotTracker, control: SessionControl) -> None:
        if isinstance(event, CoachEvent) and event.action == "start":
            control.request_stop("user")


async def test_a_stop_before_the_belt_ever_moved_is_no_unconfirmed_stop(tmp_path: Path) -> None:
    session, log = await watched_alone(tmp_path, _StopsBeforeStarting())
    assert session.exit_code == EXIT_PERSON, log
    assert session.end["reason"] == "user", log
    assert "stop_unconfirmed" not in alarms(session), log
    assert session.result.belt_stopped is True, log

"""The recorder alone, on a bus with a virtual clock: what it writes before and without a start."""

from __future__ import annotations

import time
from pathlib import Path

from retro_ftms.clock import Clock
from retro_ftms.events import DataEvent, EndEvent, Event, EventBus, StepEvent
from retro_ftms.history.recorder import HistoryRecorder
from retro_ftms.history.store import HistoryStore, Sample, SessionStart, now
from tests.history.test_sessions import locked


def session_start() -> SessionStart:
    return SessionStart(
        person="ann",
        started_at=now(),
        simulated=True,
        program="p",
        program_sha256="0" * 64,
        program_json="{}",
    )


class StampedBus(EventBus):
    """A bus whose events carry the time the test says."""

    def __init__(self) -> None:
        super().__init__(Clock())
        self.t = 0.0

    def at(self, t: float, *events: Event) -> None:
        self.t = t
        for event in events:
            for listener in tuple(self._listeners):
                listener(t, event)


def test_a_run_that_never_connected_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    bus = StampedBus()
    recorder = HistoryRecorder(path, bus)
    recorder.start()
    bus.at(0.5, DataEvent(0.0, 0.0, 0, 0, None))
    recorder.close()
    assert not path.exists()
    assert recorder.failure is None


def test_events_before_the_start_are_kept_and_samples_fall_on_whole_seconds(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    bus = StampedBus()
    recorder = HistoryRecorder(path, bus)
    recorder.start()
    bus.at(0.4, DataEvent(0.0, 0.0, 0, 0, None))  # before the row exists
    recorder.begin(session_start())
    bus.at(0.6, StepEvent(0, "warm up", 1.0, 0.0, 60.0))
    bus.at(1.3, DataEvent(1.0, 0.0, 0, 1, 90))
    bus.at(2.2, DataEvent(1.2, 0.5, 1, 2, 92))
    bus.at(7.9, DataEvent(1.2, 0.5, 3, 7, 93))  # a gap of 5.7 s: seconds 5 to 7 are not made up
    bus.at(8.5, EndEvent("completed"))
    bus.at(9.6, DataEvent(0.0, 0.5, 3, 9, 93))  # while the link closes: no part of the session
    bus.at(10.6, DataEvent(0.0, 0.5, 3, 10, 93))
    recorder.close()
    assert recorder.failure is None
    with HistoryStore.open(path) as store:
        (past,) = store.past_sessions("ann")
        samples = store.session_samples(past.session_id)
    assert samples == [
        Sample(1.0, 0.0, 0.0, 0.0, None, None),  # the record of 0.4 s, before the first step
        Sample(2.0, 1.0, 0.0, 0.0, 90, 0),
        Sample(3.0, 1.2, 0.5, 1.0, 92, 0),
        Sample(4.0, 1.2, 0.5, 1.0, 92, 0),
        Sample(8.0, 1.2, 0.5, 3.0, 93, 0),
    ]
    assert past.outcome == "completed"
    assert past.session_id == recorder.session_id


def test_a_database_locked_to_the_end_is_given_up_and_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    bus = StampedBus()
    recorder = HistoryRecorder(path, bus)
    with locked(path, hold_s=None):
        recorder.start()
        recorder.begin(session_start())
        bus.at(1.5, DataEvent(1.0, 0.0, 0, 1, None))
        bus.at(2.5, EndEvent("completed"))
        started = time.monotonic()
        recorder.close(timeout_s=0.5)
        assert time.monotonic() - started < 1.5  # closing waits no longer than it was told
        assert recorder.failure is not None
        assert "database is locked" in recorder.failure
        assert recorder.done.wait(2.0)  # and the writer stops retrying

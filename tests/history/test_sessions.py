"""Whole sessions (program -> runner -> guard -> bleak over Bumble -> simulator) recorded in the history:
one sample a second, totals, safety events, check-ins, two people, the pain key, a locked database."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from retro_ftms.edge.app import Units
from retro_ftms.edge.keys import KeyHandler
from retro_ftms.events import CheckinEvent, DataEvent, Event, EventBus
from retro_ftms.history.recorder import CLOSE_TIMEOUT_S, MAX_HOLD_S
from retro_ftms.history.store import HistoryStore, Sample
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.harness import QuietUI, SessionRun

SHORT: Final = Path(__file__).parent.parent / "cli" / "data" / "short.toml"  # 50 s: 30 s + 20 s
TIME_SCALE: Final = 100.0
ROUNDING_S: Final = 0.001  # the event log's `t` is rounded to 1 ms
SLOW_TIME_SCALE: Final = 20.0  # the locked-database tests: 50 simulated s are 2.5 wall s
# Simulated seconds from the fault to the Stop: 100 ms of wall time, room for a loaded machine, and half of
# what one write waiting for the lock would cost (0.2 s wall = 4 simulated s) if it were on the control path.
MAX_STOP_DELAY_S: Final = 2.0


def check_samples(samples: Sequence[Sample], data: Sequence[Mapping[str, Any]], end_t: float) -> None:
    """One sample on each whole second from the first record to `end_t`, holding the latest record as of
    that second: every second whose latest record is at most `MAX_HOLD_S` old has one, and no other.

    The log's `t` is rounded to 1 ms, so a record within 1 ms of a second may count on either side of it.
    """
    times = [float(d["t"]) for d in data]
    by_second = {sample.t_s: sample for sample in samples}
    assert all(t_s == int(t_s) for t_s in by_second)
    for k in range(math.ceil(times[0]), math.ceil(end_t)):
        before = [i for i, t in enumerate(times) if t <= k + ROUNDING_S]
        candidates = [i for i in before[-2:] if times[i] >= k - MAX_HOLD_S - ROUNDING_S]
        if before and times[before[-1]] < k - ROUNDING_S and k - times[before[-1]] < MAX_HOLD_S - ROUNDING_S:
            assert float(k) in by_second, f"no sample at {k} s though a record came at {times[before[-1]]} s"
        sample = by_second.pop(float(k), None)
        if sample is not None:
            values = (sample.speed_kmh, sample.distance_m)
            assert values in [(data[i]["speed_kmh"], data[i]["distance_m"]) for i in candidates], k
    assert not by_second, f"samples outside the session: {sorted(by_second)}"


async def run(
    directory: Path, history: Path, *faults: str, ui: QuietUI | None = None, **options: object
) -> SessionRun[QuietUI]:
    return await harness.run_in(
        directory, SHORT, *faults, ui=ui or QuietUI(), history=history, time_scale=TIME_SCALE, **options
    )


async def test_a_session_is_recorded_one_sample_a_second_with_its_totals(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    ui = QuietUI(pain_before=1, after=CheckinEvent("after", pain=2, worst_pain=3, talk=True))
    session = await run(tmp_path / "s", history, ui=ui)
    assert session.exit_code == 0
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("default")
        samples = store.session_samples(past.session_id)
        row = store.session_row(past.session_id)
    assert row is not None
    data = session.of_type("data")
    check_samples(samples, data, session.end["t"])
    assert {s.step_index for s in samples if s.speed_kmh > 0} == {0, 1}
    # Totals: as the event log's data says.
    assert past.outcome == "completed"
    assert past.reason is None
    assert past.simulated
    assert past.program == "cli-short"
    assert past.top_speed_kmh == max(d["speed_kmh"] for d in data) == 1.0
    assert past.distance_m == max(d["distance_m"] for d in data)
    assert 45 <= past.walked_s <= 55  # the program's 50 s, give or take the spin-up and the stop
    assert (past.pain_before, past.pain_after, past.worst_pain, past.talk) == (1, 2, 3, True)
    assert past.started_at.tzinfo is not None
    assert past.ended_at is not None
    assert past.ended_at > past.started_at
    # What ran and under which limits: the file's hash, its steps, the limits event, the treadmill.
    assert row["program_sha256"] == hashlib.sha256(SHORT.read_bytes()).hexdigest()
    assert [step["name"] for step in json.loads(row["program_json"])["steps"]] == ["Start", "Slower"]
    (limits,) = session.of_type("limits")
    assert json.loads(row["limits_json"]) == {"limits": limits["limits"], "loosened": limits["loosened"]}
    assert row["treadmill_name"] == "simulator"
    assert row["treadmill_address"]
    assert json.loads(row["treadmill_quirks_json"])["speed_target_units"] == "kmh"


async def test_the_course_and_level_given_at_the_start_are_recorded(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    session = await run(tmp_path / "s", history, person="ann", course="knee-six-weeks", course_level=2)
    assert session.exit_code == 0
    assert (session.snapshot.person, session.snapshot.course, session.snapshot.course_level) == (
        "ann",
        "knee-six-weeks",
        2,
    )
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("ann", course="knee-six-weeks")
        store.record_progression(past.session_id, "progress", 3, "worst pain 2, morning at baseline", "rules")
        assert store.progressions(past.session_id) == [
            ("progress", 3, "worst pain 2, morning at baseline", "rules")
        ]
    assert (past.course, past.course_level) == ("knee-six-weeks", 2)


async def test_safety_events_and_the_outcome_are_recorded(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    session = await run(tmp_path / "s", history, "safety-key@20")
    assert session.exit_code == 3
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("default")
        safety = store.safety_events(past.session_id)
    assert (past.outcome, past.reason) == ("stopped", "safety_key")
    assert [(r.reason, r.action) for r in safety] == [(e["reason"], e["action"]) for e in session.safety]


async def test_two_people_keep_separate_histories_and_the_morning_is_asked(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    directories = harness.numbered_dirs(tmp_path)
    ann_first = QuietUI(pain_before=2)
    await run(next(directories), history, ui=ann_first, person="ann")
    bob = QuietUI(pain_before=5)
    await run(next(directories), history, ui=bob, person="bob")
    ann_second = QuietUI(pain_before=1, morning_pain=0)
    second = await run(next(directories), history, ui=ann_second, person="ann")
    # Nobody is asked about the morning after a session they never had; ann is, before her second.
    assert (ann_first.asked_morning, bob.asked_morning, ann_second.asked_morning) == (
        [False],
        [False],
        [True],
    )
    with HistoryStore.open(history) as store:
        ann = store.past_sessions("ann")
        (bob_session,) = store.past_sessions("bob")
    assert [s.pain_before for s in ann] == [2, 1]
    assert [s.morning_pain for s in ann] == [0, None]  # the morning answer belongs to the session before
    assert bob_session.pain_before == 5
    assert bob_session.morning_pain is None
    checkins = [(e["when"], e["pain"]) for e in second.of_type("checkin")]
    assert checkins == [("morning", 0), ("before", 1), ("after", None)]


class PainKeyUI(QuietUI):
    """The person presses `!` (through the terminal's key handler) once the belt moves."""

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        keys = KeyHandler(control, self.notices.append)
        pressed: list[bool] = []

        def on_event(_t: float, event: Event) -> None:
            if not pressed and isinstance(event, DataEvent) and event.speed_kmh:
                pressed.append(True)
                keys.feed("!")

        @contextlib.asynccontextmanager
        async def pressing() -> AsyncIterator[None]:
            unsubscribe = bus.subscribe(on_event)
            try:
                yield
            finally:
                unsubscribe()

        return pressing()


async def test_the_pain_key_stops_the_belt_exit_130_and_is_recorded(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    ui = PainKeyUI(after=CheckinEvent("after", pain=6, worst_pain=7, talk=True))
    session = await run(tmp_path / "s", history, ui=ui)
    assert session.exit_code == 130
    assert session.latch_reason == "pain"
    assert session.end["reason"] == "pain"
    assert "pain reported: stopping the belt" in ui.notices
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("default")
        safety = store.safety_events(past.session_id)
    assert (past.outcome, past.reason, past.worst_pain) == ("stopped", "pain", 7)
    assert safety[0].reason == "pain"


@contextlib.contextmanager
def locked(path: Path, hold_s: float | None) -> Iterator[None]:
    """Another program holds the history's write lock (for `hold_s` wall seconds, or while open)."""
    HistoryStore.open(path).close()  # the file exists, migrated and in WAL mode
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN EXCLUSIVE")
    timer = None if hold_s is None else threading.Timer(hold_s, connection.execute, ("ROLLBACK",))
    if timer is not None:
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.join()
        else:
            connection.execute("ROLLBACK")
        connection.close()


def stop_delay_s(session: SessionRun[QuietUI]) -> float:
    """Session seconds from the simulator's fault (the safety key pulled) to the Stop written."""
    fault = session.index(lambda e: e["type"] == "sim" and e["event"] == "fault")
    stop = session.index(lambda e: e["type"] == "command" and e["op"] == "stop", fault)
    return float(session.events[stop]["t"] - session.events[fault]["t"])


async def test_a_locked_database_does_not_delay_the_stop_and_catches_up(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    with locked(history, hold_s=1.0):
        session = await harness.run_in(
            tmp_path / "s", SHORT, "safety-key@30", ui=QuietUI(), history=history, time_scale=SLOW_TIME_SCALE
        )
    assert session.exit_code == 3
    assert session.latch_reason == "safety_key"
    assert stop_delay_s(session) < MAX_STOP_DELAY_S
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("default")
        samples = store.session_samples(past.session_id)
    assert (past.outcome, past.reason) == ("stopped", "safety_key")
    check_samples(samples, session.of_type("data"), session.end["t"])  # caught up: nothing lost
    history_notices = [n for n in session.ui.notices if "history" in n]
    assert len(history_notices) <= 1  # reported once at most (here it caught up)


async def test_a_database_locked_throughout_is_reported_once(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    with locked(history, hold_s=None):
        started = time.monotonic()
        session = await harness.run_in(
            tmp_path / "s", SHORT, "safety-key@10", ui=QuietUI(), history=history, time_scale=SLOW_TIME_SCALE
        )
        wall_s = time.monotonic() - started
    assert session.exit_code == 3
    assert session.latch_reason == "safety_key"
    assert stop_delay_s(session) < MAX_STOP_DELAY_S
    assert session.ui.finished_wall_s is not None  # the session completed, summary shown
    assert wall_s < 10 / SLOW_TIME_SCALE + CLOSE_TIMEOUT_S + 10  # bounded: the close gives up in time
    history_notices = [n for n in session.ui.notices if "history" in n]
    assert len(history_notices) == 1, session.ui.notices

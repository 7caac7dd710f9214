"""Reading a recorded session out of the history store for an export: `last`, ids, people kept apart,
step names from the kept program, safety events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from retro_ftms.export.load import NoSuchSessionError, recorded_session, session_id_of
from retro_ftms.history.store import HistoryStore, SafetyRecord, SessionStart
from tests.export.samples import START, walk

PROGRAM = {"name": "gentle-start", "steps": [{"name": "warm-up"}, {"name": "walk"}, {"name": "cool-down"}]}


def record(store: HistoryStore, person: str, program_json: str = json.dumps(PROGRAM)) -> int:
    start = SessionStart(
        person=person,
        started_at=START,
        simulated=True,
        program="gentle-start",
        program_sha256="0" * 64,
        program_json=program_json,
    )
    return store.start_session(start)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    """ana's sessions 1 (an unreadable program) and 3 (stopped on stale data), ben's 2."""
    with HistoryStore.open(tmp_path / "history.sqlite3") as store:
        record(store, "ana", program_json="not json")
        record(store, "ben")
        last = record(store, "ana")
        store.add_samples(last, walk(60))
        store.add_safety_events(last, [SafetyRecord(42.0, "stale_data", "stop", "no Treadmill Data for 3 s")])
        store.end_session(last, START, "stopped", "stale_data")
        yield store


def test_last_is_the_persons_latest_session(store: HistoryStore) -> None:
    assert session_id_of(store, "ana", "last") == 3
    assert session_id_of(store, "ben", "last") == 2
    assert session_id_of(store, "ana", "1") == 1
    with pytest.raises(NoSuchSessionError, match="no sessions recorded for cleo"):
        session_id_of(store, "cleo", "last")


def test_a_recorded_session_carries_samples_safety_events_and_step_names(store: HistoryStore) -> None:
    recorded = recorded_session(store, "ana", 3)
    assert recorded.past.started_at == START
    assert recorded.ending == "stopped (stale_data)"
    assert recorded.samples == walk(60)
    assert [(e.t_s, e.reason, e.action) for e in recorded.safety] == [(42.0, "stale_data", "stop")]
    assert [recorded.step_name(i) for i in range(4)] == ["warm-up", "walk", "cool-down", "step 4"]


def test_another_persons_session_is_not_found(store: HistoryStore) -> None:
    with pytest.raises(NoSuchSessionError, match="ana has no session 2"):
        recorded_session(store, "ana", 2)


def test_an_unreadable_program_leaves_steps_numbered(store: HistoryStore) -> None:
    recorded = recorded_session(store, "ana", 1)
    assert recorded.step_name(0) == "step 1"
    assert recorded.ending == "interrupted"
